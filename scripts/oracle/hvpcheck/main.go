// Command hvpcheck writes the inputs and outputs of sgdyn's Hessian-vector
// product for the CIFAR-10 CNN to a directory, for hvp_torch.py to check
// against PyTorch's double backprop.
//
// It builds the CNN in float64 at a checkpoint (or a fresh initialisation),
// takes evenly spaced examples of the CIFAR-10 training set, draws random
// unit vectors v and applies probe.NewHessian(...).Apply to each. It writes
//
//	params.npy  (P)            the point w0
//	x.npy       (N, 3, 32, 32) the inputs, normalised as the models see them
//	labels.npy  (N) int64      the classes
//	grad.npy    (P)            the mean-loss gradient at w0
//	v.npy       (k, P)         the unit vectors
//	hv.npy      (k, P)         sgdyn's H v (central differences, what it certifies with)
//	hv_forward.npy (k, P)      its forward-difference H v (what its searches run on)
//	layout.json                the model's Tensors(), in flat-vector order
//	meta.json                  settings, loss and timings
//
// and with -unfrozen also hv_unfrozen.npy: central differences of the plain
// gradient, without holding the activation pattern, to show what the
// pattern freezing buys.
//
// Usage (from the repository root; see scripts/oracle/run.sh):
//
//	go run ./scripts/oracle/hvpcheck -checkpoint RUN/checkpoints/step-N.npz -out DIR
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

func main() {
	checkpoint := flag.String("checkpoint", "", "parameter file (.npz) to check at; empty: a fresh initialisation from -seed")
	dataDir := flag.String("data", "/work/shared/data/cifar-10-batches-bin", "CIFAR-10 binary directory")
	examples := flag.Int("examples", 512, "examples, evenly spaced over the training set")
	vectors := flag.Int("vectors", 4, "random unit vectors")
	step := flag.Float64("step", probe.DefaultFDStep, "finite-difference step (probe.NewHessian)")
	width := flag.Int("width", 16, "CNN width (overridden by the checkpoint's sidecar .json unless set)")
	hidden := flag.Int("hidden", 64, "CNN hidden units (overridden by the checkpoint's sidecar .json unless set)")
	seed := flag.Uint64("seed", 1, "initialisation seed (without -checkpoint)")
	vseed := flag.Uint64("vseed", 7, "seed of the random vectors")
	unfrozen := flag.Bool("unfrozen", false, "also write hv_unfrozen.npy, central differences without the frozen activation pattern")
	out := flag.String("out", "", "output directory (required)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("hvpcheck: ")
	if *out == "" {
		log.Fatal("-out is required")
	}
	if *examples < 1 || *vectors < 1 {
		log.Fatal("-examples and -vectors must be positive")
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Impl fused, the probe path's: it holds the ReLU and max-pool pattern fixed.
	cfg := models.Config{Kind: "cnn", DType: "float64", Impl: "fused", CNN: models.CNNConfig{Width: *width, Hidden: *hidden}}
	if *checkpoint != "" {
		sc, err := sidecarCNN(*checkpoint)
		if err != nil {
			log.Fatal(err)
		}
		if sc != nil {
			if !set["width"] {
				cfg.CNN.Width = sc.Width
			}
			if !set["hidden"] {
				cfg.CNN.Hidden = sc.Hidden
			}
		}
	}
	m, err := models.New(cfg, models.Shape{Image: []int{3, 32, 32}, Classes: 10}, *seed)
	if err != nil {
		log.Fatal(err)
	}
	p := m.NumParams()
	w0 := make([]float64, p)
	m.Params(w0)
	if *checkpoint != "" {
		if err := train.LoadParams(*checkpoint, m, w0); err != nil {
			log.Fatal(err)
		}
		m.SetParams(w0)
	}
	if _, ok := m.(models.Piecewise); !ok {
		log.Fatal("model does not hold activation patterns (models.Piecewise); wrong impl?")
	}

	ds, err := data.LoadCIFAR10(*dataDir, "train", data.CIFAROptions{})
	if err != nil {
		log.Fatal(err)
	}
	idx := data.EvenlySpaced(ds.Len(), *examples)
	var b data.Batch
	ds.Fill(&b, idx)
	fmt.Printf("model cnn width %d hidden %d, %d parameters, float64, GOMAXPROCS %d\n", cfg.CNN.Width, cfg.CNN.Hidden, p, runtime.GOMAXPROCS(0))
	if *checkpoint != "" {
		fmt.Printf("point: checkpoint %s\n", *checkpoint)
	} else {
		fmt.Printf("point: fresh initialisation, seed %d\n", *seed)
	}
	fmt.Printf("batch: %d training examples, evenly spaced over %d\n", b.N, ds.Len())

	t0 := time.Now()
	h, err := probe.NewHessian(m, &b, w0, *step)
	if err != nil {
		log.Fatal(err)
	}
	setup := time.Since(t0)
	fmt.Printf("NewHessian (pattern + gradient at w0): %v, loss %.10g, frozen pattern %v, step %g\n",
		setup.Round(time.Millisecond), h.Loss0, h.FrozenPattern(), *step)

	rng := rand.New(rand.NewPCG(*vseed, 0x5eed))
	k := *vectors
	vs := make([]float64, k*p)
	hvs, fwds := make([]float64, k*p), make([]float64, k*p)
	fwd := h.Forward(0)
	var hvTimes []float64
	for j := 0; j < k; j++ {
		v := vs[j*p : (j+1)*p]
		var nn float64
		for i := range v {
			v[i] = rng.NormFloat64()
			nn += v[i] * v[i]
		}
		nn = math.Sqrt(nn)
		for i := range v {
			v[i] /= nn
		}
		t := time.Now()
		if err := h.Apply(hvs[j*p:(j+1)*p], v); err != nil {
			log.Fatal(err)
		}
		d := time.Since(t)
		hvTimes = append(hvTimes, d.Seconds())
		if err := fwd.Apply(fwds[j*p:(j+1)*p], v); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("HVP %d: %v  ||Hv|| %.6g  v.Hv %.10g\n", j, d.Round(time.Millisecond), norm(hvs[j*p:(j+1)*p]), dot(v, hvs[j*p:(j+1)*p]))
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	write := func(name string, shape []int, v []float64) {
		if err := npy.WriteNPY(filepath.Join(*out, name), shape, v); err != nil {
			log.Fatal(err)
		}
	}
	write("params.npy", []int{p}, w0)
	write("x.npy", []int{b.N, 3, 32, 32}, b.X)
	write("grad.npy", []int{p}, h.Grad0)
	write("v.npy", []int{k, p}, vs)
	write("hv.npy", []int{k, p}, hvs)
	write("hv_forward.npy", []int{k, p}, fwds)
	if err := writeInt64NPY(filepath.Join(*out, "labels.npy"), b.Labels); err != nil {
		log.Fatal(err)
	}

	var unfrozenTimes []float64
	if *unfrozen {
		hu := make([]float64, k*p)
		for j := 0; j < k; j++ {
			t := time.Now()
			if err := plainCentral(m, &b, w0, vs[j*p:(j+1)*p], *step, hu[j*p:(j+1)*p]); err != nil {
				log.Fatal(err)
			}
			unfrozenTimes = append(unfrozenTimes, time.Since(t).Seconds())
		}
		write("hv_unfrozen.npy", []int{k, p}, hu)
	}

	if err := writeJSON(filepath.Join(*out, "layout.json"), m.Tensors()); err != nil {
		log.Fatal(err)
	}
	meta := map[string]any{
		"checkpoint":        *checkpoint,
		"seed":              *seed,
		"vseed":             *vseed,
		"width":             cfg.CNN.Width,
		"hidden":            cfg.CNN.Hidden,
		"examples":          b.N,
		"indices":           idx,
		"step":              *step,
		"loss":              h.Loss0,
		"frozen_pattern":    h.FrozenPattern(),
		"gomaxprocs":        runtime.GOMAXPROCS(0),
		"setup_seconds":     setup.Seconds(),
		"hvp_seconds":       hvTimes,
		"unfrozen_seconds":  unfrozenTimes,
		"num_params":        p,
		"data":              *dataDir,
		"cifar_train_count": ds.Len(),
	}
	if err := writeJSON(filepath.Join(*out, "meta.json"), meta); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s\n", *out)
}

// sidecarCNN reads the CNN size from the checkpoint's sidecar (step-N.json
// next to step-N.npz), or returns nil if there is none.
func sidecarCNN(ckpt string) (*models.CNNConfig, error) {
	path := strings.TrimSuffix(ckpt, ".npz") + ".json"
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sc struct {
		Config struct {
			Model models.Config `json:"model"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	mc := sc.Config.Model
	if mc.Kind != "" && mc.Kind != "cnn" {
		return nil, fmt.Errorf("%s: model kind %q, want cnn", path, mc.Kind)
	}
	if mc.CNN.Width == 0 || mc.CNN.Hidden == 0 {
		return nil, nil
	}
	return &mc.CNN, nil
}

// plainCentral is (g(w0 + e v) - g(w0 - e v)) / 2e with e = step/||v|| and
// the plain gradient, whose activation pattern follows the parameters. It
// leaves m at w0.
func plainCentral(m models.Model, b *data.Batch, w0, v []float64, step float64, dst []float64) error {
	e := step / norm(v)
	w := make([]float64, len(w0))
	gp := make([]float64, len(w0))
	for _, s := range []float64{1, -1} {
		for i := range w {
			w[i] = w0[i] + s*e*v[i]
		}
		m.SetParams(w)
		g := dst
		if s > 0 {
			g = gp
		}
		if _, err := m.Grad(b, g); err != nil {
			m.SetParams(w0)
			return err
		}
	}
	m.SetParams(w0)
	for i := range dst {
		dst[i] = (gp[i] - dst[i]) / (2 * e)
	}
	return nil
}

// writeInt64NPY writes v as a 1-D little-endian int64 .npy file
// (internal/npy writes only floats).
func writeInt64NPY(path string, v []int) error {
	dict := fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", len(v))
	// magic (6) + version (2) + header length (2) + dict + padding + '\n'
	// is a multiple of 64.
	pad := 64 - (10+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(&buf, binary.LittleEndian, uint16(len(hdr)))
	buf.WriteString(hdr)
	for _, x := range v {
		_ = binary.Write(&buf, binary.LittleEndian, int64(x))
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

// Command hvp32 measures how far cheaper Hessian-vector products are from
// the float64 central differences the probes certify with, and how much
// faster they are, at a run's reference point: float32 central
// differences, and with -forward float64 forward differences from the
// cached gradient (probe.ForwardHessian, what the survey's searches and
// stochastic estimates run on). The activation pattern is held fixed
// throughout.
//
// Usage (from the repository root):
//
//	go run ./scripts/hvp32 -run RUN [-examples 512] [-vectors 3] [-steps 1e-3,3e-3,1e-2,3e-2,1e-1] [-forward 1e-5,1e-6,1e-7] [-directions flat-]
//
// It prints, per unit vector, kind of product and step, ||H v|| (float64
// central), the product's error and the two products' times. The vectors are
// random, or with -directions the survey's directions whose source starts
// with that prefix (RUN/hessian): a flat direction's small
// ||H v|| shows the step's truncation error, which a random vector's
// larger product hides.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/internal/floatlist"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

func main() {
	runDir := flag.String("run", "", "run directory (required)")
	examples := flag.Int("examples", 512, "evaluation examples, evenly spaced over the training set")
	vectors := flag.Int("vectors", 3, "random unit vectors")
	steps := flag.String("steps", "1e-3,3e-3,1e-2,3e-2,1e-1", "float32 finite-difference steps")
	forward := flag.String("forward", "", "also float64 forward differences at these steps (e.g. 1e-5,1e-6,1e-7)")
	prefix := flag.String("directions", "", "use the survey's directions whose source starts with this prefix, not random vectors")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("hvp32: ")
	if *runDir == "" {
		log.Fatal("-run is required")
	}
	hs, err := floatlist.Positive(*steps)
	if err != nil {
		log.Fatalf("-steps: %v", err)
	}
	var fs []float64
	if *forward != "" {
		if fs, err = floatlist.Positive(*forward); err != nil {
			log.Fatalf("-forward: %v", err)
		}
	}
	ref, err := train.LoadReference(*runDir, "")
	if err != nil {
		log.Fatal(err)
	}
	m64, err := ref.NewProbeModel()
	if err != nil {
		log.Fatal(err)
	}
	mc := ref.Config.Model
	mc.DType, mc.Impl = "float32", "fused" // fused: it holds the pattern
	m32, err := models.New(mc, ref.Data.Shape, 1)
	if err != nil {
		log.Fatal(err)
	}
	idx := data.EvenlySpaced(ref.Data.Train.Len(), *examples)
	var b data.Batch
	ref.Data.Train.Fill(&b, idx)
	h64, err := probe.NewHessian(m64, &b, ref.W, probe.DefaultFDStep)
	if err != nil {
		log.Fatal(err)
	}
	type product struct {
		name string
		step float64
		op   probe.Operator
	}
	var ops []product
	for _, h := range hs {
		h32, err := probe.NewHessian(m32, &b, ref.W, h)
		if err != nil {
			log.Fatal(err)
		}
		ops = append(ops, product{"float32 central", h, h32})
	}
	for _, h := range fs {
		ops = append(ops, product{"float64 forward", h, h64.Forward(h)})
	}
	p := len(ref.W)
	fmt.Printf("%s: %s, %d parameters, %d examples; reference: float64 central differences, step %g\n", *runDir, mc.Kind, p, b.N, probe.DefaultFDStep)
	fmt.Println("| vector | product | step | ||H v|| | error | relative | its time | reference's time |")
	fmt.Println("|---:|---|---:|---:|---:|---:|---:|---:|")
	vs, names, err := unitVectors(*runDir, *prefix, *vectors, p)
	if err != nil {
		log.Fatal(err)
	}
	want, got := make([]float64, p), make([]float64, p)
	for k, v := range vs {
		t0 := time.Now()
		if err := h64.Apply(want, v); err != nil {
			log.Fatal(err)
		}
		d64 := time.Since(t0)
		nw := norm(want, nil)
		for _, o := range ops {
			t1 := time.Now()
			if err := o.op.Apply(got, v); err != nil {
				log.Fatal(err)
			}
			d := time.Since(t1)
			e := norm(got, want)
			fmt.Printf("| %s | %s | %g | %.4g | %.3g | %.3g | %v | %v |\n", names[k], o.name, o.step, nw, e, e/nw, d.Round(time.Millisecond), d64.Round(time.Millisecond))
		}
	}
}

// unitVectors returns n random unit vectors of length p, or with a
// prefix the run's survey directions whose source starts with it, and
// their names.
func unitVectors(runDir, prefix string, n, p int) ([][]float64, []string, error) {
	if prefix == "" {
		rng := rand.New(rand.NewPCG(3, 3))
		vs, names := make([][]float64, n), make([]string, n)
		for k := range vs {
			v := make([]float64, p)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			s := 1 / norm(v, nil)
			for i := range v {
				v[i] *= s
			}
			vs[k], names[k] = v, strconv.Itoa(k)
		}
		return vs, names, nil
	}
	dirs, sources, err := experiment.LoadDirections(runDir, "", p)
	if err != nil {
		return nil, nil, err
	}
	var vs [][]float64
	var names []string
	for i, src := range sources {
		if strings.HasPrefix(src, prefix) {
			vs, names = append(vs, dirs[i]), append(names, src)
		}
	}
	if len(vs) == 0 {
		return nil, nil, fmt.Errorf("%s: no survey direction's source starts with %q", runDir, prefix)
	}
	return vs, names, nil
}

// norm is ||a - b|| (||a|| for b nil).
func norm(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		if b != nil {
			x -= b[i]
		}
		s += x * x
	}
	return math.Sqrt(s)
}

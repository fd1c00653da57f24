package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

func readSurrogateInfo(t *testing.T, dir string) SurrogateInfo {
	t.Helper()
	info, err := readJSON[SurrogateInfo](filepath.Join(dir, SurrogateFile))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// variancesAt returns the across-replica variance (ddof 1) of every
// direction at logged row row.
func variancesAt(e *EnsembleData, row int) []float64 {
	R, K := len(e.Proj), e.Manifest.Directions
	out := make([]float64, K)
	for i := range out {
		var mean, m2 float64
		for r := 0; r < R; r++ {
			mean += e.Proj[r][row][i] / float64(R)
		}
		for r := 0; r < R; r++ {
			d := e.Proj[r][row][i] - mean
			m2 += d * d
		}
		out[i] = m2 / float64(R-1)
	}
	return out
}

// TestSurrogateMatchesEulerRecursion runs both surrogates on linear
// regression from the exact least-squares solution, where the drift is
// exactly H x. Along an eigenvector (H u = lambda u) the projection then
// follows p' = (1 - eta lambda) p + eta u . xi with u . xi ~ N(0, c), so
// its variance after T steps is exactly
// eta^2 c (1 - a^(2T)) / (1 - a^2), a = 1 - eta lambda (the stationary
// eta^2 c / (1 - (1 - eta lambda)^2) once a^(2T) is negligible). With c
// the surrogate's own u^T C-hat u the ensemble must match within its
// sampling error; with M large, C-hat must also match the true noise
// covariance C_1 / b, so the low-rank surrogate reproduces the exact
// Langevin-Euler process of the true C.
func TestSurrogateMatchesEulerRecursion(t *testing.T) {
	const d, b, R, T, M = 3, 8, 250, 30, 1000
	ref, dirs, resid, H, rows := linregReference(t, 90, d)
	N := len(rows)
	var eig mat.EigenSym
	eig.Factorize(H, false)
	lams := eig.Values(nil) // ascending, in the order of dirs
	eta := 0.8 / lams[d-1]
	C1 := mat.NewSymDense(d, nil) // per-example gradient covariance (the mean gradient is 0)
	for n, a := range rows {
		C1.SymRankOne(C1, resid[n]*resid[n]/float64(N), mat.NewVecDense(d, a))
	}
	for _, kind := range []string{SurrogateLangevin, SurrogateLangevinDiag} {
		c := EnsembleConfig{Name: kind, Replicas: R, Steps: T, LR: eta, Batch: b, Sampling: "with", LogEvery: T, CheckpointEvery: T, Seed: 5,
			Surrogate: SurrogateConfig{Kind: kind, Batches: M, EvalExamples: 1 << 20}}
		if _, err := RunEnsemble(context.Background(), ref, dirs, nil, c, Shard{0, 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
		dir := EnsembleDir(ref.Dir, kind)
		e, err := MergeEnsemble(dir)
		if err != nil {
			t.Fatal(err)
		}
		info := readSurrogateInfo(t, dir)
		if e.Manifest.Surrogate.Kind != kind || e.Manifest.Surrogate.EvalExamples != N || info.Batches != M {
			t.Fatalf("%s: manifest surrogate %+v, info %+v: want kind %s, %d evaluation examples (all), M = %d", kind, e.Manifest.Surrogate, info.SurrogateConfig, kind, N, M)
		}
		got := variancesAt(e, 1)
		for i, u := range dirs {
			uv := mat.NewVecDense(d, u)
			a := 1 - eta*lams[i]
			k := eta * eta * (1 - math.Pow(a, 2*T)) / (1 - a*a)
			want := k * info.C[i]
			se := want * math.Sqrt(2.0/(R-1))
			if math.Abs(got[i]-want) > 3*se {
				t.Errorf("%s direction %d (eta lambda %.2f): ensemble variance %.5g, Euler recursion with the surrogate's c %.5g (3 s.e. %.2g)", kind, i, eta*lams[i], got[i], want, 3*se)
			}
			// The true noise variance along u at batch b, and the standard
			// error of its M-batch estimate: y_n = r_n (a_n . u), the batch
			// mean of b draws has E ybar^2 = mu2 / b and
			// E ybar^4 = (mu4 + 3 (b - 1) mu2^2) / b^3.
			var mu2, mu4 float64
			for n, row := range rows {
				y := resid[n] * mat.Dot(mat.NewVecDense(d, row), uv)
				mu2 += y * y / float64(N)
				mu4 += y * y * y * y / float64(N)
			}
			cTrue := mat.Inner(uv, C1, uv) / b
			if kind == SurrogateLangevinDiag {
				var diag float64
				for j := 0; j < d; j++ {
					diag += u[j] * u[j] * C1.At(j, j) / b
				}
				// Loose: this data's C is nearly diagonal, so the two agree
				// to a few percent; the symmetry test shows where they part.
				if math.Abs(info.C[i]-diag) > 0.1*diag {
					t.Errorf("diag direction %d: u^T D u = %.5g, true u^T diag(C) u %.5g", i, info.C[i], diag)
				}
				continue
			}
			e4 := (mu4 + 3*(b-1)*mu2*mu2) / (b * b * b)
			seC := math.Sqrt((e4 - cTrue*cTrue) / M)
			if math.Abs(info.C[i]-cTrue) > 4*seC {
				t.Errorf("direction %d: surrogate c %.5g, true c %.5g (4 s.e. %.2g)", i, info.C[i], cTrue, 4*seC)
			}
			wantTrue := k * cTrue
			seTrue := math.Hypot(se, k*seC)
			if math.Abs(got[i]-wantTrue) > 3*seTrue {
				t.Errorf("direction %d: ensemble variance %.5g, Euler recursion with the true c %.5g (3 s.e. %.2g)", i, got[i], wantTrue, 3*seTrue)
			}
			t.Logf("direction %d (eta lambda %.2f): variance %.5g, with c-hat %.5g, with true c %.5g", i, eta*lams[i], got[i], want, wantTrue)
		}
	}
}

// softmaxReference is a float64 tanh MLP on generated 3-class data at its
// initialisation, with two directions: the shift of all output biases
// together (an exact symmetry: every per-example loss is constant along
// it, so its gradient noise is zero) and a random one.
func softmaxReference(t *testing.T) (*Reference, [][]float64) {
	t.Helper()
	const n, dim, classes = 240, 4, 3
	rng := rand.New(rand.NewPCG(21, 22))
	tb := &data.Table{Dim: dim, Classes: classes}
	for i := 0; i < n; i++ {
		var s float64
		for j := 0; j < dim; j++ {
			x := rng.NormFloat64()
			tb.X = append(tb.X, x)
			s += float64(j+1) * x
		}
		tb.Labels = append(tb.Labels, int(math.Abs(s+rng.NormFloat64()))%classes)
	}
	c := DefaultConfig("mlp")
	c.Model.DType = "float64"
	c.Model.MLP = models.MLPConfig{Hidden: []int{6}}
	c = c.WithDefaults()
	ref := &Reference{Dir: t.TempDir(), Config: c, Checkpoint: "initialisation",
		Data: &Data{Train: tb, Val: tb, Shape: models.Shape{Inputs: dim, Classes: classes}}}
	m, err := ref.NewModel("")
	if err != nil {
		t.Fatal(err)
	}
	ref.W = make([]float64, m.NumParams())
	m.Params(ref.W)
	null := make([]float64, len(ref.W))
	found := false
	for _, ti := range m.Tensors() {
		if ti.Name == "out.bias" {
			for j := 0; j < ti.Size; j++ {
				null[ti.Offset+j] = 1 / math.Sqrt(float64(ti.Size))
			}
			found = true
		}
	}
	if !found {
		t.Fatal("the MLP has no out.bias tensor")
	}
	random := make([]float64, len(ref.W))
	var nr float64
	for j := range random {
		random[j] = rng.NormFloat64()
		nr += random[j] * random[j]
	}
	for j := range random {
		random[j] /= math.Sqrt(nr)
	}
	return ref, [][]float64{null, random}
}

// TestSurrogateSymmetryNull checks that the low-rank surrogate never moves
// an exact symmetry direction, while the paper's diagonal one diffuses
// along it at exactly the rate its per-parameter variances imply (no drift
// and no curvature there: variance eta^2 T u^T D u after T steps).
func TestSurrogateSymmetryNull(t *testing.T) {
	const R, T = 64, 40
	ref, dirs := softmaxReference(t)
	vars := map[string][]float64{}
	cs := map[string][]float64{}
	for _, kind := range []string{SurrogateLangevin, SurrogateLangevinDiag} {
		c := EnsembleConfig{Name: kind, Replicas: R, Steps: T, LR: 0.1, Batch: 16, Sampling: "without", LogEvery: T, CheckpointEvery: T, Seed: 9,
			Surrogate: SurrogateConfig{Kind: kind, Batches: 32, EvalExamples: 128}}
		if _, err := RunEnsemble(context.Background(), ref, dirs, []string{"null", "random"}, c, Shard{0, 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
		dir := EnsembleDir(ref.Dir, kind)
		e, err := MergeEnsemble(dir)
		if err != nil {
			t.Fatal(err)
		}
		vars[kind] = variancesAt(e, 1)
		cs[kind] = readSurrogateInfo(t, dir).C
		t.Logf("%s: c = %.3g (null), %.3g (random); variance after %d steps %.3g (null), %.3g (random)", kind, cs[kind][0], cs[kind][1], T, vars[kind][0], vars[kind][1])
	}
	low, diag := vars[SurrogateLangevin], vars[SurrogateLangevinDiag]
	if c := cs[SurrogateLangevin]; !(c[0] < 1e-20*c[1]) {
		t.Errorf("low-rank noise along the symmetry null: c = %.3g, random direction %.3g; want round-off", c[0], c[1])
	}
	if !(low[0] < 1e-20*low[1]) || !(low[1] > 0) {
		t.Errorf("low-rank surrogate: variance %.3g along the symmetry null, %.3g along a random direction; want round-off and nonzero", low[0], low[1])
	}
	want := 0.1 * 0.1 * T * cs[SurrogateLangevinDiag][0]
	se := want * math.Sqrt(2.0/(R-1))
	if !(want > 1e-8) || math.Abs(diag[0]-want) > 3*se {
		t.Errorf("diagonal surrogate along the symmetry null: variance %.4g, want eta^2 T u^T D u = %.4g (3 s.e. %.2g)", diag[0], want, 3*se)
	}
}

// TestSurrogateReproducible checks that a surrogate replica depends only
// on (seed, replica, step): the same replica twice, under sharding, other
// worker counts and interruptions, is bit-identical; and that the manifest
// tells the kinds apart from each other and from SGD.
func TestSurrogateReproducible(t *testing.T) {
	ref, dirs, _, _, _ := linregReference(t, 120, 3)
	ctx := context.Background()
	cfg := func(name, kind string, replicas int) EnsembleConfig {
		c := ensembleConfig(name, replicas, 10)
		c.Surrogate = SurrogateConfig{Kind: kind, Batches: 8, EvalExamples: 50}
		return c
	}
	run := func(c EnsembleConfig, shard Shard, workers int) string {
		t.Helper()
		if _, err := RunEnsemble(ctx, ref, dirs, nil, c, shard, workers, nil); err != nil {
			t.Fatal(err)
		}
		return EnsembleDir(ref.Dir, c.Name)
	}
	want := trajectories(t, run(cfg("a", SurrogateLangevin, 3), Shard{0, 1}, 1), 3)
	again := trajectories(t, run(cfg("b", SurrogateLangevin, 3), Shard{0, 1}, 2), 3)
	run(cfg("sharded", SurrogateLangevin, 3), Shard{1, 2}, 1)
	sharded := trajectories(t, run(cfg("sharded", SurrogateLangevin, 3), Shard{0, 2}, 1), 3)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := RunEnsemble(cctx, ref, dirs, nil, cfg("resumed", SurrogateLangevin, 3), Shard{0, 1}, 2, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled run: got %v, want ErrInterrupted", err)
	}
	resumed := trajectories(t, run(cfg("resumed", SurrogateLangevin, 3), Shard{0, 1}, 2), 3)
	for r := range want {
		for name, other := range map[string][][]byte{"a rerun": again, "a sharded run": sharded, "a resumed run": resumed} {
			if !bytes.Equal(want[r], other[r]) {
				t.Errorf("replica %d: %s differs", r, name)
			}
		}
	}
	if bytes.Equal(want[0], want[1]) {
		t.Error("replicas 0 and 1 are identical: noise streams are not independent")
	}
	diag := trajectories(t, run(cfg("diag", SurrogateLangevinDiag, 3), Shard{0, 1}, 1), 3)
	sgd := trajectories(t, run(ensembleConfig("sgd", 3, 10), Shard{0, 1}, 1), 3)
	if bytes.Equal(diag[0], want[0]) || bytes.Equal(sgd[0], want[0]) {
		t.Error("the diagonal surrogate or SGD reproduced the low-rank surrogate's trajectory")
	}

	read := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join(EnsembleDir(ref.Dir, name), ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, ok := read("sgd")["surrogate"]; ok {
		t.Error("an SGD manifest has a surrogate field (it would change every SGD fingerprint)")
	}
	if s, _ := read("diag")["surrogate"].(map[string]any); s["kind"] != SurrogateLangevinDiag || s["batches"] != 8.0 || s["eval_examples"] != 50.0 {
		t.Errorf("diagonal surrogate manifest records %v", s)
	}
	if _, err := RunEnsemble(ctx, ref, dirs, nil, cfg("a", SurrogateLangevinDiag, 3), Shard{0, 1}, 1, nil); err == nil {
		t.Error("rerunning a low-rank surrogate ensemble's name as a diagonal one succeeded")
	}
}

func TestSurrogateValidate(t *testing.T) {
	for _, tc := range []struct {
		s    SurrogateConfig
		want string
	}{
		{SurrogateConfig{Kind: "brownian", Batches: 8, EvalExamples: 8}, `surrogate "brownian"`},
		{SurrogateConfig{Kind: SurrogateLangevin, Batches: 1, EvalExamples: 8}, "at least 2"},
		{SurrogateConfig{Kind: SurrogateLangevin, Batches: 8, EvalExamples: -1}, "evaluation examples -1"},
		{SurrogateConfig{Batches: 8}, "SGD ensemble"},
	} {
		c := ensembleConfig("x", 2, 5)
		c.Surrogate = tc.s
		if err := c.Validate(100); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.s, err, tc.want)
		}
	}
	if d := (SurrogateConfig{Kind: SurrogateLangevin}).WithDefaults(); d.Batches != DefaultSurrogateBatches || d.EvalExamples != DefaultSurrogateEval {
		t.Errorf("defaults %+v", d)
	}
	if (SurrogateConfig{}).WithDefaults() != (SurrogateConfig{}) {
		t.Error("defaults turned an SGD ensemble into a surrogate")
	}
}

// BenchmarkSurrogateStep measures one replica-step of SGD and of both
// surrogates (M = 64 noise batches) on small models: a surrogate step is a
// full gradient over the evaluation set plus the noise draw, an SGD step a
// minibatch gradient. Logging is the same for all three and left out.
//
//	go test -run '^$' -bench SurrogateStep -benchtime 20x ./train/
func BenchmarkSurrogateStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	cases := []struct {
		name        string
		cfg         models.Config
		shape       models.Shape
		batch, eval int
		features    int
		context     int
		classes     int
	}{
		// ~1,000 parameters: 20 -> 40 -> 5.
		{"mlp-1045", models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{40}}}, models.Shape{Inputs: 20, Classes: 5}, 32, 512, 20, 0, 5},
		// The paper's MLP-386 layout (tanh here) on its 2,048-image subset.
		{"mlp-386", models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 36, Classes: 10}, 64, 2048, 36, 0, 10},
		// configs/quick.yaml's transformer and ensemble batch.
		{"quick-transformer", models.Config{Kind: "transformer", Transformer: models.TransformerConfig{Layers: 1, Width: 32, Heads: 4, Context: 32}}, models.Shape{Vocab: 65}, 16, 512, 0, 32, 65},
		// NanoGPT-960's sizes (with this model's biases) on 2,048 windows.
		{"tiny-transformer", models.Config{Kind: "transformer", Transformer: models.TransformerConfig{Layers: 1, Width: 8, Heads: 1, Context: 16}}, models.Shape{Vocab: 25}, 64, 2048, 0, 16, 25},
	}
	const M = 64
	for _, c := range cases {
		m, err := models.New(c.cfg.WithDefaults(), c.shape, 1)
		if err != nil {
			b.Fatal(err)
		}
		p := m.NumParams()
		w0 := make([]float64, p)
		m.Params(w0)
		mini := randomBatch(rng, c.batch, c.features, c.context, c.classes)
		eval := randomBatch(rng, c.eval, c.features, c.context, c.classes)
		factor := make([][]float64, M)
		sd := make([]float64, p)
		for i := range factor {
			factor[i] = make([]float64, p)
			for j := range factor[i] {
				factor[i][j] = 1e-3 * rng.NormFloat64()
				sd[j] += factor[i][j] * factor[i][j]
			}
		}
		for _, kind := range []string{"sgd", SurrogateLangevin, SurrogateLangevinDiag} {
			b.Run(c.name+"/"+kind, func(b *testing.B) {
				s := &surrogate{kind: kind, eval: *eval}
				if kind == SurrogateLangevin {
					s.factor = factor
				} else {
					s.sd = sd
				}
				noise := s.replica(0)
				w := append([]float64(nil), w0...)
				g := make([]float64, p)
				// CPU time as well as wall time: on a shared machine the
				// wall time per op measures the neighbours too.
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var err error
					if kind == "sgd" {
						_, err = m.Grad(mini, g)
					} else {
						_, err = noise.grad(m, int64(i), g)
					}
					if err != nil {
						b.Fatal(err)
					}
					for j := range w {
						w[j] -= 1e-4 * g[j]
					}
					m.SetParams(w)
					m.Params(w)
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(p), "params")
			})
		}
	}
}

// cpuTime is the user plus system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

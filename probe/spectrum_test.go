package probe

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// trainedMLP returns a small softmax tanh MLP trained by full-batch
// gradient descent on random data, near a minimum, with its data set.
func trainedMLP(t *testing.T, n int) (models.Model, *batchDataset, []float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	ds := &batchDataset{randomBatch(rng, n, 6, 3)}
	m, w := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 6, Classes: 3})
	g := make([]float64, len(w))
	for range 400 {
		m.SetParams(w)
		if _, err := m.Grad(ds.b, g); err != nil {
			t.Fatal(err)
		}
		for i := range w {
			w[i] -= 0.5 * g[i]
		}
	}
	m.SetParams(w)
	return m, ds, w
}

// outputShift is the softmax symmetry: all output biases moved together.
func outputShift(m models.Model) []float64 {
	u := make([]float64, m.NumParams())
	for _, ti := range m.Tensors() {
		if ti.Name == "out.bias" {
			for i := ti.Offset; i < ti.Offset+ti.Size; i++ {
				u[i] = 1 / math.Sqrt(float64(ti.Size))
			}
		}
	}
	return u
}

// exactC is the batch gradient-noise variance along u from every
// per-example gradient: S^2 (N-b)/(N b) without replacement.
func exactC(t *testing.T, m models.Model, ds data.Dataset, w []float64, u []float64, b int, s data.Sampling) float64 {
	t.Helper()
	var one data.Batch
	g := make([]float64, len(w))
	x := make([]float64, ds.Len())
	m.SetParams(w)
	for k := range x {
		ds.Fill(&one, []int{k})
		if _, err := m.Grad(&one, g); err != nil {
			t.Fatal(err)
		}
		x[k] = dot(u, g)
	}
	_, v, _ := varianceWithError(x)
	f, err := BatchFactor(ds.Len(), b, s)
	if err != nil {
		t.Fatal(err)
	}
	return f * v
}

func TestDenseSpectrum(t *testing.T) {
	const n, b = 240, 16
	m, ds, w := trainedMLP(t, n)
	var all data.Batch
	ds.Fill(&all, data.EvenlySpaced(n, n))
	h, err := NewHessian(m, &all, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	win := Window{LR: 0.1, Steps: 200, Threshold: 0.2}
	spec, err := NewDenseSpectrum(context.Background(), FromProducts([]Operator{h}), []models.Model{m}, ds, data.EvenlySpaced(n, n), w, b, data.WithoutReplacement, win, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := m.NumParams()
	if spec.RelAsymmetry > 1e-6 {
		t.Errorf("relative asymmetry %g of finite-difference Hessian", spec.RelAsymmetry)
	}
	// c along eigenvectors equals the brute-force per-example value.
	for _, i := range []int{0, p / 3, p / 2, p - 1} {
		want := exactC(t, m, ds, w, spec.Eigenvector(i), b, data.WithoutReplacement)
		if got := spec.C[i]; math.Abs(got-want) > 1e-9*want+1e-300 && !(want < 1e-25 && got < 1e-25) {
			t.Errorf("eigenvector %d: c = %g, per-example %g", i, got, want)
		}
	}
	// The output-bias shift lies in the null class.
	shift := outputShift(m)
	var inNull float64
	for _, i := range spec.ofClass(ClassNull) {
		c := dot(shift, spec.Eigenvector(i))
		inNull += c * c
	}
	if inNull < 0.999 {
		t.Errorf("output-bias shift has weight %.6f on the %d null eigenvectors, want ~1", inNull, spec.Counts[ClassNull])
	}
	total := 0
	for _, c := range spec.Counts {
		total += c
	}
	if total != p || spec.Counts[ClassNull] < 1 || spec.Counts[ClassConfined] < 1 {
		t.Fatalf("class counts %v over %d eigenvectors", spec.Counts, p)
	}
	bound := win.FlatBound()
	for i, cl := range spec.Classes {
		l := spec.Values[i]
		if (cl == ClassWindowFlat) != (math.Abs(l) < bound && cl != ClassNull) {
			t.Errorf("eigenvector %d: lambda %g class %s with flat bound %g", i, l, cl, bound)
		}
	}
	if spec.Counts[ClassWindowFlat] < 3 {
		t.Fatalf("only %d window-flat eigenvectors (bound %g); the test needs a few", spec.Counts[ClassWindowFlat], bound)
	}
	pos, neg := spec.LargestAbs(10)
	if len(pos)+len(neg) != 10 {
		t.Fatalf("LargestAbs(10) gave %d + %d", len(pos), len(neg))
	}
	minIn := math.Inf(1)
	for _, i := range append(pos, neg...) {
		minIn = math.Min(minIn, math.Abs(spec.Values[i]))
	}
	outside := 0
	for i := range spec.Values {
		if math.Abs(spec.Values[i]) > minIn {
			outside++
		}
	}
	if outside != 9 {
		t.Errorf("LargestAbs(10): %d eigenvalues exceed its smallest member, want 9", outside)
	}
	small := spec.SmallestAbs(3)
	if spec.Classes[small[0]] != ClassNull {
		t.Errorf("smallest |lambda| eigenvector %g is %s, want null (the paper's flat bucket is the nulls)", spec.Values[small[0]], spec.Classes[small[0]])
	}
	// The noisiest axes of the flat subspace: orthonormal, certified, and
	// the first carries at least the noise of the noisiest flat eigenvector.
	dirs, cs := spec.FlatDirections(3, nil)
	checkOrthonormal(t, dirs, 1e-10)
	var maxEig float64
	for _, i := range spec.ofClass(ClassWindowFlat) {
		maxEig = math.Max(maxEig, spec.C[i])
	}
	for k, u := range dirs {
		if hn := spec.HNorm(u); hn > bound {
			t.Errorf("flat axis %d: ||H u|| = %g above the bound %g", k, hn, bound)
		}
		if dot(u, shift) > 1e-8 {
			t.Errorf("flat axis %d overlaps the null shift by %g", k, dot(u, shift))
		}
		want := exactC(t, m, ds, w, u, b, data.WithoutReplacement)
		if math.Abs(cs[k]-want) > 1e-9*want {
			t.Errorf("flat axis %d: c %g, per-example %g", k, cs[k], want)
		}
		if k > 0 && cs[k] > cs[k-1]*(1+1e-12) {
			t.Errorf("flat axes not in decreasing noise: %g then %g", cs[k-1], cs[k])
		}
	}
	if cs[0] < maxEig*(1-1e-9) {
		t.Errorf("first flat axis has c %g below the noisiest flat eigenvector's %g", cs[0], maxEig)
	}
}

// TestMinibatchNoiseUnbiased: each noise batch is a fresh sample, so the
// sample variance over batches is unbiased for the without-replacement
// batch variance. Slices of one shuffle would be too high by N/(N-b) = 2
// here. The bootstrap interval must cover the exact value for at least 18
// of 20 random directions.
func TestMinibatchNoiseUnbiased(t *testing.T) {
	const n, b, dirsN = 120, 60, 20
	m, ds, w := trainedMLP(t, n)
	rng := rand.New(rand.NewPCG(3, 9))
	var dirs [][]float64
	for range dirsN {
		dirs = append(dirs, randomUnit(rng, m.NumParams()))
	}
	got, samples, err := MinibatchNoise(context.Background(), []models.Model{m}, ds, w, dirs, NoiseOptions{Batches: 200, BatchSize: b, Sampling: data.WithoutReplacement, Seed: 5, Stream: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if samples.Batches != 200 || len(samples.Curv[0]) != dirsN*dirsN {
		t.Fatalf("samples %d batches, %d curvature entries", samples.Batches, len(samples.Curv[0]))
	}
	covered := 0
	var ratio float64
	for i, u := range dirs {
		want := exactC(t, m, ds, w, u, b, data.WithoutReplacement)
		ratio += got[i].C / want / dirsN
		if got[i].CLo <= want && want <= got[i].CHi {
			covered++
		}
	}
	t.Logf("mean c / exact %.3f, %d of %d intervals cover", ratio, covered, dirsN)
	if ratio < 0.85 || ratio > 1.15 {
		t.Errorf("mean ratio of c to its exact value %.3f: biased (slices of one shuffle give 2)", ratio)
	}
	if covered < 18 {
		t.Errorf("only %d of %d bootstrap intervals cover the exact c", covered, dirsN)
	}
}

// TestSurveyDense runs the whole dense survey: the probed directions are
// top, flat and null ones with their certificates and classes, and c is
// exact (the evaluation set is the whole training set).
func TestSurveyDense(t *testing.T) {
	const n, b = 240, 16
	m, ds, w := trainedMLP(t, n)
	s, err := RunSurvey(context.Background(), m, ds, w, SurveyOptions{
		EvalExamples: n, Dense: true, Top: 3, Bottom: 2, Bulk: -1, Flat: 3, Nulls: 1, NoiseBatches: 8,
		BatchSize: b, Sampling: data.WithoutReplacement, Window: Window{LR: 0.1, Steps: 200}, Seed: 1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]string{}
	for i, d := range s.Directions {
		classes[d.Source] = d.Class
		want := exactC(t, m, ds, w, s.Vectors[i], b, data.WithoutReplacement)
		if math.Abs(d.C-want) > 1e-9*want && !(want < 1e-25 && d.C < 1e-25) {
			t.Errorf("%s: c %g, exact %g", d.Source, d.C, want)
		}
		if d.CErr > 1e-12*d.C {
			t.Errorf("%s: c_err %g with every example used", d.Source, d.CErr)
		}
		if d.Certificate == "" || (d.HNorm == 0 && !d.Null) {
			t.Errorf("%s: no certificate or ||H u|| (%q, %g)", d.Source, d.Certificate, d.HNorm)
		}
	}
	for src, want := range map[string]string{"top-0": ClassConfined, "flat-0": ClassWindowFlat, "flat-2": ClassWindowFlat, "null-0": ClassNull} {
		if classes[src] != want {
			t.Errorf("%s classified %q, want %q (all: %v)", src, classes[src], want, classes)
		}
	}
	checkOrthonormal(t, s.Vectors, 1e-8)
	// The paper's sets beside sgdyn's: no eigenvector may be probed twice
	// (the subspace recursion needs an orthonormal set).
	s2, err := RunSurvey(context.Background(), m, ds, w, SurveyOptions{
		EvalExamples: n, Dense: true, TopAbs: 4, Smallest: 3, Bulk: -1, Flat: 2, Nulls: 2, NoiseBatches: 4,
		BatchSize: b, Sampling: data.WithoutReplacement, Window: Window{LR: 0.1, Steps: 200}, Seed: 1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOrthonormal(t, s2.Vectors, 1e-8)
	if got := len(s2.Top) + len(s2.Bottom); got != 4 {
		t.Errorf("top_abs 4 gave %d top and bottom directions", got)
	}
	if len(s.HV) != len(s.Vectors) || s.Noise == nil || s.Noise.Batches != 8 {
		t.Fatalf("subspace inputs missing: HV %d, noise %+v", len(s.HV), s.Noise)
	}
	for i, d := range s.Directions {
		if math.Abs(s.CV[i][i]-d.C) > 1e-12*d.C {
			t.Errorf("%s: CV diagonal %g, c %g", d.Source, s.CV[i][i], d.C)
		}
	}
	if s.HV[0][0] != s.Directions[0].Lambda && math.Abs(s.HV[0][0]-s.Directions[0].Lambda) > 1e-9*math.Abs(s.Directions[0].Lambda) {
		t.Errorf("HV[0][0] %g, lambda %g", s.HV[0][0], s.Directions[0].Lambda)
	}
}

// TestSurveyLabelsUnconverged: a Lanczos pair that misses the tolerance is
// labelled in its certificate, flagged in the eigenvalue list and warned
// about; with the cap left automatic the survey grows it until they converge.
func TestSurveyLabelsUnconverged(t *testing.T) {
	const n, b = 240, 16
	m, ds, w := trainedMLP(t, n)
	opts := SurveyOptions{EvalExamples: n, Top: 3, Bottom: 3, Bulk: -1, NoiseBatches: 4, DensityStarts: -1, TraceSamples: -1,
		BatchSize: b, Sampling: data.WithoutReplacement, Tol: 1e-6, MaxIter: 8, Seed: 2}
	s, err := RunSurvey(context.Background(), m, ds, w, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	unconverged := 0
	for _, ev := range append(append([]Eigenvalue(nil), s.Top...), s.Bottom...) {
		if !ev.Converged {
			unconverged++
		}
	}
	labelled := 0
	for _, d := range s.Directions {
		if strings.HasPrefix(d.Certificate, "NOT CONVERGED") {
			labelled++
		}
	}
	if unconverged == 0 || labelled != unconverged || len(s.Warnings) != unconverged {
		t.Fatalf("a Krylov space of 8 for 6 pairs at tol 1e-6: %d unconverged, %d labelled, %d warnings", unconverged, labelled, len(s.Warnings))
	}
	opts.MaxIter = 0
	s, err = RunSurvey(context.Background(), m, ds, w, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range append(s.Top, s.Bottom...) {
		if !ev.Converged {
			t.Errorf("automatic cap: pair %g still unconverged (residual %g), warnings %v", ev.Value, ev.Residual, s.Warnings)
		}
	}
}

// TestMinibatchNoiseInstances: spreading the noise batches over two model
// instances gives the same numbers bit for bit.
func TestMinibatchNoiseInstances(t *testing.T) {
	m, ds, w := trainedMLP(t, 120)
	m2, _ := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 6, Classes: 3})
	rng := rand.New(rand.NewPCG(8, 1))
	dirs := [][]float64{randomUnit(rng, m.NumParams()), randomUnit(rng, m.NumParams()), outputShift(m)}
	opts := NoiseOptions{Batches: 9, BatchSize: 10, Sampling: data.WithoutReplacement, Seed: 4, Stream: 50}
	one, s1, err := MinibatchNoise(context.Background(), []models.Model{m}, ds, w, dirs, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	two, s2, err := MinibatchNoise(context.Background(), []models.Model{m, m2}, ds, w, dirs, opts, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls != opts.Batches {
		t.Errorf("progress called %d times for %d batches", calls, opts.Batches)
	}
	for j := range opts.Batches {
		for i := range s1.Grad[j] {
			if s1.Grad[j][i] != s2.Grad[j][i] {
				t.Fatalf("batch %d direction %d: gradient %v on one instance, %v on two", j, i, s1.Grad[j][i], s2.Grad[j][i])
			}
		}
		for i := range s1.Curv[j] {
			if s1.Curv[j][i] != s2.Curv[j][i] {
				t.Fatalf("batch %d entry %d: curvature %v on one instance, %v on two", j, i, s1.Curv[j][i], s2.Curv[j][i])
			}
		}
	}
	for i := range one {
		if one[i] != two[i] {
			t.Errorf("direction %d: %+v on one instance, %+v on two", i, one[i], two[i])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := MinibatchNoise(ctx, []models.Model{m, m2}, ds, w, dirs, opts, nil); err == nil {
		t.Error("a cancelled context did not stop the noise measurement")
	}
}

func TestHeldOutIndices(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{100, 10}, {101, 7}, {1000, 333}, {10, 5}, {45000, 512}} {
		idx := data.EvenlySpaced(tc.n, tc.k)
		held := HeldOutIndices(tc.n, idx)
		if len(held) != tc.k {
			t.Fatalf("n %d k %d: %d held-out examples", tc.n, tc.k, len(held))
		}
		in := map[int]bool{}
		for _, i := range idx {
			in[i] = true
		}
		seen := map[int]bool{}
		for _, i := range held {
			if i < 0 || i >= tc.n || in[i] || seen[i] {
				t.Fatalf("n %d k %d: held-out example %d out of range, in the evaluation set or repeated", tc.n, tc.k, i)
			}
			seen[i] = true
		}
	}
	if HeldOutIndices(10, data.EvenlySpaced(10, 6)) != nil || HeldOutIndices(5, nil) != nil {
		t.Errorf("a held-out sample where there is no room for one")
	}
}

// TestSurveyHeldOutNoise: with an evaluation set of a quarter of the data,
// c along every direction (and the dense path's c along every
// eigenvector) comes from the held-out sample, the evaluation set's own c
// is kept beside it, and the flat directions' ||H u|| is rechecked on the
// held-out Hessian; NoiseOnEval restores the evaluation set's c.
func TestSurveyHeldOutNoise(t *testing.T) {
	const n, b = 240, 16
	m, ds, w := trainedMLP(t, n)
	opts := SurveyOptions{EvalExamples: n / 4, Dense: true, Top: 2, Bottom: 1, Bulk: -1, Flat: 2, Nulls: 1, NoiseBatches: 4,
		BatchSize: b, Sampling: data.WithReplacement, Window: Window{LR: 0.1, Steps: 200}, Seed: 1}
	s, err := RunSurvey(context.Background(), m, ds, w, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx := data.EvenlySpaced(n, n/4)
	held := HeldOutIndices(n, idx)
	cOn := func(on []int) []float64 {
		proj, err := ExampleProjections(context.Background(), []models.Model{m}, ds, on, w, s.Vectors)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := NoiseFromProjections(proj, n, b, data.WithReplacement)
		if err != nil {
			t.Fatal(err)
		}
		return ex.C
	}
	cHeld, cEval := cOn(held), cOn(idx)
	hessOn := func(on []int) *Hessian {
		var hb data.Batch
		ds.Fill(&hb, on)
		h, err := NewHessian(m, &hb, w, DefaultFDStep)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var ia, ib []int
	for k, j := range held {
		if k%2 == 0 {
			ia = append(ia, j)
		} else {
			ib = append(ib, j)
		}
	}
	hh, ha, hbb := hessOn(held), hessOn(ia), hessOn(ib)
	if !s.NoiseHeldOut || s.Dense == nil || s.Dense.NoiseExamples != len(held) {
		t.Fatalf("held-out noise not used: %v, dense %+v", s.NoiseHeldOut, s.Dense)
	}
	differ := 0
	for i, d := range s.Directions {
		if math.Abs(d.C-cHeld[i]) > 1e-10*cHeld[i] || math.Abs(d.CEval-cEval[i]) > 1e-10*cEval[i] {
			t.Errorf("%s: c %g, c_eval %g; want held-out %g, evaluation set %g", d.Source, d.C, d.CEval, cHeld[i], cEval[i])
		}
		if !d.Null && math.Abs(cHeld[i]-cEval[i]) > 1e-3*cHeld[i] {
			differ++
		}
		if strings.HasPrefix(d.Source, "flat-") {
			hv := make([]float64, len(w))
			if err := hh.Apply(hv, s.Vectors[i]); err != nil {
				t.Fatal(err)
			}
			if want := norm(hv); d.HNormHeldOut == 0 || math.Abs(d.HNormHeldOut-want) > 1e-7*want {
				t.Errorf("%s: held-out ||H u|| %g, want %g", d.Source, d.HNormHeldOut, want)
			}
			va, vb := make([]float64, len(w)), make([]float64, len(w))
			if err := ha.Apply(va, s.Vectors[i]); err != nil {
				t.Fatal(err)
			}
			if err := hbb.Apply(vb, s.Vectors[i]); err != nil {
				t.Fatal(err)
			}
			if want := dot(va, vb); math.Abs(d.HNorm2Split-want) > 1e-9*math.Abs(want) {
				t.Errorf("%s: split-half ||H u||^2 %g, want %g", d.Source, d.HNorm2Split, want)
			}
		} else if d.HNormHeldOut != 0 {
			t.Errorf("%s: a held-out recheck of a direction that is not flat", d.Source)
		}
	}
	if differ == 0 {
		t.Errorf("held-out and evaluation-set c agree everywhere: the test cannot tell them apart")
	}
	broken := false
	for _, d := range s.Directions {
		if b := s.Settings.Window.FlatBound(); d.HNorm < b && math.Sqrt(max(d.HNorm2Split, 0)) >= b {
			broken = true
		}
	}
	warned := slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, "held-out (split-half)") })
	if warned != broken {
		t.Errorf("held-out estimate above the bound %g: %v; warnings %q", s.Settings.Window.FlatBound(), broken, s.Warnings)
	}
	opts.NoiseOnEval = true
	s2, err := RunSurvey(context.Background(), m, ds, w, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The dense path picks its flat axes by c, so these are s2's own.
	s.Vectors = s2.Vectors
	cEval = cOn(idx)
	for i, d := range s2.Directions {
		if s2.NoiseHeldOut || d.CEval != 0 || d.HNormHeldOut != 0 || math.Abs(d.C-cEval[i]) > 1e-10*cEval[i] {
			t.Errorf("NoiseOnEval, %s: c %g (evaluation set %g), c_eval %g, held-out ||H u|| %g", d.Source, d.C, cEval[i], d.CEval, d.HNormHeldOut)
		}
	}
}

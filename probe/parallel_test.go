package probe

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// mlpInstances returns k independent float64 instances of the model
// trainedMLP builds (same config and seed), each at w.
func mlpInstances(t *testing.T, k int, w []float64) []models.Model {
	t.Helper()
	var ms []models.Model
	for range k {
		m, _ := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 6, Classes: 3})
		m.SetParams(w)
		ms = append(ms, m)
	}
	return ms
}

// hessians returns one Hessian per instance, all on b at w.
func hessians(t *testing.T, ms []models.Model, b *data.Batch, w []float64) []Operator {
	t.Helper()
	var ops []Operator
	for _, m := range ms {
		h, err := NewHessian(m, b, w, 0)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, h)
	}
	return ops
}

// sameBits reports the first index where a and b differ in any bit.
func sameBits(a, b []float64) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i, false
		}
	}
	return 0, true
}

// TestDenseParallelBitIdentical checks that splitting the dense Hessian's
// products and the per-example gradients over 1, 2 or 3 model instances
// gives the same bytes: a column written to the wrong place, a product made
// at the wrong point or on a shared, half-updated model would change them.
func TestDenseParallelBitIdentical(t *testing.T) {
	const n, b = 240, 16
	_, ds, w := trainedMLP(t, n)
	idx := data.EvenlySpaced(n, n)
	var all data.Batch
	ds.Fill(&all, idx)
	win := Window{LR: 0.1, Steps: 200, Threshold: 0.2}
	var ref *DenseSpectrum
	for _, k := range []int{1, 2, 3} {
		ms := mlpInstances(t, k, w)
		ops := hessians(t, ms, &all, w)
		counted := make([]Operator, k)
		counters := make([]*CountingOperator, k)
		for i, op := range ops {
			counters[i] = &CountingOperator{Op: op}
			counted[i] = counters[i]
		}
		var last atomic.Int64
		spec, err := NewDenseSpectrum(context.Background(), FromProducts(counted), ms, ds, idx, w, b, data.WithoutReplacement, win, 0,
			func(stage string, done, total int) {
				if stage == "dense hessian" {
					last.Store(int64(done))
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		for _, c := range counters {
			calls += c.Calls
		}
		p := len(w)
		if calls != p || last.Load() != int64(p) {
			t.Errorf("%d workers: %d products, progress reached %d; want %d", k, calls, last.Load(), p)
		}
		if ref == nil {
			ref = spec
			continue
		}
		for name, pair := range map[string][2][]float64{
			"H":       {ref.H.RawSymmetric().Data, spec.H.RawSymmetric().Data},
			"values":  {ref.Values, spec.Values},
			"vectors": {ref.Vectors.RawMatrix().Data, spec.Vectors.RawMatrix().Data},
			"c":       {ref.C, spec.C},
			"proj":    {ref.proj.RawMatrix().Data, spec.proj.RawMatrix().Data},
		} {
			if i, ok := sameBits(pair[0], pair[1]); !ok {
				t.Errorf("%d workers: %s differs from 1 worker at %d", k, name, i)
			}
		}
		if ref.Asymmetry != spec.Asymmetry {
			t.Errorf("%d workers: asymmetry %g, 1 worker %g", k, spec.Asymmetry, ref.Asymmetry)
		}
	}

	// The projections on a few directions, split over 1 and 3 instances.
	dirs := [][]float64{ref.Eigenvector(0), ref.Eigenvector(len(w) - 1), outputShift(mlpInstances(t, 1, w)[0])}
	one, err := ExampleProjections(context.Background(), mlpInstances(t, 1, w), ds, idx, w, dirs)
	if err != nil {
		t.Fatal(err)
	}
	three, err := ExampleProjections(context.Background(), mlpInstances(t, 3, w), ds, idx, w, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := sameBits(one.RawMatrix().Data, three.RawMatrix().Data); !ok {
		t.Errorf("example projections differ between 1 and 3 instances at %d", i)
	}
	// And they are the projections of the per-example gradients.
	var want mat.Dense
	want.Mul(ref.proj, ref.Vectors.T()) // back to the gradients
	for r := 0; r < n; r += 37 {
		for i, u := range dirs {
			if got, w := one.At(r, i), dot(u, want.RawRowView(r)); math.Abs(got-w) > 1e-10*(1+math.Abs(w)) {
				t.Errorf("example %d, direction %d: projection %g, from the gradient %g", r, i, got, w)
			}
		}
	}
}

// columnFault fails (or, with block, waits for ctx) at chosen columns of an
// operator: the column is the index of v's unit entry.
type columnFault struct {
	Operator
	fail  map[int]bool
	calls *atomic.Int64
}

func (c columnFault) Apply(dst, v []float64) error {
	c.calls.Add(1)
	for j, x := range v {
		if x != 0 && c.fail[j] {
			return errFault
		}
	}
	return c.Operator.Apply(dst, v)
}

// TestDenseParallelErrors checks that a failing product of any worker is
// reported, as the lowest failing column whatever the number of workers
// (a nondeterministic message would mean the first failure to happen in
// time won), and that no worker keeps going long after.
func TestDenseParallelErrors(t *testing.T) {
	a, _ := withSpectrum(uniform(40, -3, 3, 41), 42)
	for _, k := range []int{1, 2, 4} {
		var calls atomic.Int64
		ops := make([]Operator, k)
		for i := range ops {
			ops[i] = columnFault{Operator: NewMatrixOperator(a), fail: map[int]bool{11: true, 6: true}, calls: &calls}
		}
		_, _, err := DenseMatrixParallel(context.Background(), ops, nil)
		if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "dense: hessian-vector product 7: ") {
			t.Errorf("%d workers: got %v, want the error of product 7", k, err)
		}
		// After the failure is recorded each worker finishes at most the
		// product it is in; before that, a failing worker descheduled on a
		// loaded machine lets the others run a few more (11 of 40 seen at
		// 2 workers). Not stopping at all would make all 40.
		if c := calls.Load(); k == 1 && c != 7 || c >= 20 {
			t.Errorf("%d workers: %d of 40 products made, with a failure at product 7", k, c)
		}
	}
	if _, _, err := DenseMatrixParallel(context.Background(), nil, nil); err == nil {
		t.Error("no operators: no error")
	}
	b, _ := withSpectrum(uniform(5, -3, 3, 41), 42)
	if _, _, err := DenseMatrixParallel(context.Background(), []Operator{NewMatrixOperator(a), NewMatrixOperator(b)}, nil); err == nil || !strings.Contains(err.Error(), "dimension 5") {
		t.Errorf("mismatched operators: got %v", err)
	}
}

// cancelAt cancels the context at its n-th product (counted over all
// workers), then finishes that product. late counts the products begun
// after the cancel returned.
type cancelAt struct {
	Operator
	n      int64
	calls  *atomic.Int64
	done   *atomic.Bool
	late   *atomic.Int64
	cancel context.CancelFunc
}

func (c cancelAt) Apply(dst, v []float64) error {
	if c.done.Load() {
		c.late.Add(1)
	}
	if c.calls.Add(1) == c.n {
		c.cancel()
		c.done.Store(true)
	}
	return c.Operator.Apply(dst, v)
}

// TestDenseParallelCancel checks that cancelling stops every worker before
// its next product with ctx's error.
func TestDenseParallelCancel(t *testing.T) {
	a, _ := withSpectrum(uniform(60, -3, 3, 41), 42)
	for _, k := range []int{1, 2, 3} {
		ctx, cancel := context.WithCancel(context.Background())
		var calls, late atomic.Int64
		var done atomic.Bool
		ops := make([]Operator, k)
		for i := range ops {
			ops[i] = cancelAt{Operator: NewMatrixOperator(a), n: 10, calls: &calls, done: &done, late: &late, cancel: cancel}
		}
		_, _, err := DenseMatrixParallel(ctx, ops, nil)
		cancel()
		if !errors.Is(err, context.Canceled) || err.Error() != context.Canceled.Error() {
			t.Errorf("%d workers: got %v, want ctx's error", k, err)
		}
		// Each other worker may have checked ctx just before the cancel and
		// begin one more product; nothing else may begin after it. (Counting
		// from the 10th product instead fails on a loaded machine: the
		// others keep working while the canceller waits to be scheduled.)
		if c, l := calls.Load(), late.Load(); c < 10 || l > int64(k-1) {
			t.Errorf("%d workers: %d products, %d begun after the cancel; want at least 10 and at most %d", k, c, l, k-1)
		}
	}
}

// failingModel fails the gradient of any batch whose first input is bad.
type failingModel struct {
	models.Model
	bad float64
}

func (f failingModel) Grad(b *data.Batch, g []float64) (float64, error) {
	if b.X[0] == f.bad {
		return 0, errFault
	}
	return f.Model.Grad(b, g)
}

// TestPerExampleParallelErrors checks that a failing per-example gradient
// on any instance is reported with its example, that a cancelled context
// stops the work with its error, and that bad instances are refused.
func TestPerExampleParallelErrors(t *testing.T) {
	const n = 60
	_, ds, w := trainedMLP(t, n)
	idx := data.EvenlySpaced(n, n)
	bad := ds.b.X[17*6] // example 17's first input
	var ms []models.Model
	for _, m := range mlpInstances(t, 3, w) {
		ms = append(ms, failingModel{m, bad})
	}
	_, err := PerExampleGradients(context.Background(), ms, ds, idx, w)
	if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "per-example gradient of example 17: ") {
		t.Errorf("failing gradient: got %v", err)
	}
	_, err = ExampleProjections(context.Background(), ms, ds, idx, w, [][]float64{w})
	if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "per-example gradient of example 17: ") {
		t.Errorf("failing projection: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PerExampleGradients(ctx, mlpInstances(t, 2, w), ds, idx, w); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	if _, err := PerExampleGradients(context.Background(), nil, ds, idx, w); err == nil {
		t.Error("no instances: no error")
	}
	lin, _ := newModel(t, models.Config{Kind: "linreg"}, models.Shape{Inputs: 6})
	if _, err := PerExampleGradients(context.Background(), []models.Model{ms[0], lin}, ds, idx, w); err == nil || !strings.Contains(err.Error(), "instance 1") {
		t.Errorf("mismatched instance: got %v", err)
	}
}

// TestSurveyWorkers runs the dense survey with 1 and 2 workers (the second
// instance from NewModel) and compares the outputs bit for bit, and checks
// that a failing NewModel is reported.
func TestSurveyWorkers(t *testing.T) {
	const n = 120
	_, ds, w := trainedMLP(t, n)
	newInstance := func() (models.Model, error) {
		m, err := models.New(models.Config{Kind: "mlp", DType: "float64", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 6, Classes: 3}, 99)
		return m, err // at other parameters: the survey must set w0
	}
	o := SurveyOptions{Dense: true, EvalExamples: n, TopAbs: 4, Smallest: 2, Bulk: 2, BatchSize: 8, NoiseBatches: 4,
		Window: Window{LR: 0.1, Steps: 200}, Seed: 3, NewModel: newInstance}
	var ref *Survey
	for _, k := range []int{1, 2} {
		o.Workers = k
		m := mlpInstances(t, 1, w)[0]
		s, err := RunSurvey(context.Background(), m, ds, w, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.HVPs != len(w) {
			t.Errorf("%d workers: %d products counted, want %d", k, s.HVPs, len(w))
		}
		if ref == nil {
			ref = s
			continue
		}
		if i, ok := sameBits(ref.Dense.H.RawSymmetric().Data, s.Dense.H.RawSymmetric().Data); !ok {
			t.Errorf("2 workers: dense Hessian differs at %d", i)
		}
		if len(s.Directions) != len(ref.Directions) {
			t.Fatalf("2 workers: %d directions, 1 worker %d", len(s.Directions), len(ref.Directions))
		}
		for i, d := range s.Directions {
			if d != ref.Directions[i] {
				t.Errorf("2 workers: direction %d = %+v, 1 worker %+v", i, d, ref.Directions[i])
			}
		}
	}
	// Cancelled during the dense Hessian: ctx's error, and no product after
	// the workers' current ones.
	o.Workers = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var after atomic.Int64
	_, err := RunSurvey(ctx, mlpInstances(t, 1, w)[0], ds, w, o, func(stage string, done, _ int) {
		if stage == "dense hessian" && done >= 10 {
			if ctx.Err() != nil {
				after.Add(1)
			}
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled survey: got %v", err)
	}
	if a := after.Load(); a > 1 {
		t.Errorf("cancelled survey: %d products finished after the cancel, want at most 1", a)
	}
	o.Workers = -1
	if _, err := RunSurvey(context.Background(), mlpInstances(t, 1, w)[0], ds, w, o, nil); err == nil || !strings.Contains(err.Error(), "-1 workers") {
		t.Errorf("-1 workers: got %v", err)
	}
	o.Workers = 2
	o.NewModel = func() (models.Model, error) { return nil, errFault }
	if _, err := RunSurvey(context.Background(), mlpInstances(t, 1, w)[0], ds, w, o, nil); !errors.Is(err, errFault) {
		t.Errorf("failing NewModel: got %v", err)
	}
}

// TestSurveyDenseSweep runs the dense survey of a small transformer, which
// builds its Hessian with its own sweep, and again by products: the same
// central differences, so the spectra agree to their truncation error and
// the classes are the same.
func TestSurveyDenseSweep(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tokens := make([]int, 300)
	for i := range tokens {
		tokens[i] = r.IntN(6)
	}
	ds, err := data.NewTextWindows(tokens, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg := models.Config{Kind: "transformer", Impl: "fused", DType: "float64",
		Transformer: models.TransformerConfig{Layers: 1, Width: 8, Heads: 1, Context: 8, MLPRatio: 1, GELU: "erf"}}
	m, err := models.New(cfg, models.Shape{Vocab: 6}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(models.DenseHessianer); !ok {
		t.Fatal("the fused float64 transformer has no dense Hessian sweep")
	}
	w := make([]float64, m.NumParams())
	m.Params(w)
	o := SurveyOptions{Dense: true, EvalExamples: 64, TopAbs: 4, Smallest: 2, Bulk: -1, BatchSize: 8, NoiseBatches: 4,
		Window: Window{LR: 0.1, Steps: 100}, Seed: 3, Workers: 2}
	sweep, err := RunSurvey(context.Background(), m, ds, w, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.DenseByProducts = true
	products, err := RunSurvey(context.Background(), m, ds, w, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sweep.Dense.Method != "sweep" || products.Dense.Method != "products" {
		t.Fatalf("methods %q and %q, want sweep and products", sweep.Dense.Method, products.Dense.Method)
	}
	a, b := sweep.Dense.Values, products.Dense.Values
	scale := math.Max(math.Abs(b[0]), math.Abs(b[len(b)-1]))
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-8*scale {
			t.Errorf("eigenvalue %d: sweep %.12g, products %.12g", i, a[i], b[i])
		}
	}
	for i, c := range sweep.Dense.Classes {
		if c != products.Dense.Classes[i] {
			t.Errorf("eigenvector %d: class %s by the sweep, %s by products", i, c, products.Dense.Classes[i])
		}
	}
	// A step so large that the truncation error shows: the survey warns.
	asymWarning := func(s *Survey) bool {
		for _, w := range s.Warnings {
			if strings.Contains(w, "asymmetry") {
				return true
			}
		}
		return false
	}
	if asymWarning(sweep) {
		t.Errorf("step %g: asymmetry %.2g of max |lambda|, yet warned", DefaultFDStep, sweep.Dense.RelAsymmetry)
	}
	o.DenseByProducts, o.FDStep = false, 0.05
	coarse, err := RunSurvey(context.Background(), m, ds, w, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if coarse.Dense.RelAsymmetry <= MaxDenseAsymmetry || !asymWarning(coarse) {
		t.Errorf("step 0.05: asymmetry %.2g of max |lambda|, warnings %q", coarse.Dense.RelAsymmetry, coarse.Warnings)
	}
}

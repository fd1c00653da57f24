package probe

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/symeig"
	"github.com/sgdyn/sgdyn/models"
)

// Eigenvector classes of a dense spectrum (THEORY.md section 6), decided
// before any ensemble runs.
const (
	// ClassNull: an exact symmetry direction, c at round-off relative to
	// the median c: nothing moves along it.
	ClassNull = "null"
	// ClassWindowFlat: |lambda| eta T below the threshold and not null, so
	// the variance cannot saturate within the window: a valley mode.
	ClassWindowFlat = "window-flat"
	// ClassConfined: lambda > 0 and too stiff to be window-flat: a
	// candidate for saturation (the ensemble decides).
	ClassConfined = "confined-candidate"
	// ClassNegative: lambda < 0 and too curved to be window-flat.
	ClassNegative = "negative"
)

// DefaultFlatThreshold is the default bound on |lambda| eta T below which
// an eigenvector is window-flat: over T steps such a mode's late growth
// rate is at least exp(-0.2) = 82% of eta^2 c. The noisiest axes of the
// window-flat subspace sit at its stiff end, so a looser bound (0.2 was
// tried on a 20-32-5 tanh MLP: late slopes 0.1 to 0.9 of eta^2 c) selects
// directions that are already relaxing.
const DefaultFlatThreshold = 0.1

// Window is the ensemble window the flat classification refers to.
type Window struct {
	LR        float64 `json:"lr"`
	Steps     int64   `json:"steps"`
	Threshold float64 `json:"threshold"` // window-flat: |lambda| lr steps < Threshold
}

// FlatBound is the largest |lambda| that counts as window-flat.
func (w Window) FlatBound() float64 { return w.Threshold / (w.LR * float64(w.Steps)) }

// DenseSpectrum is the full eigendecomposition of the mean Hessian of a
// small model with the gradient noise along every eigenvector.
type DenseSpectrum struct {
	Params int `json:"params"`
	// Method says how the Hessian was built: "products" (P
	// central-difference products) or "sweep" (the model's own sweep,
	// models.DenseHessianer: the same differences, a fraction of the work).
	Method    string  `json:"method"`
	Asymmetry float64 `json:"asymmetry"` // max |H_ij - H_ji| before symmetrising (over the pairs measured both ways)
	// RelAsymmetry is Asymmetry over max |lambda|.
	RelAsymmetry float64 `json:"rel_asymmetry"`
	Window       Window  `json:"window"`
	// NoiseExamples is how many per-example gradients the c values come
	// from, out of Population training examples, at batch Batch.
	NoiseExamples int            `json:"noise_examples"`
	Population    int            `json:"population"`
	Batch         int            `json:"batch"`
	Sampling      string         `json:"sampling"`
	NullMedian    float64        `json:"null_median_c"` // the median c the null rule compares with
	Counts        map[string]int `json:"counts"`
	// Ranges[class] = [min |lambda|, max |lambda|, min c, max c].
	Ranges map[string][4]float64 `json:"ranges"`
	// FlatNoiseShare is the window-flat eigenvectors' share of the total
	// gradient noise sum_i c_i.
	FlatNoiseShare float64            `json:"flat_noise_share"`
	Seconds        map[string]float64 `json:"seconds"`

	Values  []float64     `json:"-"` // ascending
	C       []float64     `json:"-"` // c along eigenvector i
	Classes []string      `json:"-"`
	Vectors *mat.Dense    `json:"-"` // column i is eigenvector i
	H       *mat.SymDense `json:"-"`
	proj    *mat.Dense    // per-example projections on the eigenvectors
}

// ClassCode is the integer stored per eigenvector in eigen_class.npy.
func ClassCode(class string) float64 {
	switch class {
	case ClassNull:
		return 0
	case ClassWindowFlat:
		return 1
	case ClassConfined:
		return 2
	case ClassNegative:
		return 3
	}
	return -1
}

// DenseHessian builds a dense Hessian, calling done with the number of
// columns' worth of work finished; method names how ("products",
// "sweep").
type DenseHessian struct {
	Method string
	Build  func(ctx context.Context, done func(cols int)) (h *mat.SymDense, maxAsym float64, err error)
}

// FromProducts builds the Hessian from P products split over ops, one
// goroutine each (DenseMatrixParallel).
func FromProducts(ops []Operator) DenseHessian {
	return DenseHessian{Method: "products", Build: func(ctx context.Context, done func(int)) (*mat.SymDense, float64, error) {
		return DenseMatrixParallel(ctx, ops, done)
	}}
}

// FromSweep builds the Hessian of m's mean loss over b at w0 with m's own
// sweep (step as the products' FDStep), split over workers goroutines. It
// leaves m's parameters at w0.
func FromSweep(m models.DenseHessianer, b *data.Batch, w0 []float64, step float64, workers int) DenseHessian {
	if step <= 0 {
		step = DefaultFDStep
	}
	return DenseHessian{Method: "sweep", Build: func(ctx context.Context, done func(int)) (*mat.SymDense, float64, error) {
		m.SetParams(w0)
		return m.DenseHessian(ctx, b, step, workers, done)
	}}
}

// NewDenseSpectrum builds the dense Hessian with hess, its eigenpairs,
// and the noise c along every eigenvector from the per-example gradients
// at w0 of the examples idx of ds (a training set of ds.Len() examples),
// then classifies every eigenvector for the window w.
//
// The per-example gradients are split over goroutines, one per model
// instance ms[k] (see PerExampleGradients); a single model runs
// sequentially. The result does not depend on how many there are.
func NewDenseSpectrum(ctx context.Context, hess DenseHessian, ms []models.Model, ds data.Dataset, idx []int, w0 []float64, batch int, sampling data.Sampling, w Window, nullTol float64, progress func(stage string, done, total int)) (*DenseSpectrum, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	if !(w.LR > 0) || w.Steps < 1 {
		return nil, fmt.Errorf("dense spectrum: window lr %g and steps %d must be positive", w.LR, w.Steps)
	}
	if w.Threshold == 0 {
		w.Threshold = DefaultFlatThreshold
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("dense spectrum: no model instance")
	}
	p := ms[0].NumParams()
	ds0 := &DenseSpectrum{Params: p, Method: hess.Method, Window: w, Batch: batch, Sampling: string(sampling), Population: ds.Len(), NoiseExamples: len(idx), Seconds: map[string]float64{}}
	clock := newStopwatch()

	h, asym, err := hess.Build(ctx, func(cols int) { progress("dense hessian", cols, p) })
	if err != nil {
		return nil, fmt.Errorf("dense spectrum: %w", err)
	}
	if n := h.SymmetricDim(); n != p {
		return nil, fmt.Errorf("dense spectrum: %d x %d Hessian for %d parameters", n, n, p)
	}
	ds0.H, ds0.Asymmetry = h, asym
	ds0.Seconds["hessian"] = clock.lap()
	progress("dense eigen", 0, 1)
	vals, vecs, err := symeig.Factorize(h)
	if err != nil {
		return nil, fmt.Errorf("dense spectrum: eigendecomposition of the %d x %d Hessian: %w", p, p, err)
	}
	ds0.Values, ds0.Vectors = vals, vecs
	for i := range p {
		v := mat.Col(nil, i, ds0.Vectors)
		fixSign(v)
		ds0.Vectors.SetCol(i, v)
	}
	lmax := math.Max(math.Abs(ds0.Values[0]), math.Abs(ds0.Values[p-1]))
	if lmax > 0 {
		ds0.RelAsymmetry = asym / lmax
	}
	ds0.Seconds["eigen"] = clock.lap()

	progress("per-example gradients", 0, len(idx))
	g, err := PerExampleGradients(ctx, ms, ds, idx, w0)
	if err != nil {
		return nil, fmt.Errorf("dense spectrum: %w", err)
	}
	ds0.proj = new(mat.Dense)
	ds0.proj.Mul(g, ds0.Vectors)
	noise, err := NoiseFromProjections(ds0.proj, ds.Len(), batch, sampling)
	if err != nil {
		return nil, fmt.Errorf("dense spectrum: %w", err)
	}
	ds0.C = noise.C
	ds0.Seconds["noise"] = clock.lap()

	null, med := FlagNulls(ds0.C, nullTol)
	ds0.NullMedian = med
	bound := w.FlatBound()
	ds0.Classes = make([]string, p)
	ds0.Counts = map[string]int{}
	ds0.Ranges = map[string][4]float64{}
	var total, flat float64
	for i, l := range ds0.Values {
		var cl string
		switch {
		case null[i]:
			cl = ClassNull
		case math.Abs(l) < bound:
			cl = ClassWindowFlat
			flat += ds0.C[i]
		case l < 0:
			cl = ClassNegative
		default:
			cl = ClassConfined
		}
		total += ds0.C[i]
		ds0.Classes[i] = cl
		r, seen := ds0.Ranges[cl]
		if !seen {
			r = [4]float64{math.Inf(1), 0, math.Inf(1), 0}
		}
		r = [4]float64{math.Min(r[0], math.Abs(l)), math.Max(r[1], math.Abs(l)), math.Min(r[2], ds0.C[i]), math.Max(r[3], ds0.C[i])}
		ds0.Ranges[cl] = r
		ds0.Counts[cl]++
	}
	if total > 0 {
		ds0.FlatNoiseShare = flat / total
	}
	return ds0, nil
}

// Eigenvector returns a copy of eigenvector i (ascending order).
func (s *DenseSpectrum) Eigenvector(i int) []float64 { return mat.Col(nil, i, s.Vectors) }

// HNorm returns ||H u|| with the dense Hessian.
func (s *DenseSpectrum) HNorm(u []float64) float64 {
	var hu mat.VecDense
	hu.MulVec(s.H, mat.NewVecDense(len(u), u))
	return mat.Norm(&hu, 2)
}

// Rayleigh returns u^T H u with the dense Hessian.
func (s *DenseSpectrum) Rayleigh(u []float64) float64 {
	x := mat.NewVecDense(len(u), u)
	return mat.Inner(x, s.H, x)
}

// ofClass lists the eigenvector indices of a class.
func (s *DenseSpectrum) ofClass(class string) []int {
	var out []int
	for i, c := range s.Classes {
		if c == class {
			out = append(out, i)
		}
	}
	return out
}

// Top returns the indices of the k largest eigenvalues, largest first,
// leaving out nulls.
func (s *DenseSpectrum) Top(k int) []int {
	var out []int
	for i := len(s.Values) - 1; i >= 0 && len(out) < k; i-- {
		if s.Classes[i] != ClassNull && s.Values[i] > 0 {
			out = append(out, i)
		}
	}
	return out
}

// Bottom returns up to k indices of the most negative eigenvalues of
// class negative, most negative first.
func (s *DenseSpectrum) Bottom(k int) []int {
	var out []int
	for i := 0; i < len(s.Values) && len(out) < k; i++ {
		if s.Classes[i] == ClassNegative {
			out = append(out, i)
		}
	}
	return out
}

// LargestAbs returns the k eigenvectors of largest |lambda|, split into
// the positive ones (largest first) and the negative ones (most negative
// first).
func (s *DenseSpectrum) LargestAbs(k int) (pos, neg []int) {
	lo, hi := 0, len(s.Values)-1
	for range min(k, len(s.Values)) {
		if math.Abs(s.Values[lo]) > math.Abs(s.Values[hi]) {
			neg = append(neg, lo)
			lo++
		} else {
			pos = append(pos, hi)
			hi--
		}
	}
	return pos, neg
}

// SmallestAbs returns the k eigenvectors of smallest |lambda|, smallest
// first, whatever their class.
func (s *DenseSpectrum) SmallestAbs(k int) []int {
	idx := make([]int, len(s.Values))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(s.Values[idx[a]]) < math.Abs(s.Values[idx[b]]) })
	return idx[:min(k, len(idx))]
}

// Nulls returns up to k null eigenvectors (the smallest |lambda| first),
// leaving out those in exclude.
func (s *DenseSpectrum) Nulls(k int, exclude map[int]bool) []int {
	var nulls []int
	for _, i := range s.ofClass(ClassNull) {
		if !exclude[i] {
			nulls = append(nulls, i)
		}
	}
	sort.SliceStable(nulls, func(a, b int) bool { return math.Abs(s.Values[nulls[a]]) < math.Abs(s.Values[nulls[b]]) })
	return nulls[:min(k, len(nulls))]
}

// FlatDirections returns k orthonormal directions spanning the noisiest
// part of the window-flat subspace: the top principal axes of the
// per-example gradient covariance restricted to that subspace. Within a
// near-degenerate cluster the individual eigenvectors mean nothing
// (THEORY.md section 6); these axes carry the most noise any k-dimensional
// subspace of the cluster can, and each is certified by ||H u|| <= the
// cluster's largest |lambda|. It also returns each axis's c.
//
// Eigenvectors in exclude (already probed on their own) are left out, so
// the axes stay orthogonal to them.
func (s *DenseSpectrum) FlatDirections(k int, exclude map[int]bool) (dirs [][]float64, c []float64) {
	var flat []int
	for _, i := range s.ofClass(ClassWindowFlat) {
		if !exclude[i] {
			flat = append(flat, i)
		}
	}
	if len(flat) == 0 || k <= 0 {
		return nil, nil
	}
	n, _ := s.proj.Dims()
	f := len(flat)
	// Centred per-example projections on the flat eigenvectors.
	x := mat.NewDense(n, f, nil)
	for j, i := range flat {
		col := mat.Col(nil, i, s.proj)
		var mean float64
		for _, v := range col {
			mean += v
		}
		mean /= float64(n)
		for r := range col {
			x.Set(r, j, col[r]-mean)
		}
	}
	cov := mat.NewSymDense(f, nil)
	cov.SymOuterK(1, x.T())
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, nil
	}
	vals := eig.Values(nil)
	var w mat.Dense
	eig.VectorsTo(&w)
	// c of axis a: the factor applied to the axis's per-example variance;
	// recover it from any flat eigenvector's c / S^2 ratio via the
	// per-example noise factor.
	factor, _ := BatchFactor(s.Population, s.Batch, data.Sampling(s.Sampling))
	for a := f - 1; a >= 0 && len(dirs) < k; a-- {
		u := make([]float64, s.Params)
		for j, i := range flat {
			wj := w.At(j, a)
			for r := range u {
				u[r] += wj * s.Vectors.At(r, i)
			}
		}
		fixSign(u)
		dirs = append(dirs, u)
		c = append(c, factor*vals[a]/float64(n-1))
	}
	return dirs, c
}

// stopwatch times consecutive stages.
type stopwatch struct{ last time.Time }

func newStopwatch() *stopwatch { return &stopwatch{time.Now()} }

// lap returns the seconds since the previous lap (or the start).
func (s *stopwatch) lap() float64 {
	now := time.Now()
	d := now.Sub(s.last).Seconds()
	s.last = now
	return d
}

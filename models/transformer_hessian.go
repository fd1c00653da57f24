package models

import (
	"context"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
)

// stagedTransformer is the fused transformer with the dense Hessian sweep.
//
// A coordinate's two gradients differ from the reference pass only from
// its stage on (fused_transformer.go): the forward pass below it is the
// reference one, and the Hessian's rows below it are, by symmetry, the
// columns of the earlier coordinates. So the sweep runs, per chunk of
// examples, one reference forward pass, then for every coordinate, from
// the head down, the forward pass from its stage and the backward pass to
// it, twice. A token embedding's coordinate moves only the windows that
// hold the token, so only those are run. On the paper's 960-parameter
// model over its 2,048 windows this takes 8.2 s where 960 products take
// 20.6 s (BENCHMARKS.md).
type stagedTransformer[T float] struct {
	*fusedModel[T]
	net *fusedTransformer[T]
}

// hessianChunk is the number of windows a sweep worker keeps activations
// for: small enough that they stay in the core's cache.
const hessianChunk = 32

// stageStarts returns the offset of every stage's first parameter, in
// forward order, and the parameter count after the last stage.
func (f *fusedTransformer[T]) stageStarts(p int) []int {
	s := []int{f.tok}
	for _, o := range f.blocks {
		s = append(s, o.ln1G, o.q, o.proj, o.ln2G, o.fc, o.mproj)
	}
	return append(s, f.lnfG, f.headW, p)
}

func (m *stagedTransformer[T]) DenseHessian(ctx context.Context, b *data.Batch, step float64, workers int, done func(cols int)) (*mat.SymDense, float64, error) {
	if _, ok := any(m.w).([]float64); !ok {
		return nil, 0, fmt.Errorf("dense hessian: needs a float64 model, this one is %s", m.DType())
	}
	if b.N < 1 {
		return nil, 0, fmt.Errorf("dense hessian: empty batch")
	}
	if err := m.net.check(b); err != nil {
		return nil, 0, fmt.Errorf("dense hessian: %w", err)
	}
	if !(step > 0) {
		return nil, 0, fmt.Errorf("dense hessian: step %g must be positive", step)
	}
	workers = max(1, min(workers, (b.N+hessianChunk-1)/hessianChunk))
	p := m.nparams
	starts := m.net.stageStarts(p)
	chunks := (b.N + hessianChunk - 1) / hessianChunk
	sweeps := make([]*hessianSweep[T], workers)
	var (
		mu       sync.Mutex
		finished int
		wg       sync.WaitGroup
		errs     = make([]error, workers)
	)
	for k := range sweeps {
		sweeps[k] = newHessianSweep(m, starts, step)
		wg.Add(1)
		go func(s *hessianSweep[T], k int) {
			defer wg.Done()
			// Chunks k, k+workers, ...: a fixed assignment, so the sums do
			// not depend on scheduling.
			for c := k; c < chunks; c += workers {
				if err := ctx.Err(); err != nil {
					errs[k] = err
					return
				}
				s.chunk(b, c*hessianChunk, min((c+1)*hessianChunk, b.N))
				mu.Lock()
				finished++
				if done != nil {
					done(finished * p / chunks)
				}
				mu.Unlock()
			}
		}(sweeps[k], k)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, 0, fmt.Errorf("dense hessian: %w", err)
		}
	}
	cols := sweeps[0].cols
	for _, s := range sweeps[1:] {
		for i, v := range s.cols {
			cols[i] += v
		}
	}
	stage := make([]int, p)
	for s := range len(starts) - 1 {
		for i := starts[s]; i < starts[s+1]; i++ {
			stage[i] = s
		}
	}
	// cols[i*p+j] is H_ji, measured for j at or after i's stage.
	h := mat.NewSymDense(p, nil)
	var asym float64
	for i := range p {
		for j := i; j < p; j++ {
			hji := cols[i*p+j]
			if stage[j] == stage[i] {
				hij := cols[j*p+i]
				asym = max(asym, math.Abs(hij-hji))
				hji = 0.5 * (hij + hji)
			}
			h.SetSym(i, j, hji)
		}
	}
	return h, asym, nil
}

// hessianSweep is one goroutine's share of a dense Hessian sweep: its own
// copy of the parameters to displace, a worker, gradient buffers and the
// columns it has summed.
type hessianSweep[T float] struct {
	m      *stagedTransformer[T]
	starts []int
	step   float64
	w0, w  []T
	gp, gm []T
	cols   []float64 // cols[i*P+j]: column i, row j
	worker *transformerWorker[T]
	sub    data.Batch // the windows of a chunk holding one token
}

func newHessianSweep[T float](m *stagedTransformer[T], starts []int, step float64) *hessianSweep[T] {
	p := m.nparams
	s := &hessianSweep[T]{m: m, starts: starts, step: step,
		w0: append([]T(nil), m.w...), w: append([]T(nil), m.w...),
		gp: make([]T, p), gm: make([]T, p), cols: make([]float64, p*p),
		worker: m.net.newTransformerWorker(hessianChunk),
	}
	s.sub.Tokens = make([]int, 0, hessianChunk*m.net.t)
	s.sub.Labels = make([]int, 0, hessianChunk*m.net.t)
	return s
}

// chunk adds the contribution of examples [lo, hi) of b to every column.
func (s *hessianSweep[T]) chunk(b *data.Batch, lo, hi int) {
	f, wk := s.m.net, s.worker
	scale := 1 / T(b.N)
	// The reference pass leaves every stage's activations for the
	// displaced passes to start from.
	wk.forward(s.w, b, lo, hi, 0, scale, true)
	for st := len(s.starts) - 2; st >= 1; st-- {
		for i := s.starts[st]; i < s.starts[st+1]; i++ {
			s.column(i, st, func(g []T) {
				wk.forward(s.w, b, lo, hi, st, scale, true)
				wk.backward(s.w, b, lo, hi, g, st)
			})
		}
	}
	// The embeddings: a position's coordinates move every window, a
	// token's only the windows that hold it.
	for i := f.pos; i < f.pos+f.t*f.d; i++ {
		s.column(i, 0, func(g []T) {
			wk.forward(s.w, b, lo, hi, 0, scale, true)
			wk.backward(s.w, b, lo, hi, g, 0)
		})
	}
	t := f.t
	for id := range f.vocab {
		s.sub.Tokens, s.sub.Labels = s.sub.Tokens[:0], s.sub.Labels[:0]
		for e := lo; e < hi; e++ {
			win := b.Tokens[e*t : (e+1)*t]
			for _, tok := range win {
				if tok == id {
					s.sub.Tokens = append(s.sub.Tokens, win...)
					s.sub.Labels = append(s.sub.Labels, b.Labels[e*t:(e+1)*t]...)
					break
				}
			}
		}
		n := len(s.sub.Tokens) / t
		if n == 0 {
			continue
		}
		s.sub.N = n
		for i := f.tok + id*f.d; i < f.tok+(id+1)*f.d; i++ {
			s.column(i, 0, func(g []T) {
				wk.forward(s.w, &s.sub, 0, n, 0, scale, true)
				wk.backward(s.w, &s.sub, 0, n, g, 0)
			})
		}
	}
}

// column adds to column i, rows from stage st's first parameter on, the
// central difference of the gradients pass computes at w0 +- step e_i.
func (s *hessianSweep[T]) column(i, st int, pass func(grad []T)) {
	lo := s.starts[st]
	for _, g := range [2]struct {
		sign float64
		g    []T
	}{{1, s.gp}, {-1, s.gm}} {
		s.w[i] = T(float64(s.w0[i]) + g.sign*s.step)
		clear(g.g[lo:])
		pass(g.g)
	}
	s.w[i] = s.w0[i]
	col := s.cols[i*len(s.w):][:len(s.w)]
	for j := lo; j < len(s.w); j++ {
		col[j] += float64(s.gp[j]-s.gm[j]) / (2 * s.step)
	}
}

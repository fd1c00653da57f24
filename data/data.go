// Package data loads the data sets sgdyn trains on (CIFAR-10, character-level
// text corpora, CSV tables) and draws reproducible minibatches from them.
//
// Every data set stores its examples compactly (CIFAR-10 as raw bytes, text as
// token ids) and fills a reusable Batch on demand, so a training step never
// allocates and the memory cost of a data set is that of its files.
package data

import (
	"fmt"
	"sync"
)

// Batch is one minibatch in the layout the models consume. Its slices are
// reused across calls to Dataset.Fill; a model must not keep them.
type Batch struct {
	N int // number of examples

	// X holds N*FeatureDim dense inputs, example-major (images, CSV features).
	// Nil for token data.
	X []float64

	// Tokens holds N*Context input token ids (text), example-major.
	Tokens []int

	// Labels holds N class labels, or N*Context next-token targets for text.
	Labels []int

	// Targets holds N regression targets.
	Targets []float64
}

// Dataset is a finite, indexable collection of examples.
type Dataset interface {
	// Len is the number of examples.
	Len() int
	// Fill writes the examples idx into b, resizing b's slices as needed.
	Fill(b *Batch, idx []int)
}

// grow returns s resized to n, reusing its storage when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Range returns a view of the examples [lo, hi) of ds: example i of the view
// is example lo+i of ds. Like slicing, it panics unless
// 0 <= lo <= hi <= ds.Len(), and Fill panics on an index outside the view
// rather than reading a neighbouring example, which could leak validation
// data into training.
//
// The view is safe for concurrent use if ds is.
func Range(ds Dataset, lo, hi int) Dataset {
	if lo < 0 || hi < lo || hi > ds.Len() {
		panic(fmt.Sprintf("data: Range [%d, %d) out of bounds for %d examples", lo, hi, ds.Len()))
	}
	if v, ok := ds.(*rangeView); ok {
		// Compose offsets instead of stacking views.
		return &rangeView{ds: v.ds, lo: v.lo + lo, n: hi - lo}
	}
	return &rangeView{ds: ds, lo: lo, n: hi - lo}
}

// offsetFiller is implemented by the data sets of this package: it fills b
// with examples idx[i]+off, letting a view avoid rewriting its indices.
type offsetFiller interface {
	fillOffset(b *Batch, idx []int, off int)
}

type rangeView struct {
	ds    Dataset
	lo, n int

	// For data sets from other packages, the shifted indices are built in
	// scratch, which mu guards.
	mu      sync.Mutex
	scratch []int
}

func (v *rangeView) Len() int { return v.n }

func (v *rangeView) Fill(b *Batch, idx []int) {
	for _, i := range idx {
		if i < 0 || i >= v.n {
			panic(fmt.Sprintf("data: index %d out of range [0, %d) of a Range view", i, v.n))
		}
	}
	if f, ok := v.ds.(offsetFiller); ok {
		f.fillOffset(b, idx, v.lo)
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.scratch = grow(v.scratch, len(idx))
	for k, i := range idx {
		v.scratch[k] = v.lo + i
	}
	v.ds.Fill(b, v.scratch)
}

// EvenlySpaced returns min(k, n) indices spread evenly over [0, n): a fixed,
// deterministic subset for evaluation (for text, nearly non-overlapping
// windows).
func EvenlySpaced(n, k int) []int {
	k = min(k, n)
	idx := make([]int, k)
	for i := range idx {
		idx[i] = int(int64(i) * int64(n) / int64(k))
	}
	return idx
}

// Package data loads the data sets sgdyn trains on (CIFAR-10, character-level
// text corpora, CSV tables) and draws reproducible minibatches from them.
//
// Every data set stores its examples compactly (CIFAR-10 as raw bytes, text as
// token ids) and fills a reusable Batch on demand, so a training step never
// allocates and the memory cost of a data set is that of its files.
package data

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

package main

import (
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

var cifarShape = models.Shape{Image: []int{3, 32, 32}, Classes: 10}

func randomImages(n int) *data.Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	b := &data.Batch{N: n, X: make([]float64, n*3*32*32), Labels: make([]int, n)}
	for i := range b.X {
		b.X[i] = rng.NormFloat64()
	}
	for i := range b.Labels {
		b.Labels[i] = rng.IntN(10)
	}
	return b
}

// TestResNetMini: the network builds, has the size the README states,
// records a pattern (every ReLU and pool) and learns: a few SGD steps on a
// batch lower its loss there.
func TestResNetMini(t *testing.T) {
	m, err := models.FromGraph(resnetMini(10), cifarShape, models.GraphOptions{DType: "float64"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.NumParams(); p != 47370 {
		t.Errorf("%d parameters, the README says 47,370", p)
	}
	b := randomImages(2)
	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	// ReLUs: 16 x 32 x 32 three times, 32 x 16 x 16 three times, 64 x 8 x
	// 8 once; pools: 16 x 16 x 16 and 32 x 8 x 8.
	if want := 3*16*1024 + 3*32*256 + 64*64 + 16*256 + 32*64; pat.Units() != want {
		t.Errorf("%d pattern units per example, want %d", pat.Units(), want)
	}
	w, g := make([]float64, m.NumParams()), make([]float64, m.NumParams())
	m.Params(w)
	var first, last float64
	for step := 0; step < 5; step++ {
		loss, err := m.Grad(b, g)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = loss
		}
		last = loss
		for i := range w {
			w[i] -= 0.01 * g[i]
		}
		m.SetParams(w)
	}
	if !(last < first) {
		t.Errorf("loss %g after 4 SGD steps, %g before", last, first)
	}
}

// BenchmarkResNetMiniStep times one training step (batch 128, float32).
func BenchmarkResNetMiniStep(b *testing.B) {
	m, err := models.FromGraph(resnetMini(10), cifarShape, models.GraphOptions{}, 1)
	if err != nil {
		b.Fatal(err)
	}
	batch := randomImages(128)
	w, g := make([]float64, m.NumParams()), make([]float64, m.NumParams())
	m.Params(w)
	for b.Loop() {
		if _, err := m.Grad(batch, g); err != nil {
			b.Fatal(err)
		}
		for i := range w {
			w[i] -= 0.01 * g[i]
		}
		m.SetParams(w)
	}
}

package models

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFrozenPattern checks, for every fused model, that a gradient with the
// activation pattern held equals the ordinary gradient where the pattern was
// recorded, and that away from there, where the pattern has changed, it is
// still the exact gradient of the frozen loss.
func TestFrozenPattern(t *testing.T) {
	for _, c := range tinyCases("float64") {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Impl = "fused" // not the default of the cnn and the transformer
			m, err := New(c.cfg, c.shape, 3)
			if err != nil {
				t.Fatal(err)
			}
			pw, ok := m.(Piecewise)
			if !ok {
				t.Fatalf("fused %s does not implement Piecewise", c.name)
			}
			p := m.NumParams()
			w0 := make([]float64, p)
			m.Params(w0)
			pat, err := pw.RecordPattern(c.batch)
			if err != nil {
				t.Fatal(err)
			}
			kinked := c.name == "cnn" || c.name == "mlp-relu"
			if kinked != (pat.Units() > 0) {
				t.Fatalf("pattern has %d units per example", pat.Units())
			}
			g, gf := make([]float64, p), make([]float64, p)
			loss, _ := m.Grad(c.batch, g)
			lossF, err := pw.GradFrozen(c.batch, pat, gf)
			if err != nil {
				t.Fatal(err)
			}
			if loss != lossF || relErr(gf, g) > 1e-15 {
				t.Fatalf("at the recording point: frozen loss %v grad error %.3g, want loss %v and the same gradient", lossF, relErr(gf, g), loss)
			}

			// Move far enough that units switch, then check the frozen
			// gradient against central differences of the frozen loss.
			rng := rand.New(rand.NewPCG(9, 9))
			w := make([]float64, p)
			for i := range w {
				w[i] = w0[i] + 0.3*rng.NormFloat64()
			}
			m.SetParams(w)
			if kinked {
				moved, err := pw.RecordPattern(c.batch)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(moved.bytes, pat.bytes) {
					t.Fatal("the displacement switched no unit: the test would not see a frozen pattern ignored")
				}
				// Ordinary and frozen gradients must now differ.
				m.Grad(c.batch, g)
				pw.GradFrozen(c.batch, pat, gf)
				if relErr(gf, g) < 1e-3 {
					t.Fatalf("frozen and ordinary gradients agree (%.3g) after units switched", relErr(gf, g))
				}
			}
			frozenLoss := func() float64 {
				l, err := pw.GradFrozen(c.batch, pat, g)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			if _, err := pw.GradFrozen(c.batch, pat, gf); err != nil {
				t.Fatal(err)
			}
			const h = 1e-5
			fd := make([]float64, p)
			for i := range w {
				orig := w[i]
				w[i] = orig + h
				m.SetParams(w)
				up := frozenLoss()
				w[i] = orig - h
				m.SetParams(w)
				fd[i] = (up - frozenLoss()) / (2 * h)
				w[i] = orig
			}
			if rel := relErr(gf, fd); rel > 1e-6 || math.IsNaN(rel) {
				t.Errorf("frozen gradient vs finite differences of the frozen loss: relative error %.3g > 1e-6", rel)
			}
		})
	}
}

// TestFrozenPatternWrongBatch checks that a pattern is refused on a batch
// of another size.
func TestFrozenPatternWrongBatch(t *testing.T) {
	c := tinyCases("float64")[3] // cnn
	c.cfg.Impl = "fused"
	m, err := New(c.cfg, c.shape, 3)
	if err != nil {
		t.Fatal(err)
	}
	pw := m.(Piecewise)
	pat, err := pw.RecordPattern(c.batch)
	if err != nil {
		t.Fatal(err)
	}
	small := *c.batch
	small.N--
	small.X = small.X[:len(small.X)-3*64]
	small.Labels = small.Labels[:small.N]
	if _, err := pw.GradFrozen(&small, pat, make([]float64, m.NumParams())); err == nil {
		t.Fatal("a pattern of 3 examples was accepted on a batch of 2")
	}
}

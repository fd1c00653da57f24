package probe

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/models"
)

// TestSurveyMLP runs a whole survey on a small MLP and checks it against the
// dense Hessian: top eigenvalues, orthonormal directions, the curvature of
// the bulk directions, and the softmax-shift direction flagged as null.
func TestSurveyMLP(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	full := randomBatch(rng, 64, 5, 3)
	ds := &batchDataset{full}
	m, w := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 5, Classes: 3})
	p := m.NumParams()
	null := make([]float64, p)
	for _, ti := range m.Tensors() {
		if ti.Name == "out.bias" {
			for i := ti.Offset; i < ti.Offset+ti.Size; i++ {
				null[i] = 1
			}
		}
	}
	s, err := RunSurvey(context.Background(), m, ds, w, SurveyOptions{Top: 4, Bottom: 2, Bulk: 3, BatchSize: 8, NoiseBatches: 16, Tol: 1e-8, User: [][]float64{null}, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := NewHessian(m, full, w, 0)
	a, _, _ := DenseMatrix(h)
	vals, _, _ := DenseEigen(a)
	for i, e := range s.Top {
		if want := vals[len(vals)-1-i]; math.Abs(e.Value-want) > 1e-6*vals[len(vals)-1] {
			t.Errorf("top %d: %g, dense %g", i, e.Value, want)
		}
	}
	if len(s.Directions) != 4+2+3+1 || len(s.Vectors) != len(s.Directions) {
		t.Fatalf("%d directions, want 10", len(s.Directions))
	}
	for i := 0; i < 9; i++ { // the user direction need not be orthogonal
		for j := 0; j <= i; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			if d := dot(s.Vectors[i], s.Vectors[j]); math.Abs(d-want) > 1e-8 {
				t.Errorf("u%d . u%d = %g, want %g", i, j, d, want)
			}
		}
	}
	hv := make([]float64, p)
	for i, d := range s.Directions {
		h.Apply(hv, s.Vectors[i])
		if want := dot(s.Vectors[i], hv); math.Abs(d.Lambda-want) > 1e-6*vals[len(vals)-1] {
			t.Errorf("%s: lambda %g, u^T H u %g", d.Source, d.Lambda, want)
		}
		if d.Null != (d.Source == "user-0") {
			t.Errorf("%s: null = %v (c = %g)", d.Source, d.Null, d.C)
		}
	}
}

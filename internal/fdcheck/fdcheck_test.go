package fdcheck

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the failures instead of reporting
// them, so the test can check that Gradient fails a wrong gradient.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, r := Randn(rng, 5), Randn(rng, 5)
	// L = sum_i r_i sin(x_i), dL/dx_i = r_i cos(x_i).
	loss := func() float64 {
		var s float64
		for i := range x {
			s += r[i] * math.Sin(x[i])
		}
		return s
	}
	grad := make([]float64, len(x))
	for i := range x {
		grad[i] = r[i] * math.Cos(x[i])
	}
	ok := &recorder{TB: t}
	Gradient(ok, "sin", x, loss, grad)
	if len(ok.errors) != 0 {
		t.Errorf("a correct gradient failed: %v", ok.errors)
	}
	grad[2] *= 1 + 1e-5
	bad := &recorder{TB: t}
	Gradient(bad, "sin", x, loss, grad)
	if len(bad.errors) != 1 || !strings.Contains(bad.errors[0], "relative gradient error") {
		t.Errorf("a gradient off by 1e-5 in one entry passed: %v", bad.errors)
	}
	if e := RelErr([]float64{3, 4}, []float64{3, 4}); e != 0 {
		t.Errorf("RelErr of equal vectors %g", e)
	}
	if e := RelErr([]float64{0, 0}, []float64{3, 4}); math.Abs(e-1) > 1e-15 {
		t.Errorf("RelErr(0, b) = %g, want 1", e)
	}
	if d := Dot([]float64{1, 2, 3}, []float64{4, 5, 6}); d != 32 {
		t.Errorf("Dot = %g", d)
	}
}

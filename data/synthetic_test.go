package data

import (
	"math"
	"testing"
)

func TestSyntheticRegression(t *testing.T) {
	a, err := SyntheticRegression(20000, 3, []float64{2, 0.5}, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SyntheticRegression(20000, 3, []float64{2, 0.5}, 0.1, 7)
	if a.X[123] != b.X[123] || a.Targets[999] != b.Targets[999] {
		t.Error("same arguments gave different tables")
	}
	// Feature standard deviations follow the cycled scales 2, 0.5, 2, and the
	// residual of the known weights has the noise's standard deviation.
	want := []float64{2, 0.5, 2}
	for j := 0; j < 3; j++ {
		var s float64
		for i := 0; i < 20000; i++ {
			s += a.X[i*3+j] * a.X[i*3+j]
		}
		if sd := math.Sqrt(s / 20000); math.Abs(sd-want[j]) > 0.05*want[j] {
			t.Errorf("feature %d sd %g, want %g", j, sd, want[j])
		}
	}
	var r2 float64
	for i := 0; i < 20000; i++ {
		r := a.Targets[i] - (a.X[i*3] - 1.5*a.X[i*3+1] + 2*a.X[i*3+2])
		r2 += r * r
	}
	if sd := math.Sqrt(r2 / 20000); math.Abs(sd-0.1) > 0.005 {
		t.Errorf("residual sd %g, want 0.1", sd)
	}
	for _, bad := range [][]float64{nil, {-1}} {
		if _, err := SyntheticRegression(10, 2, bad, 0.1, 1); err == nil {
			t.Errorf("scales %v accepted", bad)
		}
	}
}

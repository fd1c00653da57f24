package report

import (
	"strings"
	"testing"
)

// TestStationaryFigureOffScale checks that predictions far above every
// measured variance (an unstable direction of the linear theory) are left
// off the measured-vs-predicted plot, said in its caption, and kept in the
// figure data.
func TestStationaryFigureOffScale(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	e := &Ensemble{Name: "e"}
	for i, p := range []float64{1e-4, 2e-4, 1e60} {
		v := 1.5 * min(p, 1e-4)
		e.Directions = append(e.Directions, Direction{Index: i, Source: "top", Class: "confined",
			VarFinal: f(v), VarFinalCI: []*float64{f(v / 2), f(2 * v)}, PredDiscrete: f(p), PredLangevin: f(p / 3)})
	}
	fd := &figureData{}
	fig, err := stationaryFigure(e, t.TempDir(), fd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fig.Caption, "2 predictions above") {
		t.Errorf("caption does not count the 2 off-scale predictions: %q", fig.Caption)
	}
	if len(fd.rows) != 6 {
		t.Errorf("figure data has %d rows, want all 6 predictions", len(fd.rows))
	}
}

package report

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/analysis"
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

// TestScanFallsBackToBulk checks that a learning-rate scan whose ensembles
// have no diffusive direction fits the median late slope of the bulk
// directions instead, and says so.
func TestScanFallsBackToBulk(t *testing.T) {
	var ens []*Ensemble
	for _, eta := range []float64{0.01, 0.02, 0.04} {
		e := &Ensemble{Name: fmt.Sprintf("lr%g", eta)}
		e.Manifest.LR, e.Manifest.Batch, e.Manifest.Replicas, e.Manifest.Steps = eta, 8, 16, 100
		for i, src := range []string{"top-0", "bulk-0", "bulk-1", "bulk-2"} {
			rate := eta * eta * float64(1+i) // grows as eta^2
			if src == "top-0" {
				rate = 1e-12
			}
			boot := []float64{0.9 * rate, rate, 1.1 * rate, 0.95 * rate, 1.05 * rate}
			e.Classes = append(e.Classes, analysis.Classification{Class: analysis.Undetermined,
				LateSlope: analysis.Interval{Est: rate, Lo: 0.9 * rate, Hi: 1.1 * rate}, SlopeBoot: boot})
			e.Directions = append(e.Directions, Direction{Index: i, Source: src, Class: string(analysis.Undetermined)})
		}
		ens = append(ens, e)
	}
	s := buildScan(ens, 0.9)
	if s == nil || s.Basis != "bulk" || len(s.Points) != 3 || s.Fit == nil {
		t.Fatalf("scan %+v: want a fit of 3 bulk points", s)
	}
	if got := s.Fit.PerStep.Slope.Est; math.Abs(got-2) > 1e-9 {
		t.Errorf("per-step slope %g, want 2", got)
	}
	if !strings.Contains(s.Note, "bulk directions") {
		t.Errorf("note %q does not say the scan fell back to the bulk directions", s.Note)
	}
}

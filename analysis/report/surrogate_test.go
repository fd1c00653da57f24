package report

import (
	"math"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/train"
)

// TestBuildSurrogates pairs each surrogate with the SGD ensemble of the
// same reference, directions, learning rate, batch and steps, and takes
// the ratio of final variances per direction.
func TestBuildSurrogates(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	man := func(name, kind string, lr float64) train.EnsembleManifest {
		m := train.EnsembleManifest{ReferenceSHA256: "ref", DirectionsSHA256: "dirs"}
		m.Name, m.LR, m.Batch, m.Steps = name, lr, 64, 500
		m.Surrogate.Kind = kind
		return m
	}
	ens := func(m train.EnsembleManifest, vars ...float64) *Ensemble {
		e := &Ensemble{Name: m.Name, Manifest: m}
		for i, v := range vars {
			e.Directions = append(e.Directions, Direction{Source: []string{"top-0", "null-0"}[i], Class: "confined", VarFinal: f(v), VarFinalCI: []*float64{f(v / 2), f(2 * v)}})
		}
		return e
	}
	r := &Report{Ensembles: []*Ensemble{
		ens(man("lr0.05", "", 0.05), 2e-4, 0),
		ens(man("langevin-lr0.05", "langevin", 0.05), 1e-4, 0),
		ens(man("diag-lr0.05", "langevin-diag", 0.05), 3e-4, 5e-3),
		ens(man("langevin-lr0.1", "langevin", 0.1), 9, 9), // another eta: not paired
	}}
	s := buildSurrogates(r)
	if s == nil || len(s.Groups) != 1 {
		t.Fatalf("groups: %+v", s)
	}
	g := s.Groups[0]
	if strings.Join(g.Surrogates, ",") != "langevin-lr0.05,diag-lr0.05" {
		t.Errorf("paired %v", g.Surrogates)
	}
	if got := *g.Directions[0].Ratio[0]; math.Abs(got-0.5) > 1e-12 {
		t.Errorf("langevin / SGD along top-0 = %g, want 0.5", got)
	}
	if got := *g.Directions[0].Ratio[1]; math.Abs(got-1.5) > 1e-12 {
		t.Errorf("diag / SGD along top-0 = %g, want 1.5", got)
	}
	// SGD's null does not move: no ratio, but the diagonal surrogate's
	// variance is shown.
	if g.Directions[1].Ratio[1] != nil || *g.Directions[1].VarSur[1] != 5e-3 {
		t.Errorf("null: ratio %v, diag variance %v", g.Directions[1].Ratio[1], g.Directions[1].VarSur[1])
	}
	page := string(s.HTML())
	if !strings.Contains(page, "langevin-diag / SGD") || !strings.Contains(page, "0.5") || !strings.Contains(s.Markdown(), "| null-0 |") {
		t.Errorf("section does not show the comparison:\n%s", page)
	}
	if buildSurrogates(&Report{Ensembles: r.Ensembles[:1]}) != nil {
		t.Error("a section without surrogates")
	}
}

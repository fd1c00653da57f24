package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Surrogates compares Gaussian-surrogate ensembles (sgdyn ensemble
// --surrogate) with the SGD ensemble they simulate: same reference,
// directions, learning rate, batch and steps.
type Surrogates struct {
	Groups []*SurrogateGroup `json:"groups"`
}

// SurrogateGroup is one SGD ensemble and its surrogates.
type SurrogateGroup struct {
	SGD        string               `json:"sgd"`
	Surrogates []string             `json:"surrogates"` // ensemble names
	Kinds      []string             `json:"kinds"`      // langevin, langevin-diag
	Eta        float64              `json:"eta"`
	Batch      int                  `json:"batch"`
	Directions []SurrogateDirection `json:"directions"`
	Figures    []*Figure            `json:"-"`
	sgd        *Ensemble
	sur        []*Ensemble
}

// SurrogateDirection is var(T) of one direction under SGD and under each
// surrogate, with the ratio surrogate / SGD.
type SurrogateDirection struct {
	Source   string       `json:"source"`
	Class    string       `json:"class_sgd"`
	VarSGD   *float64     `json:"var_sgd"`
	VarSGDCI []*float64   `json:"var_sgd_ci"`
	VarSur   []*float64   `json:"var_surrogate"`
	VarSurCI [][]*float64 `json:"var_surrogate_ci"`
	Ratio    []*float64   `json:"ratio"` // surrogate / SGD at T
}

// buildSurrogates pairs every surrogate ensemble with its SGD ensemble.
func buildSurrogates(r *Report) *Surrogates {
	var out Surrogates
	for _, e := range r.Ensembles {
		if e.Manifest.Surrogate.Kind != "" {
			continue
		}
		g := &SurrogateGroup{SGD: e.Name, Eta: e.Manifest.LR, Batch: e.Manifest.Batch, sgd: e}
		for _, s := range r.Ensembles {
			m := s.Manifest
			if m.Surrogate.Kind == "" || m.LR != e.Manifest.LR || m.Batch != e.Manifest.Batch || m.Steps != e.Manifest.Steps ||
				m.DirectionsSHA256 != e.Manifest.DirectionsSHA256 || m.ReferenceSHA256 != e.Manifest.ReferenceSHA256 {
				continue
			}
			g.Surrogates = append(g.Surrogates, s.Name)
			g.Kinds = append(g.Kinds, m.Surrogate.Kind)
			g.sur = append(g.sur, s)
		}
		if len(g.sur) == 0 {
			continue
		}
		for k, d := range e.Directions {
			// The measured variance at the last logged step, nulls included:
			// the classifier reports no statistics for a null, but whether a
			// surrogate moves it is the point of the comparison.
			v0, ci0 := lastVariance(e, k)
			sd := SurrogateDirection{Source: d.Source, Class: d.Class, VarSGD: v0, VarSGDCI: ci0}
			for _, s := range g.sur {
				v, ci := lastVariance(s, k)
				sd.VarSur = append(sd.VarSur, v)
				sd.VarSurCI = append(sd.VarSurCI, ci)
				var ratio *float64
				if v != nil && v0 != nil && *v0 > 0 {
					ratio = num(*v / *v0)
				}
				sd.Ratio = append(sd.Ratio, ratio)
			}
			g.Directions = append(g.Directions, sd)
		}
		out.Groups = append(out.Groups, g)
	}
	if len(out.Groups) == 0 {
		return nil
	}
	return &out
}

// lastVariance is the ensemble variance of direction k at its last logged
// step with a finite value, with its bootstrap interval; falls back to the
// classifier's var(T) when the ensemble carries no growth curves.
func lastVariance(e *Ensemble, k int) (*float64, []*float64) {
	if e.Growth != nil && k < len(e.Growth.Dirs) {
		g := e.Growth.Dirs[k]
		for i := len(g.Var) - 1; i >= 0; i-- {
			if !math.IsNaN(g.Var[i]) {
				return num(g.Var[i]), []*float64{num(g.VarLo[i]), num(g.VarHi[i])}
			}
		}
	}
	if k < len(e.Directions) {
		return e.Directions[k].VarFinal, e.Directions[k].VarFinalCI
	}
	return nil, nil
}

// surrogatePicks chooses up to four directions to overlay: the first of
// the top, flat, null (or the paper's smallest-|lambda|) and bottom
// families present.
func surrogatePicks(g *SurrogateGroup) []int {
	var out []int
	for _, fam := range []string{"top-", "flat-", "null-", "smallest-", "bottom-", "bulk-"} {
		for k, d := range g.Directions {
			if strings.HasPrefix(d.Source, fam) {
				out = append(out, k)
				break
			}
		}
		if len(out) == 4 {
			break
		}
	}
	return out
}

// surrogateFigures overlays SGD and surrogate variance against t for the
// picked directions of every group (linear axes: a null's variance is 0
// under SGD and under the low-rank surrogate).
func surrogateFigures(r *Report, dir string, fd *figureData, add func(*Figure, error) error) error {
	if r.Surrogates == nil {
		return nil
	}
	for gi, g := range r.Surrogates.Groups {
		for _, k := range surrogatePicks(g) {
			f, err := surrogateFigure(gi, g, k, dir, fd)
			if err == nil && f != nil {
				g.Figures = append(g.Figures, f)
			}
			if err := add(f, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func surrogateFigure(gi int, g *SurrogateGroup, k int, dir string, fd *figureData) (*Figure, error) {
	src := g.Directions[k].Source
	name := fmt.Sprintf("surrogate-%d-%s", gi, src)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: SGD vs Gaussian surrogates, eta %.3g, batch %d", src, g.Eta, g.Batch)
	p.X.Label.Text = "step t"
	p.Y.Label.Text = "variance along u"
	series := append([]*Ensemble{g.sgd}, g.sur...)
	labels := append([]string{"SGD"}, g.Kinds...)
	drawn := 0
	for i, e := range series {
		if k >= len(e.Growth.Dirs) {
			continue
		}
		gr := e.Growth.Dirs[k]
		col := plotutil.Color(i)
		var line, hi, lo plotter.XYs
		for ti, t := range e.Steps {
			if math.IsNaN(gr.Var[ti]) {
				continue
			}
			x := float64(t)
			line = append(line, plotter.XY{X: x, Y: gr.Var[ti]})
			hi = append(hi, plotter.XY{X: x, Y: gr.VarHi[ti]})
			lo = append(lo, plotter.XY{X: x, Y: gr.VarLo[ti]})
			fd.add(name, labels[i]+" measured", x, gr.Var[ti], gr.VarLo[ti], gr.VarHi[ti])
		}
		if len(line) < 2 {
			continue
		}
		band := append(plotter.XYs(nil), hi...)
		for j := len(lo) - 1; j >= 0; j-- {
			band = append(band, lo[j])
		}
		if poly, err := plotter.NewPolygon(band); err == nil {
			poly.Color = withAlpha(col, 40)
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		if l, err := plotter.NewLine(line); err == nil {
			l.Color, l.Width = col, vg.Points(1.4)
			if i > 0 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(2 * float64(i))}
			}
			p.Add(l)
			p.Legend.Add(labels[i], l)
			drawn++
		}
	}
	if drawn == 0 {
		return nil, nil
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	cap := "Measured ensemble variance with bootstrap bands: SGD (solid) and the Gaussian surrogates from the same reference (dashed). langevin: full-batch drift plus Gaussian noise with the measured minibatch covariance, low rank (it lives in the span of real gradient noise); langevin-diag: per-parameter independent noise, the paper's variant, which also drives exact symmetry directions that SGD never moves in."
	f := &Figure{Name: name, Title: fmt.Sprintf("%s: SGD vs surrogates", src), Caption: cap}
	return f, save(p, dir, name)
}

// HTML renders the section for index.html (empty for a nil section).
func (s *Surrogates) HTML() template.HTML {
	if s == nil {
		return ""
	}
	var b strings.Builder
	e := html.EscapeString
	b.WriteString(`<h2 id="surrogates">SGD against its Gaussian surrogates</h2>` + "\n")
	b.WriteString("<p>The simulated Langevin baseline from the same reference point: theta &larr; theta &minus; &eta; grad L(theta) + &eta; xi with the full-batch gradient over the evaluation set. Ratios are var(T) of the surrogate over SGD's.</p>\n")
	for _, g := range s.Groups {
		fmt.Fprintf(&b, "<h3>%s vs %s</h3>\n", e(g.SGD), e(strings.Join(g.Surrogates, ", ")))
		b.WriteString(`<table class="sortable"><thead><tr><th class="l">source</th><th class="l">SGD class</th><th>SGD var(T) [CI]</th>`)
		for _, k := range g.Kinds {
			fmt.Fprintf(&b, "<th>%s var(T) [CI]</th><th>%s / SGD</th>", e(k), e(k))
		}
		b.WriteString("</tr></thead><tbody>\n")
		for _, d := range g.Directions {
			fmt.Fprintf(&b, `<tr><td class="l">%s</td><td class="l">%s</td><td>%s %s</td>`, e(d.Source), e(d.Class), sig3p(d.VarSGD), ciPair(d.VarSGDCI))
			for i := range g.Kinds {
				fmt.Fprintf(&b, "<td>%s %s</td><td>%s</td>", sig3p(d.VarSur[i]), ciPair(d.VarSurCI[i]), sig3p(d.Ratio[i]))
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</tbody></table>\n")
		for _, f := range g.Figures {
			fmt.Fprintf(&b, `<figure><img src="figures/%s.png" alt="%s" data-points="%d"><figcaption>%s</figcaption></figure>`+"\n", e(f.Name), e(f.Title), f.Points, e(f.Caption))
		}
	}
	return template.HTML(b.String())
}

// Markdown renders the section for report.md.
func (s *Surrogates) Markdown() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## SGD against its Gaussian surrogates\n\n")
	for _, g := range s.Groups {
		fmt.Fprintf(&b, "%s vs %s\n\n| source | SGD class | SGD var(T) |", g.SGD, strings.Join(g.Surrogates, ", "))
		for _, k := range g.Kinds {
			fmt.Fprintf(&b, " %s var(T) | %s / SGD |", k, k)
		}
		b.WriteString("\n|---|---|---|")
		for range g.Kinds {
			b.WriteString("---|---|")
		}
		b.WriteString("\n")
		for _, d := range g.Directions {
			fmt.Fprintf(&b, "| %s | %s | %s %s |", d.Source, d.Class, sig3p(d.VarSGD), ciPair(d.VarSGDCI))
			for i := range g.Kinds {
				fmt.Fprintf(&b, " %s %s | %s |", sig3p(d.VarSur[i]), ciPair(d.VarSurCI[i]), sig3p(d.Ratio[i]))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ciPair(c []*float64) string {
	if len(c) != 2 || c[0] == nil || c[1] == nil {
		return ""
	}
	return "[" + sig3(*c[0]) + ", " + sig3(*c[1]) + "]"
}

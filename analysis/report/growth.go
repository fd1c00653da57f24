package report

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// clipDecades is how far beyond the measured variance band (above its
// highest point, below its lowest) a theory curve is drawn. Beyond it the
// curve stops at the clip line with a marker: a linearly unstable
// direction's theory reaches 1e66 and would otherwise set the axis and
// squash every measurement into one pixel row.
const clipDecades = 2

// variancePick is one direction in a variance-vs-t figure.
type variancePick struct {
	k     int // direction index in the ensemble
	col   color.Color
	label string
}

// variancePlot is a variance-vs-t figure before it is saved.
type variancePlot struct {
	p *plot.Plot
	// clipLo and clipHi are the clip lines; clipped names the theory
	// curves that crossed one ("top-0 discrete").
	clipLo, clipHi float64
	clipped        []string
	// theories that drew at least one curve, in display order.
	theories []string
	// measLo and measHi are the range of the measured bands.
	measLo, measHi float64
	tMin, tMax     float64
	// points is the number of measured points drawn.
	points int
}

// newVariancePlot draws the measured ensemble variance of each pick with
// its bootstrap band, and every theory curve of the pick clipped to
// clipDecades around the measured range. The y axis is the measured range,
// widened only by the clipped theory curves.
func newVariancePlot(e *Ensemble, picks []variancePick, name string, fd *figureData) *variancePlot {
	vp := &variancePlot{p: plot.New(), measLo: math.Inf(1), measHi: math.Inf(-1), tMin: math.Inf(1), tMax: math.Inf(-1)}
	p := vp.p
	logAxes(p, true, true)
	meas := make([][]float64, len(picks)) // the steps each pick has a point at
	for i, pk := range picks {
		g := e.Growth.Dirs[pk.k]
		d := e.Directions[pk.k]
		var line, hiSide, loSide plotter.XYs
		for ti, t := range e.Steps {
			if t <= 0 || math.IsNaN(g.Var[ti]) {
				continue
			}
			x := float64(t)
			fd.add(name, d.Source+" measured", x, g.Var[ti], g.VarLo[ti], g.VarHi[ti])
			if !(g.Var[ti] > 0) || math.IsInf(g.Var[ti], 1) { // overflowed replicas: nothing a log axis can show
				continue
			}
			meas[i] = append(meas[i], x)
			vp.points++
			line = append(line, plotter.XY{X: x, Y: g.Var[ti]})
			vp.tMin, vp.tMax = math.Min(vp.tMin, x), math.Max(vp.tMax, x)
			lo, hi := g.VarLo[ti], g.VarHi[ti]
			if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 1) { // a band a log axis cannot show: the estimate alone
				lo, hi = g.Var[ti], g.Var[ti]
			}
			hiSide = append(hiSide, plotter.XY{X: x, Y: hi})
			loSide = append(loSide, plotter.XY{X: x, Y: lo})
			vp.measLo, vp.measHi = math.Min(vp.measLo, lo), math.Max(vp.measHi, hi)
		}
		if len(line) < 2 {
			continue
		}
		band := append(plotter.XYs{}, hiSide...)
		for j := len(loSide) - 1; j >= 0; j-- {
			band = append(band, loSide[j])
		}
		if poly, err := plotter.NewPolygon(band); err == nil {
			poly.Color = withAlpha(pk.col, 45)
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		l, _ := plotter.NewLine(line)
		l.Color = pk.col
		l.Width = vg.Points(1.6)
		p.Add(l)
		p.Legend.Add(pk.label, l)
	}
	if !(vp.measHi > 0) {
		return vp // nothing measured yet: no axis to clip to
	}
	vp.clipLo, vp.clipHi = vp.measLo*math.Pow10(-clipDecades), math.Min(vp.measHi*math.Pow10(clipDecades), math.MaxFloat64)
	yLo, yHi := vp.measLo, vp.measHi
	drew := map[string]bool{}
	var marks plotter.XYs
	var markCols []color.Color
	var all []map[string]Curve
	for _, pk := range picks {
		all = append(all, e.Directions[pk.k].Curves)
	}
	styles := curveStyles(all...)
	for i, pk := range picks {
		d := e.Directions[pk.k]
		ts := meas[i]
		if len(ts) < 2 {
			continue
		}
		for _, th := range styles {
			curve := d.Curves[th.Name]
			if curve == nil {
				continue
			}
			var xy plotter.XYs
			for _, t := range ts {
				v := curve(t)
				fd.add(name, d.Source+" "+th.Name, t, v, math.NaN(), math.NaN())
				xy = append(xy, plotter.XY{X: t, Y: v})
			}
			segs, exits := clipCurve(xy, vp.clipLo, vp.clipHi)
			if len(exits) > 0 {
				vp.clipped = append(vp.clipped, d.Source+" "+th.Name)
				for _, x := range exits {
					marks = append(marks, x)
					markCols = append(markCols, pk.col)
				}
			}
			for _, seg := range segs {
				if len(seg) < 2 {
					continue
				}
				l, err := plotter.NewLine(seg)
				if err != nil {
					continue
				}
				l.Color, l.Dashes, l.Width = pk.col, th.Dashes, vg.Points(1.2)
				p.Add(l)
				drew[th.Name] = true
				for _, pt := range seg {
					yLo, yHi = math.Min(yLo, pt.Y), math.Max(yHi, pt.Y)
				}
			}
		}
	}
	for _, th := range styles {
		if drew[th.Name] {
			vp.theories = append(vp.theories, th.Name)
			l, _ := plotter.NewLine(plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: 2}})
			l.Color, l.Dashes, l.Width = color.Gray{60}, th.Dashes, vg.Points(1.2)
			p.Legend.Add(th.Name+" theory", l)
		}
	}
	if len(marks) > 0 {
		for j, m := range marks {
			sc, err := plotter.NewScatter(plotter.XYs{m})
			if err != nil {
				continue
			}
			sc.Color, sc.Shape, sc.Radius = markCols[j], draw.TriangleGlyph{}, vg.Points(4)
			p.Add(sc)
			if j == 0 {
				leg, _ := plotter.NewScatter(plotter.XYs{m})
				leg.Color, leg.Shape, leg.Radius = color.Gray{60}, draw.TriangleGlyph{}, vg.Points(4)
				p.Legend.Add(fmt.Sprintf("theory clipped (%d decades out)", clipDecades), leg)
			}
		}
	}
	// The axis: the measurements, and the theory as far as it was drawn
	// (at most clipDecades beyond them). Nothing else may widen it.
	if yHi <= yLo*(1+1e-9) { // a flat curve: a log axis needs a range
		yLo, yHi = yLo/2, yHi*2
	}
	p.Y.Min, p.Y.Max = yLo, yHi
	p.X.Min, p.X.Max = vp.tMin, vp.tMax
	return vp
}

// clipCurve splits a curve into the segments that lie within [lo, hi] on
// log-log axes. A segment that leaves the band ends on the clip line
// (interpolated in log space), and each point where the curve crosses hi
// going up is returned in exits, for a marker. Non-finite and
// non-positive values are outside the band.
func clipCurve(xy plotter.XYs, lo, hi float64) (segs []plotter.XYs, exits plotter.XYs) {
	in := func(y float64) bool { return y >= lo && y <= hi }
	cross := func(a, b plotter.XY, level float64) plotter.XY {
		la, lb, ll := logOr(a.Y, level), logOr(b.Y, level), math.Log(level)
		f := 0.0
		if lb != la {
			f = (ll - la) / (lb - la)
		}
		f = math.Max(0, math.Min(1, f))
		x := math.Exp(math.Log(a.X) + f*(math.Log(b.X)-math.Log(a.X)))
		return plotter.XY{X: x, Y: level}
	}
	var cur plotter.XYs
	for i, pt := range xy {
		if in(pt.Y) {
			if len(cur) == 0 && i > 0 { // entering: start on the clip line
				prev := xy[i-1]
				if prev.Y > hi {
					cur = append(cur, cross(prev, pt, hi))
				} else if prev.Y < lo && prev.Y > 0 {
					cur = append(cur, cross(prev, pt, lo))
				}
			}
			cur = append(cur, pt)
			continue
		}
		if len(cur) > 0 { // leaving: end on the clip line
			last := xy[i-1]
			if pt.Y > hi || math.IsNaN(pt.Y) {
				x := cross(last, pt, hi)
				cur = append(cur, x)
				exits = append(exits, x)
			} else if pt.Y < lo && pt.Y > 0 {
				cur = append(cur, cross(last, pt, lo))
			}
			segs = append(segs, cur)
			cur = nil
		} else if i == 0 && pt.Y > hi {
			exits = append(exits, plotter.XY{X: pt.X, Y: hi})
		}
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs, exits
}

// logOr is ln y, or for a y a log cannot take (NaN, +Inf, <= 0) a value
// far beyond the clip level on the same side, so the crossing lands on the
// clip line.
func logOr(y, level float64) float64 {
	switch {
	case y > 0 && !math.IsInf(y, 1):
		return math.Log(y)
	case y <= 0:
		return math.Log(level) - 50
	default:
		return math.Log(level) + 50
	}
}

// classPicks chooses up to n directions of class, spread evenly over the
// class's range of lambda (directions without one keep their order), so a
// figure shows the class's extremes and its middle rather than its first
// rows.
func classPicks(e *Ensemble, class string, n int) []int {
	var ks []int
	for k, d := range e.Directions {
		if d.Class == class {
			ks = append(ks, k)
		}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := e.Directions[ks[i]].Lambda, e.Directions[ks[j]].Lambda
		if a == nil || b == nil {
			return a != nil && b == nil
		}
		return *a > *b
	})
	if len(ks) <= n {
		return ks
	}
	out := make([]int, n)
	for i := range out {
		out[i] = ks[int(math.Round(float64(i)*float64(len(ks)-1)/float64(n-1)))]
	}
	return out
}

// representative is the direction that stands for class in the headline:
// the middle one by lambda among those with a theory curve (else among
// all), or -1 if the class is empty.
func representative(e *Ensemble, class string) int {
	ks := classPicks(e, class, len(e.Directions))
	var with []int
	for _, k := range ks {
		if len(e.Directions[k].Curves) > 0 && e.Growth.Dirs[k].Var != nil {
			with = append(with, k)
		}
	}
	if len(with) > 0 {
		ks = with
	}
	if len(ks) == 0 {
		return -1
	}
	return ks[len(ks)/2]
}

// growthFigure draws the measured variance of up to six directions of one
// class with its bootstrap band and every theory curve.
func growthFigure(e *Ensemble, class string, dir string, fd *figureData) (*Figure, error) {
	vp, f := growthPlot(e, class, fd)
	if vp == nil || vp.points == 0 {
		// Nothing a log axis can show (an exact null direction's variance
		// is 0): no empty figure; the table has the numbers.
		return nil, nil
	}
	return f, save(vp.p, dir, f.Name)
}

func growthPlot(e *Ensemble, class string, fd *figureData) (*variancePlot, *Figure) {
	ks := classPicks(e, class, 6)
	if len(ks) == 0 {
		return nil, nil
	}
	name := fmt.Sprintf("growth-%s-%s", e.Name, class)
	picks := make([]variancePick, len(ks))
	for i, k := range ks {
		picks[i] = variancePick{k: k, col: shade(classColor(class), i, len(ks)), label: e.Directions[k].Source}
	}
	vp := newVariancePlot(e, picks, name, fd)
	p := vp.p
	p.Title.Text = fmt.Sprintf("%s directions (%s: η %s, batch %d)", class, e.Name, sig3(e.Manifest.LR), e.Manifest.Batch)
	p.X.Label.Text = "step t"
	p.Y.Label.Text = "variance along u"
	// Growth curves rise to the right: the lower right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	n := 0
	for _, d := range e.Directions {
		if d.Class == class {
			n++
		}
	}
	shown := fmt.Sprintf("%d of the %d %s directions, spread over their range of lambda", len(ks), n, class)
	switch {
	case n == 1:
		shown = "the one " + class + " direction"
	case len(ks) == n:
		shown = fmt.Sprintf("all %d %s directions", n, class)
	}
	caption := "Solid: measured ensemble variance with its bootstrap band (" + shown + "); " + theoryKey(vp.theories) +
		". Log-log axes: slope 1 is diffusion, a plateau is confinement."
	caption += clipNote(vp)
	return vp, &Figure{Name: name, Title: fmt.Sprintf("%s: %s directions", e.Name, class), Caption: caption, Points: vp.points, measured: true}
}

// theoryKey describes the line styles of the theories drawn.
func theoryKey(drawn []string) string {
	style := map[string]string{TheoryDiscrete: "dashed", TheoryLangevin: "dotted", TheorySubspace: "dash-dot"}
	if len(drawn) == 0 {
		return "no theory curves (no Hessian survey for these directions)"
	}
	var parts []string
	for _, th := range drawn {
		desc := th + " theory"
		if th == TheoryLangevin {
			desc = "Langevin (standard Fokker-Planck)"
		}
		st := style[th]
		if st == "" {
			st = "see the legend"
		}
		parts = append(parts, desc+" ("+st+")")
	}
	return "theory at the same steps: " + strings.Join(parts, ", ")
}

func clipNote(vp *variancePlot) string {
	if len(vp.clipped) == 0 {
		return ""
	}
	return fmt.Sprintf(" Triangles: theory curves clipped %d decades beyond the measured band (%s); their full values are in figure_data.csv.",
		clipDecades, strings.Join(vp.clipped, ", "))
}

// headlineFigure is the first figure of the page: the measured variance
// of one representative direction per class with its theory curves and a
// slope-1 guide.
func headlineFigure(e *Ensemble, dir string, fd *figureData) (*Figure, error) {
	vp, f := headlinePlot(e, fd)
	if vp == nil || vp.points == 0 {
		return nil, nil
	}
	return f, save(vp.p, dir, f.Name)
}

func headlinePlot(e *Ensemble, fd *figureData) (*variancePlot, *Figure) {
	var picks []variancePick
	var reps []string
	for _, c := range classesOfEnsemble(e) {
		if c == "null" {
			continue // round-off variance: it would only stretch the axis
		}
		if k := representative(e, c); k >= 0 {
			picks = append(picks, variancePick{k: k, col: classColor(c), label: c + ": " + e.Directions[k].Source})
			reps = append(reps, e.Directions[k].Source+" ("+c+")")
		}
	}
	if len(picks) == 0 {
		return nil, nil
	}
	name := "headline"
	vp := newVariancePlot(e, picks, name, fd)
	p := vp.p
	p.Title.Text = fmt.Sprintf("Variance growth by class (%s: η %s, batch %d, %d replicas)", e.Name, sig3(e.Manifest.LR), e.Manifest.Batch, e.Manifest.Replicas)
	p.X.Label.Text = "step t"
	p.Y.Label.Text = "variance along u"
	guide := false
	if vp.measHi > 0 && vp.tMax > vp.tMin {
		// Slope-1 guide through the middle of the plot, drawn only inside
		// the axis range so it cannot widen it.
		tm, ym := math.Sqrt(vp.tMin*vp.tMax), math.Sqrt(p.Y.Min*p.Y.Max)
		var xy plotter.XYs
		for i := 0; i <= 40; i++ {
			t := vp.tMin * math.Pow(vp.tMax/vp.tMin, float64(i)/40)
			xy = append(xy, plotter.XY{X: t, Y: ym * t / tm})
		}
		segs, _ := clipCurve(xy, p.Y.Min, p.Y.Max)
		for j, seg := range segs {
			if len(seg) < 2 {
				continue
			}
			l, _ := plotter.NewLine(seg)
			l.Color, l.Width = color.Gray{150}, vg.Points(0.8)
			p.Add(l)
			if j == 0 {
				p.Legend.Add("slope 1 (diffusion)", l)
				guide = true
			}
		}
	}
	p.Legend.Top, p.Legend.Left = false, false
	caption := "Measured ensemble variance (solid, with bootstrap band) of one representative direction per class: " + strings.Join(reps, ", ") +
		" (the middle one of its class by lambda; null directions, whose variance is round-off, are left out); " + theoryKey(vp.theories) + "."
	if guide {
		caption += " Grey: slope 1, linear growth."
	}
	caption += clipNote(vp)
	return vp, &Figure{Name: name, Title: "Variance growth by class", Caption: caption, Points: vp.points, measured: true}
}

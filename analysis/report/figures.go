package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sgdyn/sgdyn/analysis"
)

// Figure is one saved figure (PNG and SVG) and its caption.
type Figure struct {
	Name    string // file name without extension
	Title   string
	Caption string
	// Points is the number of finite data points behind the figure (its
	// rows of figure_data.csv): the page carries it so a browser check can
	// fail on a figure with no data.
	Points int
	// measured: Points is already the count of measured points (a
	// variance figure, whose theory rows do not count as data).
	measured bool
}

// figureData collects the numbers behind every figure for figure_data.csv.
type figureData struct{ rows [][]string }

func (fd *figureData) add(fig, series string, x, y, lo, hi float64) {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 10, 64)
	}
	fd.rows = append(fd.rows, []string{fig, series, f(x), f(y), f(lo), f(hi)})
}

// countPoints sets each figure's Points from the rows recorded for it.
func (fd *figureData) countPoints(figs map[string][]*Figure) {
	n := map[string]int{}
	for _, r := range fd.rows {
		if r[3] != "" && r[3] != "NaN" && r[3] != "+Inf" && r[3] != "-Inf" {
			n[r[0]]++
		}
	}
	for _, fs := range figs {
		for _, f := range fs {
			if !f.measured {
				f.Points = n[f.Name]
			}
		}
	}
}

var dashed = []vg.Length{vg.Points(5), vg.Points(3)}

// Figure size: the plot's own area; a legend goes to its right, outside
// the data, so that it never hides a curve.
const (
	figWidth  = 7 * vg.Inch
	figHeight = 4.5 * vg.Inch
)

func save(p *plot.Plot, dir, name string) (err error) {
	// A log axis over a range that includes 0 (e.g. nothing plotted yet,
	// in a report on an ensemble that has just started) makes gonum/plot
	// panic; fall back to a linear axis.
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		if _, ok := ax.Scale.(plot.LogScale); ok && !(ax.Min > 0) {
			ax.Scale, ax.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("figure %s: %v", name, r)
		}
	}()
	leg := p.Legend
	leg.TextStyle.Font.Size = vg.Points(10)
	leg.Top, leg.Left = true, true
	p.Legend = plot.NewLegend()
	legW := leg.Rectangle(draw.Canvas{}).Size().X
	gap := vg.Points(10)
	if legW > 0 {
		legW += 2 * gap
	}
	for _, ext := range []string{"png", "svg"} {
		c, err := draw.NewFormattedCanvas(figWidth+legW, figHeight, ext)
		if err != nil {
			return fmt.Errorf("figure %s: %w", name, err)
		}
		dc := draw.New(c)
		p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
		if legW > 0 {
			top := p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding + gap
			leg.Draw(draw.Crop(dc, figWidth+gap, 0, 0, -top))
		}
		if err := writeFigure(c, filepath.Join(dir, name+"."+ext)); err != nil {
			return fmt.Errorf("figure %s: %w", name, err)
		}
	}
	return nil
}

func writeFigure(c io.WriterTo, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func logAxes(p *plot.Plot, x, y bool) {
	if x {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	}
	if y {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
}

// positive keeps the points a log axis can show.
func positive(xys plotter.XYs, logX bool) plotter.XYs {
	var out plotter.XYs
	for _, p := range xys {
		if p.Y > 0 && !math.IsInf(p.Y, 0) && (!logX || p.X > 0) {
			out = append(out, p)
		}
	}
	return out
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), a}
}

func trainingFigure(tc *TrainingCurves, dir string, fd *figureData) (*Figure, error) {
	p := plot.New()
	p.Title.Text = "Training"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	var raw, ema plotter.XYs
	var s float64
	for i, l := range tc.Loss {
		if i == 0 {
			s = l
		}
		s = 0.98*s + 0.02*l
		raw = append(raw, plotter.XY{X: tc.Steps[i], Y: l})
		ema = append(ema, plotter.XY{X: tc.Steps[i], Y: s})
		fd.add("training", "train_loss", tc.Steps[i], l, math.NaN(), math.NaN())
	}
	if len(raw) > 0 {
		lr, _ := plotter.NewLine(raw)
		lr.Color = withAlpha(plotutil.Color(0), 70)
		le, _ := plotter.NewLine(ema)
		le.Color = plotutil.Color(0)
		le.Width = vg.Points(1.5)
		p.Add(lr, le)
		p.Legend.Add("train loss (minibatch; smoothed)", le)
	}
	var val plotter.XYs
	for i, l := range tc.ValLoss {
		val = append(val, plotter.XY{X: tc.EvalSteps[i], Y: l})
		fd.add("training", "val_loss", tc.EvalSteps[i], l, math.NaN(), math.NaN())
	}
	if len(val) > 0 {
		lv, pv, _ := plotter.NewLinePoints(val)
		lv.Color, pv.Color = plotutil.Color(1), plotutil.Color(1)
		p.Add(lv, pv)
		p.Legend.Add("validation loss", lv, pv)
	}
	p.Legend.Top = true
	f := &Figure{Name: "training", Title: "Training curves", Caption: "Minibatch training loss per step (faint) and its exponential average, and the validation loss."}
	return f, save(p, dir, f.Name)
}

// stationaryFigure compares the measured final variance with both
// predictions for every direction that has them.
func stationaryFigure(e *Ensemble, dir string, fd *figureData) (*Figure, error) {
	name := "stationary-" + e.Name
	// A prediction more than offScale times the largest measured variance
	// (a direction the linear theory calls unstable, say) would squeeze
	// every other point into a corner: it stays in figure_data.csv and the
	// table, and the caption counts it.
	const offScale = 1e3
	var vmax float64
	for _, d := range e.Directions {
		if d.VarFinal != nil && d.Class != "null" {
			vmax = math.Max(vmax, *d.VarFinal)
		}
	}
	type point = classPoint
	var disc, lang []point
	lo, hi := math.Inf(1), math.Inf(-1)
	off := 0
	for _, d := range e.Directions {
		if d.VarFinal == nil || d.PredDiscrete == nil || d.PredLangevin == nil || d.Class == "null" {
			continue
		}
		v := *d.VarFinal
		fd.add(name, d.Source+" discrete", *d.PredDiscrete, v, deref(d.VarFinalCI[0]), deref(d.VarFinalCI[1]))
		fd.add(name, d.Source+" langevin", *d.PredLangevin, v, deref(d.VarFinalCI[0]), deref(d.VarFinalCI[1]))
		for _, pt := range []struct {
			pred float64
			pts  *[]point
		}{{*d.PredDiscrete, &disc}, {*d.PredLangevin, &lang}} {
			if pt.pred > offScale*vmax {
				off++
				continue
			}
			if !(pt.pred > 0 && v > 0) {
				continue
			}
			*pt.pts = append(*pt.pts, point{plotter.XY{X: pt.pred, Y: v}, d.Class})
			lo, hi = math.Min(lo, math.Min(v, pt.pred)), math.Max(hi, math.Max(v, pt.pred))
		}
	}
	if len(disc)+len(lang) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Final variance: measured vs predicted (%s)", e.Name)
	p.X.Label.Text = "predicted variance at the last step"
	p.Y.Label.Text = "measured variance"
	// Log axes only pay off over decades; within one they show no labels.
	if hi/lo > 30 {
		logAxes(p, true, true)
	}
	l, _ := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	l.Color = color.Gray{150}
	p.Add(l)
	// Glyph by theory, colour by class (the classes' colours of every
	// figure and of the table).
	present := map[string]bool{}
	classes := classesOf(append(append([]point(nil), disc...), lang...))
	for ti, set := range [][]point{disc, lang} {
		glyph := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}}[ti]
		for _, c := range classes {
			var xy plotter.XYs
			for _, pt := range set {
				if pt.class == c {
					xy = append(xy, pt.xy)
				}
			}
			if len(xy) == 0 {
				continue
			}
			present[c] = true
			sc, _ := plotter.NewScatter(xy)
			sc.Color, sc.Shape = classColor(c), glyph
			p.Add(sc)
		}
		leg, _ := plotter.NewScatter(plotter.XYs{{X: 1, Y: 1}})
		leg.Color, leg.Shape = color.Gray{40}, glyph
		if len(set) > 0 {
			p.Legend.Add([]string{"discrete theory", "Langevin"}[ti], leg)
		}
	}
	for _, c := range classes {
		if present[c] {
			leg, _ := plotter.NewScatter(plotter.XYs{{X: 1, Y: 1}})
			leg.Color, leg.Shape = classColor(c), draw.BoxGlyph{}
			p.Legend.Add(c, leg)
		}
	}
	p.Legend.Add("measured = predicted", l)
	p.Legend.Top, p.Legend.Left = true, true
	caption := "Each direction's measured ensemble variance at the last step against the discrete (circles) and the Langevin (triangles) prediction at that step, coloured by class. Points on the grey line agree."
	if off > 0 {
		caption += fmt.Sprintf(" %d predictions above %g times the largest measured variance (directions the linear theory calls unstable) are off the plot; the table lists them.", off, offScale)
	}
	f := &Figure{Name: name, Title: "Measured vs predicted variance (" + e.Name + ")", Caption: caption}
	return f, save(p, dir, name)
}

// classPoint is a point of a scatter coloured by class.
type classPoint struct {
	xy    plotter.XY
	class string
}

// classesOf lists the classes of pts: those of classOrder first, in that
// order, then any other, in order of appearance.
func classesOf(pts []classPoint) []string {
	seen := map[string]bool{}
	for _, p := range pts {
		seen[p.class] = true
	}
	var out []string
	for _, c := range classOrder {
		if seen[c] {
			out = append(out, c)
			delete(seen, c)
		}
	}
	for _, p := range pts {
		if seen[p.class] {
			out = append(out, p.class)
			delete(seen, p.class)
		}
	}
	return out
}

func scanFigure(s *Scan, dir string, fd *figureData) (*Figure, error) {
	if s == nil || len(s.Points) < 2 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Variance growth rate vs learning rate"
	p.X.Label.Text = "learning rate η"
	p.Y.Label.Text = "median late slope"
	logAxes(p, true, true)
	perStep, perTau := errPoints{}, errPoints{}
	for _, pt := range s.Points {
		perStep.add(pt.Eta, pt.Rate.Est, pt.Rate.Lo, pt.Rate.Hi)
		perTau.add(pt.Eta, pt.Rate.Est/pt.Eta, pt.Rate.Lo/pt.Eta, pt.Rate.Hi/pt.Eta)
		fd.add("lrscan", "per_step", pt.Eta, pt.Rate.Est, pt.Rate.Lo, pt.Rate.Hi)
		fd.add("lrscan", "per_tau", pt.Eta, pt.Rate.Est/pt.Eta, pt.Rate.Lo/pt.Eta, pt.Rate.Hi/pt.Eta)
	}
	for i, ep := range []errPoints{perStep, perTau} {
		if !ep.allPositive() {
			continue
		}
		sc, _ := plotter.NewScatter(ep.xys)
		sc.Color = plotutil.Color(i)
		eb, err := plotter.NewYErrorBars(ep)
		if err == nil {
			eb.Color = plotutil.Color(i)
			p.Add(eb)
		}
		p.Add(sc)
		p.Legend.Add([]string{"per step (theory: slope 2)", "per unit tau = eta t, 2D (theory: slope 1)"}[i], sc)
		if s.Fit != nil {
			fit := s.Fit.PerStep
			if i == 1 {
				fit = s.Fit.PerTau
			}
			var line plotter.XYs
			for _, pt := range ep.xys {
				line = append(line, plotter.XY{X: pt.X, Y: math.Exp(fit.Intercept) * math.Pow(pt.X, fit.Slope.Est)})
			}
			if band := slopeBand(ep, fit); len(band) > 2 {
				if poly, err := plotter.NewPolygon(band); err == nil {
					poly.Color = withAlpha(plotutil.Color(i), 40)
					poly.LineStyle.Width = 0
					p.Add(poly)
				}
			}
			l, _ := plotter.NewLine(line)
			l.Color, l.Dashes = plotutil.Color(i), dashed
			p.Add(l)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	f := &Figure{Name: "lrscan", Title: "Learning-rate scan", Caption: "Median late-time variance growth of the " + s.Basis +
		" directions per step, and per unit of tau = eta t (late slope / eta = 2D, D the diffusion coefficient), with bootstrap intervals, weighted log-log fits (dashed) and the fits' slope intervals (shaded, pivoting at the weighted mean of ln eta)."}
	return f, save(p, dir, f.Name)
}

// slopeBand is the region a log-log fit sweeps as its slope runs over its
// interval, pivoting at the weighted mean of ln eta (where the fitted line
// is best determined; weights as in analysis.FitScan, 1/(ln hi - ln lo)^2).
func slopeBand(ep errPoints, fit analysis.LogLogFit) plotter.XYs {
	var sw, swx float64
	xMin, xMax := math.Inf(1), math.Inf(-1)
	for i, pt := range ep.xys {
		w := math.Log(ep.hi[i]) - math.Log(ep.lo[i])
		if !(w > 0) {
			return nil
		}
		sw += 1 / (w * w)
		swx += math.Log(pt.X) / (w * w)
		xMin, xMax = math.Min(xMin, pt.X), math.Max(xMax, pt.X)
	}
	if !(sw > 0) || !(xMax > xMin) || math.IsNaN(fit.Slope.Lo) || math.IsNaN(fit.Slope.Hi) {
		return nil
	}
	lx0 := swx / sw
	ly0 := fit.Intercept + fit.Slope.Est*lx0
	var upper, lower plotter.XYs
	for j := 0; j <= 24; j++ {
		lx := math.Log(xMin) + (math.Log(xMax)-math.Log(xMin))*float64(j)/24
		a, b := ly0+fit.Slope.Lo*(lx-lx0), ly0+fit.Slope.Hi*(lx-lx0)
		upper = append(upper, plotter.XY{X: math.Exp(lx), Y: math.Exp(math.Max(a, b))})
		lower = append(lower, plotter.XY{X: math.Exp(lx), Y: math.Exp(math.Min(a, b))})
	}
	for j := len(lower) - 1; j >= 0; j-- {
		upper = append(upper, lower[j])
	}
	return upper
}

type errPoints struct {
	xys    plotter.XYs
	lo, hi []float64
}

func (e *errPoints) add(x, y, lo, hi float64) {
	e.xys = append(e.xys, plotter.XY{X: x, Y: y})
	e.lo, e.hi = append(e.lo, lo), append(e.hi, hi)
}
func (e errPoints) Len() int                    { return len(e.xys) }
func (e errPoints) XY(i int) (float64, float64) { return e.xys[i].X, e.xys[i].Y }
func (e errPoints) YError(i int) (float64, float64) {
	return e.xys[i].Y - e.lo[i], e.hi[i] - e.xys[i].Y
}
func (e errPoints) allPositive() bool {
	for i := range e.xys {
		if !(e.xys[i].Y > 0 && e.lo[i] > 0) {
			return false
		}
	}
	return len(e.xys) > 0
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func msdFigure(m *MSD, dir string, fd *figureData) (*Figure, error) {
	if m == nil || len(m.Values) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Single-run mean squared displacement"
	p.X.Label.Text = "lag k (steps)"
	p.Y.Label.Text = "MSD(k)"
	logAxes(p, true, true)
	nulls, shown := 0, 0
	for d, v := range m.Values {
		var xy plotter.XYs
		for j, k := range m.Lags {
			fd.add("msd", m.Sources[d], float64(k), v[j], math.NaN(), math.NaN())
			xy = append(xy, plotter.XY{X: float64(k), Y: v[j]})
		}
		if d < len(m.Null) && m.Null[d] {
			nulls++
			continue // round-off: it would only stretch the axis
		}
		if shown++; shown > 8 {
			continue // the table and figure_data.csv hold the rest
		}
		if pts := positive(xy, true); len(pts) > 1 {
			l, _ := plotter.NewLine(pts)
			l.Color = plotutil.Color(d)
			p.Add(l)
			p.Legend.Add(m.Sources[d], l)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	f := &Figure{Name: "msd", Title: "Single-run MSD", Caption: "Mean squared displacement of the training trajectory along each logged direction: a plateau (at 2 sigma_inf^2) for confined directions, linear growth for diffusive ones."}
	if nulls > 0 {
		f.Caption += fmt.Sprintf(" %d null directions (round-off displacement) are left out; the table lists them.", nulls)
	}
	return f, save(p, dir, f.Name)
}

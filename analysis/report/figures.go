package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/probe"
)

// Figure is one saved figure (PNG and SVG) and its caption.
type Figure struct {
	Name    string // file name without extension
	Title   string
	Caption string
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

var (
	dashed = []vg.Length{vg.Points(5), vg.Points(3)}
	dotted = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
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
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, name+ext)); err != nil {
			return fmt.Errorf("figure %s: %w", name, err)
		}
	}
	return nil
}

func logAxes(p *plot.Plot, x, y bool) {
	if x {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if y {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
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

func spectrumFigure(s *Survey, dir string, fd *figureData) (*Figure, error) {
	p := plot.New()
	p.Title.Text = "Mean-Hessian spectrum"
	p.X.Label.Text = "eigenvalue"
	p.Y.Label.Text = "density"
	if s.Density != nil {
		var xy plotter.XYs
		for i, x := range s.Density.Grid {
			xy = append(xy, plotter.XY{X: x, Y: s.Density.Values[i]})
			fd.add("spectrum", "density", x, s.Density.Values[i], math.NaN(), math.NaN())
		}
		l, _ := plotter.NewLine(xy)
		l.Color = plotutil.Color(0)
		p.Add(l)
		p.Legend.Add("SLQ density", l)
	}
	var eig plotter.XYs
	for _, e := range append(append([]probe.Eigenvalue(nil), s.Top...), s.Bottom...) {
		eig = append(eig, plotter.XY{X: e.Value, Y: 0})
		fd.add("spectrum", "eigenvalue", e.Value, 0, e.Value-e.Residual, e.Value+e.Residual)
	}
	if len(eig) > 0 {
		sc, _ := plotter.NewScatter(eig)
		sc.Color = plotutil.Color(1)
		sc.Shape = draw.PlusGlyph{}
		sc.Radius = vg.Points(4)
		p.Add(sc)
		p.Legend.Add("Lanczos eigenvalues", sc)
	}
	p.Legend.Top = true
	f := &Figure{Name: "spectrum", Title: "Spectrum", Caption: "Stochastic-Lanczos-quadrature estimate of the spectral density of the mean Hessian, with the extreme eigenvalues from Lanczos."}
	return f, save(p, dir, f.Name)
}

// growthFigure draws the measured variance of up to six directions of one
// class with its bootstrap band and both predictions.
func growthFigure(e *Ensemble, class string, dir string, fd *figureData) (*Figure, error) {
	var picks []int
	for k, d := range e.Directions {
		if d.Class == class && len(picks) < 6 {
			picks = append(picks, k)
		}
	}
	if len(picks) == 0 {
		return nil, nil
	}
	name := fmt.Sprintf("growth-%s-%s", e.Name, class)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s directions, eta %g, batch %d", class, e.Manifest.LR, e.Manifest.Batch)
	p.X.Label.Text = "step t"
	p.Y.Label.Text = "ensemble variance of u . (theta_t - theta_0)"
	logAxes(p, true, true)
	for i, k := range picks {
		g := e.Growth.Dirs[k]
		d := e.Directions[k]
		col := plotutil.Color(i)
		var meas, band, lo plotter.XYs
		for ti, t := range e.Steps {
			if t == 0 || math.IsNaN(g.Var[ti]) {
				continue
			}
			x := float64(t)
			meas = append(meas, plotter.XY{X: x, Y: g.Var[ti]})
			band = append(band, plotter.XY{X: x, Y: g.VarHi[ti]})
			lo = append(lo, plotter.XY{X: x, Y: g.VarLo[ti]})
			fd.add(name, fmt.Sprintf("%s measured", d.Source), x, g.Var[ti], g.VarLo[ti], g.VarHi[ti])
		}
		for j := len(lo) - 1; j >= 0; j-- {
			band = append(band, lo[j])
		}
		if pb := positive(band, true); len(pb) > 2 && len(pb) == len(band) {
			poly, err := plotter.NewPolygon(pb)
			if err == nil {
				poly.Color = withAlpha(col, 40)
				poly.LineStyle.Width = 0
				p.Add(poly)
			}
		}
		if pm := positive(meas, true); len(pm) > 1 {
			l, _ := plotter.NewLine(pm)
			l.Color = col
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(d.Source, l)
		}
		if d.params == nil {
			continue
		}
		var disc, lang plotter.XYs
		for _, pt := range meas {
			vd := analysis.DiscreteVariance(e.Manifest.LR, *d.params, 0, pt.X)
			vl := analysis.LangevinVariance(e.Manifest.LR, *d.params, 0, pt.X)
			disc = append(disc, plotter.XY{X: pt.X, Y: vd})
			lang = append(lang, plotter.XY{X: pt.X, Y: vl})
			fd.add(name, d.Source+" discrete", pt.X, vd, math.NaN(), math.NaN())
			fd.add(name, d.Source+" langevin", pt.X, vl, math.NaN(), math.NaN())
		}
		if pd := positive(disc, true); len(pd) > 1 {
			l, _ := plotter.NewLine(pd)
			l.Color, l.Dashes = col, dashed
			p.Add(l)
		}
		if pl := positive(lang, true); len(pl) > 1 {
			l, _ := plotter.NewLine(pl)
			l.Color, l.Dashes = col, dotted
			p.Add(l)
		}
	}
	// Growth curves rise to the right: the lower right corner is free.
	p.Legend.Top, p.Legend.Left = false, false
	f := &Figure{Name: name, Title: fmt.Sprintf("%s: %s directions", e.Name, class),
		Caption: "Solid: measured ensemble variance with its bootstrap band; dashed: discrete theory; dotted: Langevin (standard Fokker-Planck). Log-log axes: slope 1 is diffusion, a plateau is confinement."}
	return f, save(p, dir, name)
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
	var disc, lang, diag plotter.XYs
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
			xys  *plotter.XYs
		}{{*d.PredDiscrete, &disc}, {*d.PredLangevin, &lang}} {
			if pt.pred > offScale*vmax {
				off++
				continue
			}
			*pt.xys = append(*pt.xys, plotter.XY{X: pt.pred, Y: v})
			for _, x := range []float64{v, pt.pred} {
				if x > 0 {
					lo, hi = math.Min(lo, x), math.Max(hi, x)
				}
			}
		}
	}
	disc, lang = positive(disc, true), positive(lang, true)
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
	diag = plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}}
	l, _ := plotter.NewLine(diag)
	l.Color = color.Gray{150}
	p.Add(l)
	if len(disc) > 0 {
		sd, _ := plotter.NewScatter(disc)
		sd.Color, sd.Shape = plotutil.Color(0), draw.CircleGlyph{}
		p.Add(sd)
		p.Legend.Add("discrete theory", sd)
	}
	if len(lang) > 0 {
		sl, _ := plotter.NewScatter(lang)
		sl.Color, sl.Shape = plotutil.Color(1), draw.TriangleGlyph{}
		p.Add(sl)
		p.Legend.Add("Langevin", sl)
	}
	p.Legend.Add("measured = predicted", l)
	p.Legend.Top, p.Legend.Left = true, true
	caption := "Each direction's measured ensemble variance at the last step against the discrete and the Langevin prediction at that step. Points on the grey line agree."
	if off > 0 {
		caption += fmt.Sprintf(" %d predictions above %g times the largest measured variance (directions the linear theory calls unstable) are off the plot; the table lists them.", off, offScale)
	}
	f := &Figure{Name: name, Title: "Measured vs predicted variance (" + e.Name + ")", Caption: caption}
	return f, save(p, dir, name)
}

func scanFigure(s *Scan, dir string, fd *figureData) (*Figure, error) {
	if s == nil || len(s.Points) < 2 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Variance growth rate vs learning rate"
	p.X.Label.Text = "learning rate eta"
	p.Y.Label.Text = "late slope (median over " + s.Basis + " directions)"
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
		p.Legend.Add([]string{"per step (theory: slope 2)", "per unit tau = eta t (theory: slope 1)"}[i], sc)
		if s.Fit != nil {
			fit := s.Fit.PerStep
			if i == 1 {
				fit = s.Fit.PerTau
			}
			var line plotter.XYs
			for _, pt := range ep.xys {
				line = append(line, plotter.XY{X: pt.X, Y: math.Exp(fit.Intercept) * math.Pow(pt.X, fit.Slope.Est)})
			}
			l, _ := plotter.NewLine(line)
			l.Color, l.Dashes = plotutil.Color(i), dashed
			p.Add(l)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	f := &Figure{Name: "lrscan", Title: "Learning-rate scan", Caption: "Median late-time variance growth of the " + s.Basis + " directions per step and per unit of tau = eta t, with bootstrap intervals and weighted log-log fits (dashed)."}
	return f, save(p, dir, f.Name)
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
	p.Y.Label.Text = "MSD(k) = mean_t (p(t+k) - p(t))^2"
	logAxes(p, true, true)
	for d, v := range m.Values {
		var xy plotter.XYs
		for j, k := range m.Lags {
			fd.add("msd", m.Sources[d], float64(k), v[j], math.NaN(), math.NaN())
			xy = append(xy, plotter.XY{X: float64(k), Y: v[j]})
		}
		if d >= 8 {
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
	return f, save(p, dir, f.Name)
}

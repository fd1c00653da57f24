package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sgdyn/sgdyn/probe"
)

// densityFloor is the smallest density the spectrum figures show, relative
// to the peak: below it the smoothed SLQ density is quadrature noise.
const densityFloor = 1e-7

var (
	posColor = color.NRGBA{0x22, 0x55, 0xaa, 0xff}
	negColor = color.NRGBA{0xcc, 0x33, 0x22, 0xff}
)

// spectrumFigures draws the SLQ spectral density twice: against lambda
// with a log density axis (the bulk's tails and the outliers beside the
// spike at 0), and against |lambda| on log axes as the density per unit
// ln|lambda|, positive and negative eigenvalues apart (the near-null
// cluster, the bulk and the outliers as separate bumps).
func spectrumFigures(s *Survey, dir string, fd *figureData) ([]*Figure, error) {
	var figs []*Figure
	p, f := spectrumPlot(s, fd)
	if err := save(p, dir, f.Name); err != nil {
		return nil, err
	}
	figs = append(figs, f)
	if p, f := spectrumLogPlot(s, fd); p != nil {
		if err := save(p, dir, f.Name); err != nil {
			return figs, err
		}
		figs = append(figs, f)
	}
	return figs, nil
}

func eigenvalues(s *Survey) []probe.Eigenvalue {
	return append(append([]probe.Eigenvalue(nil), s.Top...), s.Bottom...)
}

func spectrumPlot(s *Survey, fd *figureData) (*plot.Plot, *Figure) {
	p := plot.New()
	p.Title.Text = "Mean-Hessian spectrum"
	p.X.Label.Text = "eigenvalue λ"
	p.Y.Label.Text = "density (log scale)"
	peak := 0.0
	if s.Density != nil {
		for i, x := range s.Density.Grid {
			fd.add("spectrum", "density", x, s.Density.Values[i], math.NaN(), math.NaN())
			peak = math.Max(peak, s.Density.Values[i])
		}
	}
	floor := peak * densityFloor
	if peak > 0 {
		logAxes(p, false, true)
		var seg plotter.XYs
		first := true
		flush := func() {
			if len(seg) > 1 {
				l, _ := plotter.NewLine(seg)
				l.Color, l.Width = posColor, vg.Points(1.3)
				p.Add(l)
				if first {
					p.Legend.Add("SLQ density", l)
					first = false
				}
			}
			seg = nil
		}
		for i, x := range s.Density.Grid {
			if v := s.Density.Values[i]; v >= floor {
				seg = append(seg, plotter.XY{X: x, Y: v})
			} else {
				flush()
			}
		}
		flush()
	}
	var eig plotter.XYs
	y := floor
	if !(y > 0) {
		y = 0
	}
	for _, e := range eigenvalues(s) {
		eig = append(eig, plotter.XY{X: e.Value, Y: y})
		fd.add("spectrum", "eigenvalue", e.Value, 0, e.Value-e.Residual, e.Value+e.Residual)
	}
	if len(eig) > 0 {
		sc, _ := plotter.NewScatter(eig)
		sc.Color, sc.Shape, sc.Radius = negColor, draw.PlusGlyph{}, vg.Points(4)
		p.Add(sc)
		p.Legend.Add("Lanczos eigenvalues", sc)
	}
	if peak > 0 {
		p.Y.Min, p.Y.Max = floor, peak*2
	}
	p.Legend.Top = true
	return p, &Figure{Name: "spectrum", Title: "Spectrum",
		Caption: "Stochastic-Lanczos-quadrature estimate of the spectral density of the mean Hessian on a log density axis (down to 1e-7 of its peak), with the extreme eigenvalues from Lanczos (+, on the bottom edge)."}
}

func spectrumLogPlot(s *Survey, fd *figureData) (*plot.Plot, *Figure) {
	if s.Density == nil {
		return nil, nil
	}
	var pos, neg plotter.XYs
	peak := 0.0
	// Closer to 0 than one grid step, the grid says nothing.
	step := 0.0
	if g := s.Density.Grid; len(g) > 1 {
		step = (g[len(g)-1] - g[0]) / float64(len(g)-1)
	}
	for i, x := range s.Density.Grid {
		v := math.Abs(x) * s.Density.Values[i] // density per unit ln|lambda|
		if math.Abs(x) < step || !(v > 0) {
			continue
		}
		peak = math.Max(peak, v)
		if x > 0 {
			pos = append(pos, plotter.XY{X: x, Y: v})
			fd.add("spectrum-log", "positive", x, v, math.NaN(), math.NaN())
		} else {
			neg = append(neg, plotter.XY{X: -x, Y: v})
			fd.add("spectrum-log", "negative", -x, v, math.NaN(), math.NaN())
		}
	}
	if peak == 0 {
		return nil, nil
	}
	floor := peak * densityFloor
	p := plot.New()
	p.Title.Text = "Mean-Hessian spectrum, log |λ|"
	p.X.Label.Text = "|λ|"
	p.Y.Label.Text = "|λ| × density"
	logAxes(p, true, true)
	xLo, xHi := math.Inf(1), math.Inf(-1)
	for _, side := range []struct {
		xy    plotter.XYs
		col   color.Color
		label string
	}{{neg, negColor, "λ < 0"}, {pos, posColor, "λ > 0"}} {
		// Grid points come sorted by lambda: the negative side runs from
		// large |lambda| to small, which a line does not mind.
		var seg plotter.XYs
		first := true
		flush := func() {
			if len(seg) > 1 {
				l, _ := plotter.NewLine(seg)
				l.Color, l.Width = side.col, vg.Points(1.3)
				p.Add(l)
				if first {
					p.Legend.Add(side.label, l)
					first = false
				}
			}
			seg = nil
		}
		for _, pt := range side.xy {
			if pt.Y >= floor {
				seg = append(seg, pt)
				xLo, xHi = math.Min(xLo, pt.X), math.Max(xHi, pt.X)
			} else {
				flush()
			}
		}
		flush()
	}
	var ep, en plotter.XYs
	for _, e := range eigenvalues(s) {
		if e.Value > 0 {
			ep = append(ep, plotter.XY{X: e.Value, Y: floor})
		} else if e.Value < 0 {
			en = append(en, plotter.XY{X: -e.Value, Y: floor})
		}
		if e.Value != 0 {
			xLo, xHi = math.Min(xLo, math.Abs(e.Value)), math.Max(xHi, math.Abs(e.Value))
		}
	}
	for _, m := range []struct {
		xy    plotter.XYs
		col   color.Color
		label string
	}{{ep, posColor, "Lanczos eigenvalue > 0"}, {en, negColor, "Lanczos eigenvalue < 0"}} {
		if len(m.xy) == 0 {
			continue
		}
		sc, _ := plotter.NewScatter(m.xy)
		sc.Color, sc.Shape, sc.Radius = m.col, draw.PlusGlyph{}, vg.Points(4)
		p.Add(sc)
		p.Legend.Add(m.label, sc)
	}
	if !(xHi > xLo) {
		return nil, nil
	}
	p.X.Min, p.X.Max = xLo, xHi
	p.Y.Min, p.Y.Max = floor, peak*2
	p.Legend.Top, p.Legend.Left = true, true
	return p, &Figure{Name: "spectrum-log", Title: "Spectrum on log |lambda|",
		Caption: "The same density against |lambda| on log axes, as |lambda| times the density (the density per unit ln|lambda|, so equal areas hold equal numbers of eigenvalues), positive and negative eigenvalues apart: the near-null cluster is the left, the bulk the middle, the outliers the right. The SLQ density is smoothed by a Gaussian (by default 1% of the spectral range wide): at smaller |lambda| the curve shows that kernel (a slope-1 rise), not the spectrum, and the grid ends one grid step from 0. +: Lanczos extreme eigenvalues on the bottom edge."}
}

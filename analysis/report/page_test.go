package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/train"
)

// synthEnsemble is an ensemble without replicas: four directions, one per
// class, whose measured variance is the discrete theory (the unstable one
// only grows tenfold, while its theory reaches ~1e60), with a +-20% band.
func synthEnsemble(name string, eta float64) *Ensemble {
	steps := make([]int64, 0, 200)
	for t := int64(0); t <= 200; t++ {
		steps = append(steps, t)
	}
	e := &Ensemble{Name: name, Steps: steps, Counts: map[string]int{}, Growth: &analysis.Growth{Steps: steps}}
	e.Manifest.Name, e.Manifest.LR, e.Manifest.Batch, e.Manifest.Replicas, e.Manifest.Steps = name, eta, 16, 64, 200
	e.Manifest.Sampling, e.Manifest.LogEvery = "with", 1
	f := func(x float64) *float64 { return &x }
	for k, spec := range []struct {
		src, class string
		p          analysis.DirectionParams
	}{
		{"top-0", "confined", analysis.DirectionParams{Lambda: 2, C: 1e-2, S2: 0.1}},
		{"bulk-0", "diffusive", analysis.DirectionParams{Lambda: 1e-6, C: 3e-3}},
		{"bottom-0", "unstable", analysis.DirectionParams{Lambda: -3, C: 1e-3}},
		{"null-0", "null", analysis.DirectionParams{}},
	} {
		p := spec.p
		g := analysis.DirectionGrowth{}
		for _, t := range steps {
			v := analysis.DiscreteVariance(eta, p, 0, float64(t))
			if spec.class == "unstable" {
				v = 1e-4 * (1 + 9*float64(t)/200)
			}
			if spec.class == "null" {
				v = 1e-30
			}
			g.Var, g.VarLo, g.VarHi = append(g.Var, v), append(g.VarLo, 0.8*v), append(g.VarHi, 1.2*v)
			g.Mean = append(g.Mean, 0)
		}
		e.Growth.Dirs = append(e.Growth.Dirs, g)
		T := float64(steps[len(steps)-1])
		vT := g.Var[len(g.Var)-1]
		d := Direction{Index: k, Source: spec.src, Class: spec.class, Reason: "because " + spec.class + " " + strings.Repeat("words ", 40),
			FinalStep: steps[len(steps)-1], Lambda: f(p.Lambda), C: f(p.C), S2: f(p.S2), EtaLambda: f(eta * p.Lambda),
			LogLogSlope: f(0.123456789), LogLogSlopeCI: []*float64{f(0.0987654), f(0.15555555)},
			VarFinal: f(vT), VarFinalCI: []*float64{f(0.8 * vT), f(1.2 * vT)}, params: &p, Curves: map[string]Curve{}}
		if spec.class != "null" {
			pp := p
			d.Curves[TheoryDiscrete] = func(t float64) float64 { return analysis.DiscreteVariance(eta, pp, 0, t) }
			d.Curves[TheoryLangevin] = func(t float64) float64 { return analysis.LangevinVariance(eta, pp, 0, t) }
			d.PredDiscrete = num(analysis.DiscreteVariance(eta, p, 0, T))
			d.PredLangevin = num(analysis.LangevinVariance(eta, p, 0, T))
		}
		e.Directions = append(e.Directions, d)
		e.Counts[spec.class]++
	}
	return e
}

func synthReport(t *testing.T, ens ...*Ensemble) *Report {
	t.Helper()
	cfg := train.DefaultConfig("linreg").WithDefaults()
	r := &Report{Run: "synthetic", Config: &cfg, Level: 0.95, Ensembles: ens, Rule: analysis.Rule, TailRule: analysis.HeavyTailRule}
	if len(ens) > 0 {
		r.Primary = ens[0]
	}
	return r
}

// TestLogTicksReadable checks that a log axis never gets more labels than
// fit, over one decade or sixty, and that the labels are short and
// distinct (gonum's LogTicks labels every decade: 76 labels over 1e-10 to
// 1e66, written out as "1.000000000000000e-10").
func TestLogTicksReadable(t *testing.T) {
	for _, r := range [][2]float64{{1e-10, 1e66}, {1e-4, 3e-2}, {5e-4, 1e-3}, {1, 1e4}, {2.2e-4, 8.1e-4}, {1e-300, 1e300}, {3, 7}} {
		ticks := logTicks{}.Ticks(r[0], r[1])
		var labels []string
		seen := map[string]bool{}
		last := math.Inf(-1)
		for _, tk := range ticks {
			if tk.Value < last {
				t.Errorf("%g..%g: ticks out of order at %g", r[0], r[1], tk.Value)
			}
			last = tk.Value
			if tk.Label == "" {
				continue
			}
			if tk.Value < r[0]*(1-1e-9) || tk.Value > r[1]*(1+1e-9) {
				t.Errorf("%g..%g: label %q outside the axis", r[0], r[1], tk.Label)
			}
			if len(tk.Label) > 7 || seen[tk.Label] {
				t.Errorf("%g..%g: label %q too long or repeated", r[0], r[1], tk.Label)
			}
			seen[tk.Label] = true
			labels = append(labels, tk.Label)
		}
		if len(labels) < 2 || len(labels) > maxLogLabels {
			t.Errorf("%g..%g: %d labels %v, want 2 to %d", r[0], r[1], len(labels), labels, maxLogLabels)
		}
	}
	var two []string
	for _, tk := range (logTicks{}).Ticks(9e-5, 4e-3) {
		if tk.Label != "" {
			two = append(two, tk.Label)
		}
	}
	if strings.Join(two, " ") != "1e-4 2e-4 5e-4 1e-3 2e-3" {
		t.Errorf("labels over 9e-5..4e-3: %v, want 1e-4 2e-4 5e-4 1e-3 2e-3", two)
	}
	if got := tickLabel(1e-5); got != "1e-5" {
		t.Errorf("tickLabel(1e-5) = %q", got)
	}
	if got := tickLabel(0.01); got != "0.01" {
		t.Errorf("tickLabel(0.01) = %q", got)
	}
}

// TestClipCurve checks that a curve leaving the band ends on the clip
// line, at the crossing interpolated in log-log space, and is marked.
func TestClipCurve(t *testing.T) {
	// y = x^2 from 1 to 1e4 crosses hi = 1e4 at x = 100.
	var xy plotter.XYs
	for x := 1.0; x <= 1e4; x *= 10 {
		xy = append(xy, plotter.XY{X: x, Y: x * x})
	}
	segs, exits := clipCurve(xy, 1e-1, 1e4)
	if len(segs) != 1 || len(exits) != 1 {
		t.Fatalf("segments %v exits %v: want one of each", segs, exits)
	}
	end := segs[0][len(segs[0])-1]
	if math.Abs(end.X-100) > 1e-9 || end.Y != 1e4 || exits[0] != end {
		t.Errorf("curve ends at %v, exit %v; want (100, 1e4)", end, exits[0])
	}
	for _, pt := range segs[0] {
		if pt.Y > 1e4 {
			t.Errorf("point %v above the clip line", pt)
		}
	}
	// Overflow to +Inf and NaN count as above the band.
	segs, exits = clipCurve(plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: 10}, {X: 3, Y: math.Inf(1)}, {X: 4, Y: math.NaN()}}, 0.1, 100)
	if len(segs) != 1 || len(exits) != 1 || segs[0][len(segs[0])-1].Y != 100 {
		t.Errorf("overflowing curve: segments %v exits %v", segs, exits)
	}
}

// TestGrowthPlotClipsTheory checks that an unstable direction's theory
// (1e60 and more) neither sets the y axis nor is drawn above the clip line,
// that it is marked as clipped, and that the measured band sets the axis.
func TestGrowthPlotClipsTheory(t *testing.T) {
	e := synthEnsemble("e", 0.1)
	d := e.Directions[2]
	if raw := d.Curves[TheoryDiscrete](200); raw < 1e40 {
		t.Fatalf("test setup: the unstable theory reaches only %g", raw)
	}
	vp, fig := growthPlot(e, "unstable", &figureData{})
	measHi := 1.2 * 1e-3 // the band's top at the last step
	if math.Abs(vp.measHi-measHi) > 1e-12 {
		t.Errorf("measured top %g, want %g", vp.measHi, measHi)
	}
	if vp.clipHi > measHi*math.Pow10(clipDecades)*(1+1e-9) {
		t.Errorf("clip line %g above %d decades over the band", vp.clipHi, clipDecades)
	}
	if vp.p.Y.Max > vp.clipHi*(1+1e-9) || vp.p.Y.Max < measHi {
		t.Errorf("y axis max %g: want within [%g, %g]", vp.p.Y.Max, measHi, vp.clipHi)
	}
	if vp.p.Y.Min > 0.8e-4 || vp.p.Y.Min < 0.8e-4*math.Pow10(-clipDecades) {
		t.Errorf("y axis min %g: want the band's bottom 8e-5, or at most %d decades below", vp.p.Y.Min, clipDecades)
	}
	if len(vp.clipped) == 0 || !strings.Contains(fig.Caption, "clipped") || !strings.Contains(fig.Caption, "bottom-0 discrete") {
		t.Errorf("clipped %v, caption %q: want the discrete curve of bottom-0 named as clipped", vp.clipped, fig.Caption)
	}
	// The headline figure too (it shows the same unstable direction).
	hp, hf := headlinePlot(e, &figureData{})
	if hp.p.Y.Max > hp.clipHi*(1+1e-9) {
		t.Errorf("headline y max %g above its clip line %g", hp.p.Y.Max, hp.clipHi)
	}
	if strings.Contains(hf.Caption, "null-0") {
		t.Errorf("headline shows the null direction (round-off variance): %q", hf.Caption)
	}
}

// TestDirectionTable checks the compact table: 3 significant digits in
// every number, the reason in an expandable element, a subspace column
// that shows a prediction only where one exists.
func TestDirectionTable(t *testing.T) {
	e := synthEnsemble("e", 0.1)
	sub := 1.23456789e-5
	e.Directions[0].PredSubspace = &sub
	hw := 0.0123456
	e.Directions[1].CurvatureWindow, e.Directions[1].WindowFlat = &hw, true
	html, err := renderTable(directionTable(e))
	if err != nil {
		t.Fatal(err)
	}
	s := string(html)
	cells := regexp.MustCompile(`<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(s, -1)
	if len(cells) != 4*12 {
		t.Fatalf("%d cells, want 4 rows of 12", len(cells))
	}
	if !strings.Contains(s, ">0.0123 flat<") || strings.Count(s, " flat<") != 1 {
		t.Errorf("the window-flat direction is not marked, or others are")
	}
	number := regexp.MustCompile(`-?[0-9.]+(e-?[0-9]+)?`)
	for _, c := range cells {
		text := c[1]
		if strings.Contains(text, "<details>") {
			continue
		}
		for _, n := range number.FindAllString(text, -1) {
			mant := strings.SplitN(n, "e", 2)[0]
			digits := strings.TrimLeft(strings.NewReplacer(".", "", "-", "").Replace(mant), "0")
			if len(digits) > 3 {
				t.Errorf("cell %q: %s has %d significant digits", text, n, len(digits))
			}
		}
	}
	if !strings.Contains(s, ">1.23e-5<") {
		t.Errorf("subspace prediction 1.23e-5 not in the table")
	}
	if strings.Count(s, "<details>") != 4 || !strings.Contains(s, `<div class="why">because confined`) {
		t.Errorf("the reasons are not in expandable elements")
	}
	if !strings.Contains(s, `data-v="0.123456789"`) {
		t.Errorf("cells do not carry their full value to sort by")
	}
	if got := sig3(123456); got != "1.23e5" {
		t.Errorf("sig3(123456) = %q", got)
	}
}

// TestPageSelfContained writes a report and checks the page: headline
// first, with a figure and one sentence per class; the sort script inline;
// no address outside the report.
func TestPageSelfContained(t *testing.T) {
	r := synthReport(t, synthEnsemble("lr0.1", 0.1))
	out := filepath.Join(t.TempDir(), "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"http://", "https://", `src="//`, `href="//`} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html refers outside the report: %q", bad)
		}
	}
	if !strings.Contains(page, "<script>(function(){") || !strings.Contains(page, "table.sortable") || !strings.Contains(page, `<table class="sortable"`) {
		t.Error("index.html lacks the inline sort script or a sortable table")
	}
	head := strings.Index(page, `src="figures/headline.png"`)
	if head < 0 || head > strings.Index(page, "<h2>Training") {
		t.Fatal("the headline figure is missing or not before the training section")
	}
	if st, err := os.Stat(filepath.Join(out, "figures", "headline.png")); err != nil || st.Size() == 0 {
		t.Errorf("headline.png: %v", err)
	}
	for _, c := range []string{"confined", "diffusive", "unstable", "null"} {
		if !strings.Contains(page, `<li><b class="`+c+`">`+c+`</b>: 1 of 4`) {
			t.Errorf("no headline sentence for %s", c)
		}
	}
	cap := regexp.MustCompile(`headline.png" alt="[^"]*" data-points="(\d+)"><figcaption>([^<]*)`).FindStringSubmatch(page)
	if cap == nil || cap[1] == "0" {
		t.Fatalf("headline figure has no data: %v", cap)
	}
	for _, want := range []string{"top-0 (confined)", "bulk-0 (diffusive)", "bottom-0 (unstable)"} {
		if !strings.Contains(cap[2], want) {
			t.Errorf("headline caption %q lacks the representative %s", cap[2], want)
		}
	}
	if !strings.Contains(page, "data-points=") || strings.Contains(page, `data-points="0"`) {
		t.Error("a figure has no data points, or figures do not say how many")
	}
	if _, err := os.Stat(filepath.Join(out, "figures", "growth-lr0.1-unstable.png")); err != nil {
		t.Error(err)
	}
}

// TestCompare writes the reports of two runs and compares them: one row
// each, the class counts and the theory agreement of each, and an HTML
// page that needs no network.
func TestCompare(t *testing.T) {
	work := t.TempDir()
	var dirs []string
	for i, eta := range []float64{0.1, 0.2} {
		e := synthEnsemble("e", eta)
		if i == 1 {
			e.Directions[1].Class = "undetermined"
			e.Counts = map[string]int{"confined": 1, "undetermined": 1, "unstable": 1, "null": 1}
		}
		r := synthReport(t, e)
		dir := filepath.Join(work, []string{"a", "b"}[i])
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Write(r, filepath.Join(dir, "report")); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	rows, err := CompareRuns(dirs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Eta != 0.1 || rows[1].Eta != 0.2 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].Classes["diffusive"] != 1 || rows[1].Classes["diffusive"] != 0 || rows[1].Classes["undetermined"] != 1 {
		t.Errorf("classes %v, %v", rows[0].Classes, rows[1].Classes)
	}
	// The measured variances are the discrete theory: every prediction
	// but the unstable one (measured 1e-3, theory ~1e60) is inside.
	if a := rows[0].Agree[TheoryDiscrete]; a != [2]int{2, 3} {
		t.Errorf("discrete agreement %v, want 2 of 3", a)
	}
	md := CompareMarkdown(rows)
	if lines := strings.Split(strings.TrimSpace(md), "\n"); len(lines) != 4 || !strings.Contains(lines[2], filepath.Join(work, "a")) {
		t.Errorf("markdown:\n%s", md)
	}
	if !strings.Contains(md, "| 2/3 |") {
		t.Errorf("markdown lacks the agreement 2/3:\n%s", md)
	}
	page, err := CompareHTML(rows)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "http") || !strings.Contains(string(page), "table.sortable") {
		t.Error("compare page refers to the network or lacks the sort script")
	}
	if _, err := CompareRuns([]string{t.TempDir()}, Options{}); err == nil || !strings.Contains(err.Error(), "not an sgdyn run") {
		t.Errorf("comparing a directory that is not a run: %v", err)
	}
}

// TestScanSection checks the learning-rate scan section: a row per
// learning rate with D = late slope / (2 eta) and its interval, the fit's
// exponent with its interval, and the figure.
func TestScanSection(t *testing.T) {
	var ens []*Ensemble
	for _, eta := range []float64{0.05, 0.1, 0.2} {
		e := synthEnsemble(fmt.Sprintf("lr%g", eta), eta)
		for k, d := range e.Directions {
			rate := 1e-12
			cls := analysis.Class(d.Class)
			if d.Class == "diffusive" {
				rate = eta * eta * 3e-3 // eta^2 c: D = eta c / 2
			}
			boot := []float64{0.9 * rate, rate, 1.1 * rate, 0.95 * rate, 1.05 * rate}
			e.Classes = append(e.Classes, analysis.Classification{Direction: k, Class: cls,
				LateSlope: analysis.Interval{Est: rate, Lo: 0.9 * rate, Hi: 1.1 * rate}, SlopeBoot: boot})
		}
		ens = append(ens, e)
	}
	r := synthReport(t, ens...)
	r.Scan = buildScan(ens, 0.9)
	if r.Scan == nil || r.Scan.Fit == nil || r.Scan.Basis != "diffusive" {
		t.Fatalf("scan %+v: want a fit over the diffusive directions", r.Scan)
	}
	out := filepath.Join(t.TempDir(), "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "index.html"))
	page := string(b)
	// Late slope eta^2 c = 7.5e-6 at eta 0.05, its interval the 90%
	// percentiles of the five resamples; D = slope / (2 eta) = eta c / 2.
	if !strings.Contains(page, "<td>7.5e-6 [6.83e-6, 8.18e-6]</td><td>7.5e-5 [6.83e-5, 8.18e-5]</td>") {
		t.Errorf("scan table lacks the late slope 7.5e-6 [6.83e-6, 8.18e-6] and D = 7.5e-5 [6.83e-5, 8.18e-5] at eta 0.05")
	}
	if !strings.Contains(page, "slope 2 [") || !strings.Contains(page, "(theory 2)") {
		t.Errorf("scan section lacks the fitted exponent 2 with its interval")
	}
	if _, err := os.Stat(filepath.Join(out, "figures", "lrscan.png")); err != nil {
		t.Error(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "| lr0.05 | 0.05 | 7.5e-6 [6.83e-6, 8.18e-6] | 7.5e-5 [6.83e-5, 8.18e-5] |") {
		t.Errorf("report.md lacks the scan row of eta 0.05:\n%s", md)
	}
}

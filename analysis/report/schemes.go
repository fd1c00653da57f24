package report

// The sampling-scheme part of the report (THEORY.md section 9): which
// theory applies to each ensemble, and ensembles run under both schemes
// side by side. Kept apart from the rest of the package, which calls it
// through a few hooks: ensembleClassifyOptions and schemeNoiseScale from
// buildEnsemble and directionParams, buildSchemes from Build,
// schemeFigures from Write, and Schemes.HTML, Schemes.Markdown and the
// summary's "schemes" key for the outputs.

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/train"
)

// maxSchemeFigures is the most per-direction scheme figures drawn for one
// group; the table lists every direction.
const maxSchemeFigures = 8

// Schemes is the report's sampling-scheme section.
type Schemes struct {
	Level     float64          `json:"level"`
	Ensembles []SchemeEnsemble `json:"ensembles"`
	Groups    []*SchemeGroup   `json:"groups"`
	// Scans are the learning-rate scans per scheme (the eta exponent of
	// the late slope: 2 per step with replacement by THEORY.md section 3;
	// measured, not predicted, under reshuffling).
	Scans []*SchemeScan `json:"scans"`
}

// SchemeScan is a learning-rate scan within one sampling scheme: the
// ensembles of one reference, direction set, batch and window that differ
// only in eta.
type SchemeScan struct {
	Sampling string   `json:"sampling"`
	Names    []string `json:"ensembles"`
	// Basis is the directions each point is the median late slope of:
	// "flat" (the flat family, whatever their class), else "diffusive"
	// (those classified diffusive in every ensemble of the scan).
	Basis  string               `json:"basis"`
	Points []analysis.ScanPoint `json:"points"`
	// Exponent is the fitted per-step exponent of the late slope in eta,
	// with its interval; nil when the fit failed (Note says why).
	Exponent   *analysis.Interval `json:"per_step_exponent"`
	Theory     string             `json:"theory"`
	Note       string             `json:"note,omitempty"`
	Directions int                `json:"directions"`
	// WindowFlat counts the scan's directions that are window-flat in
	// every one of its ensembles: the ones the eta^2 c law is certified
	// to hold for over the whole window.
	WindowFlat int `json:"window_flat"`
}

// SchemeEnsemble says which theory applies to one ensemble.
type SchemeEnsemble struct {
	Name     string `json:"name"`
	Sampling string `json:"sampling"`
	// Paired: its permutations share random numbers with the
	// with-replacement ensemble of the same settings.
	Paired bool `json:"paired"`
	// TrainExamples is N (0: unknown, from an ensemble recorded before
	// manifests held it and a data kind whose size the config does not
	// give); then StepsPerEpoch and Epochs are unknown too.
	TrainExamples int      `json:"train_examples"`
	StepsPerEpoch int64    `json:"steps_per_epoch"`
	Epochs        *float64 `json:"epochs"`
	// RecursionApplies: THEORY.md sections 2-3 describe it (with
	// replacement, or reshuffled within one epoch).
	RecursionApplies bool   `json:"recursion_applies"`
	Theory           string `json:"theory"`
	// FitCurve is the curve its classes were fitted on (analysis.Rule).
	FitCurve string `json:"fit_curve"`
}

// SchemeGroup is one learning rate and batch from one reference and
// direction set: its with-replacement and reshuffled ensembles (either may
// be missing), compared direction by direction.
type SchemeGroup struct {
	With          string            `json:"with"`
	Without       string            `json:"without"`
	Eta           float64           `json:"eta"`
	Batch         int               `json:"batch"`
	Paired        bool              `json:"paired"`
	StepsPerEpoch int64             `json:"steps_per_epoch"`
	Epochs        *float64          `json:"epochs"`
	Directions    []SchemeDirection `json:"directions"`
	Figures       []*Figure         `json:"-"`
	// SameResamples: both ensembles have the same replicas, so the
	// bootstrap resamples pair replica r of one with replica r of the
	// other (as the common random numbers do).
	SameResamples bool `json:"same_resamples"`
}

// SchemeDirection compares one direction under the two schemes.
type SchemeDirection struct {
	Index        int    `json:"index"`
	Source       string `json:"source"`
	ClassWith    string `json:"class_with"`
	ClassWithout string `json:"class_without"`
	// Late slopes (variance per step) as classified: on every logged step
	// with replacement, on epoch boundaries or one-epoch averages
	// reshuffled over more than one epoch.
	SlopeWith      *float64   `json:"late_slope_with"`
	SlopeWithCI    []*float64 `json:"late_slope_with_ci"`
	SlopeWithout   *float64   `json:"late_slope_without"`
	SlopeWithoutCI []*float64 `json:"late_slope_without_ci"`
	// FlatSlope is eta^2 c with c at the with-replacement noise: the
	// theory's slope with replacement along a flat direction.
	FlatSlope *float64 `json:"flat_slope_with"`
	// Ratio is the reshuffled late slope over the with-replacement one,
	// with its bootstrap interval.
	Ratio   *float64   `json:"ratio"`
	RatioCI []*float64 `json:"ratio_ci"`
	// BridgePeak is the first-order reshuffled variance at mid-epoch of
	// the first epoch; BridgeEpochEnd the first-order growth per epoch end
	// (0 when b divides N).
	BridgePeak     *float64 `json:"bridge_peak"`
	BridgeEpochEnd *float64 `json:"bridge_slope"`
}

// reshuffled reports whether the manifest's ensemble was sampled with
// epoch reshuffling.
func reshuffled(m *train.EnsembleManifest) bool {
	return m.Sampling == string(analysis.WithoutReplacement)
}

// trainExamples returns N for an ensemble: the manifest's, else what the
// run's config implies, else 0.
func trainExamples(r *Report, m *train.EnsembleManifest) int {
	if m.TrainExamples > 0 {
		return m.TrainExamples
	}
	d := r.Config.Data
	n := 0
	switch d.Kind {
	case "synthetic":
		n = d.Synthetic.N - int(float64(d.Synthetic.N)*d.ValFraction)
	case "cifar10":
		n = 50000
	}
	if d.Limit > 0 && d.Limit < n {
		n = d.Limit
	}
	return n
}

// ensembleClassifyOptions are the classification options of an ensemble:
// epoch-aware fits for reshuffled ones (analysis.Rule).
func ensembleClassifyOptions(r *Report, m *train.EnsembleManifest) analysis.ClassifyOptions {
	if !reshuffled(m) {
		return analysis.ClassifyOptions{}
	}
	return analysis.ClassifyOptions{StepsPerEpoch: analysis.StepsPerEpoch(trainExamples(r, m), m.Batch)}
}

// surveyNoise returns the batch size and scheme the survey measured the
// noise at, from its spectrum.json settings ("" when unknown).
func surveyNoise(run string) (int, string) {
	b, err := os.ReadFile(filepath.Join(run, "hessian", "spectrum.json"))
	if err != nil {
		return 0, ""
	}
	var raw struct {
		Settings struct {
			BatchSize int
			Sampling  string
		} `json:"settings"`
	}
	if json.Unmarshal(b, &raw) != nil {
		return 0, ""
	}
	return raw.Settings.BatchSize, raw.Settings.Sampling
}

// schemeNoiseScale returns the factor from the survey's c and s2 to the
// ensemble's: NoiseFactor(N, b_ensemble, scheme) / NoiseFactor(N, b_survey,
// survey scheme), exact for both schemes' one-step noise. When N or the
// survey's scheme is unknown it returns batchScale, the 1/b rescaling.
func schemeNoiseScale(r *Report, m *train.EnsembleManifest, batchScale float64) float64 {
	n := trainExamples(r, m)
	sb, ss := surveyNoise(r.Run)
	if n == 0 || sb == 0 || ss == "" {
		return batchScale
	}
	fe, err1 := analysis.NoiseFactor(n, m.Batch, analysis.Sampling(m.Sampling))
	fs, err2 := analysis.NoiseFactor(n, sb, analysis.Sampling(ss))
	if err1 != nil || err2 != nil || fs == 0 {
		return batchScale
	}
	return fe / fs
}

// buildSchemes computes the section, adds the reshuffling notes, and gives
// reshuffled ensembles' directions their first-order curve.
func buildSchemes(r *Report) *Schemes {
	if len(r.Ensembles) == 0 {
		return nil
	}
	s := &Schemes{Level: r.Level}
	for _, e := range r.Ensembles {
		m := &e.Manifest
		se := SchemeEnsemble{Name: e.Name, Sampling: m.Sampling, Paired: m.Paired, TrainExamples: trainExamples(r, m), FitCurve: analysis.FitLogged}
		if len(e.Classes) > 0 {
			se.FitCurve = e.Classes[0].Curve
		}
		th, err := analysis.TheoryFor(analysis.Sampling(m.Sampling), se.TrainExamples, m.Batch, m.Steps)
		if err != nil {
			se.RecursionApplies = !reshuffled(m)
			se.Theory = "training-set size unknown (the ensemble predates train_examples in its manifest): epochs not known"
			if reshuffled(m) {
				se.Theory += "; epoch reshuffling: sections 2-3 hold only within a fraction of an epoch"
				r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s is reshuffled, but its training-set size is unknown: the epochs it spans, and so whether the with-replacement theory may be compared with it, are unknown", e.Name))
			}
		} else {
			se.StepsPerEpoch, se.Epochs, se.RecursionApplies, se.Theory = th.StepsPerEpoch, num(th.Epochs), th.Recursion, th.Text
			if reshuffled(m) && !th.Recursion {
				r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s is reshuffled over %.3g epochs: its discrete, Langevin and eta^2 c predictions are the with-replacement theory, shown for comparison only (THEORY.md section 9); its first-order prediction is the epoch bridge and its long-time slope is measured", e.Name, th.Epochs))
			}
			if reshuffled(m) {
				addBridgeCurves(e, se.TrainExamples)
			}
		}
		s.Ensembles = append(s.Ensembles, se)
	}
	s.Groups = schemeGroups(r, s)
	s.Scans = schemeScans(r)
	return s
}

// schemeScans fits the eta exponent of the late slope within each
// sampling scheme, for every set of at least two ensembles that differ
// only in eta.
func schemeScans(r *Report) []*SchemeScan {
	type key struct {
		ref, dirs, sampling string
		batch               int
		steps               int64
	}
	groups := map[key][]*Ensemble{}
	var order []key
	for _, e := range r.Ensembles {
		m := e.Manifest
		if m.Surrogate.Kind != "" {
			continue
		}
		k := key{m.ReferenceSHA256, m.DirectionsSHA256, m.Sampling, m.Batch, m.Steps}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var out []*SchemeScan
	for _, k := range order {
		es := groups[k]
		if len(es) < 2 {
			continue
		}
		sort.Slice(es, func(i, j int) bool { return es[i].Manifest.LR < es[j].Manifest.LR })
		nd := len(es[0].Directions)
		use := make([]bool, nd)
		basis := "flat"
		for i, d := range es[0].Directions {
			fam, _ := sourceFamily(d.Source)
			use[i] = fam == "flat" && d.Class != string(analysis.Null)
		}
		if !slicesAny(use) {
			basis = "diffusive"
			for i := range use {
				use[i] = true
				for _, e := range es {
					if i >= len(e.Directions) || e.Directions[i].Class != string(analysis.Diffusive) {
						use[i] = false
					}
				}
			}
		}
		sc := &SchemeScan{Sampling: k.sampling, Basis: basis, Theory: "2 per step (THEORY.md section 3)"}
		if k.sampling == string(analysis.WithoutReplacement) {
			sc.Theory = "none: measured (THEORY.md section 9 offers 4 per step as a heuristic)"
		}
		for i, u := range use {
			if !u {
				continue
			}
			sc.Directions++
			flat := true
			for _, e := range es {
				flat = flat && i < len(e.Directions) && e.Directions[i].WindowFlat
			}
			if flat {
				sc.WindowFlat++
			}
		}
		for _, e := range es {
			if len(e.Classes) != nd {
				continue
			}
			p, err := analysis.MedianRate(e.Manifest.LR, e.Classes, use, r.Level)
			if err != nil {
				sc.Note = err.Error()
				continue
			}
			sc.Points = append(sc.Points, p)
			sc.Names = append(sc.Names, e.Name)
		}
		if fit, err := analysis.FitScan(sc.Points, r.Level); err == nil {
			iv := fit.PerStep.Slope
			sc.Exponent = &iv
		} else if sc.Note == "" {
			sc.Note = err.Error()
		}
		out = append(out, sc)
	}
	return out
}

func slicesAny(v []bool) bool {
	for _, x := range v {
		if x {
			return true
		}
	}
	return false
}

// addBridgeCurves gives each direction of a reshuffled ensemble with
// theory parameters its first-order reshuffled curve under TheoryBridge in
// its Curves, evaluated at the ensemble's logged steps.
func addBridgeCurves(e *Ensemble, n int) {
	m := e.Manifest
	f, err := analysis.NoiseFactor(n, m.Batch, analysis.WithoutReplacement)
	if err != nil || f == 0 {
		return
	}
	for k := range e.Directions {
		d := &e.Directions[k]
		if d.params == nil {
			continue
		}
		v, err := analysis.ReshuffledVariance(m.LR, d.params.Lambda, d.params.C/f, n, m.Batch, e.Steps)
		if err != nil {
			continue
		}
		at := map[int64]float64{}
		for i, t := range e.Steps {
			at[t] = v[i]
		}
		if d.Curves == nil {
			d.Curves = map[string]Curve{}
		}
		sigma2 := d.params.C / f
		d.Curves[TheoryBridge] = func(t float64) float64 {
			if x, ok := at[int64(t)]; ok && float64(int64(t)) == t {
				return x
			}
			if d.params.Lambda == 0 {
				return analysis.BridgeVariance(m.LR, sigma2, n, m.Batch, t)
			}
			return math.NaN()
		}
	}
}

// TheoryBridge names the first-order reshuffling prediction (per-example
// gradients fixed, THEORY.md section 9) in Direction.Curves.
const TheoryBridge = "reshuffled first order"

// schemeGroups pairs ensembles that differ only in the sampling scheme,
// and gives every reshuffled ensemble without a partner a group of its own.
func schemeGroups(r *Report, s *Schemes) []*SchemeGroup {
	type key struct {
		ref, dirs string
		eta       float64
		batch     int
		steps     int64
		seed      uint64
	}
	byKey := map[key][2]*Ensemble{}
	var order []key
	for _, e := range r.Ensembles {
		m := e.Manifest
		if m.Surrogate.Kind != "" {
			continue // a surrogate is not a sampling scheme
		}
		k := key{m.ReferenceSHA256, m.DirectionsSHA256, m.LR, m.Batch, m.Steps, m.Seed}
		p, seen := byKey[k]
		if !seen {
			order = append(order, k)
		}
		i := 0
		if reshuffled(&m) {
			i = 1
		}
		if p[i] == nil {
			p[i] = e
		}
		byKey[k] = p
	}
	info := map[string]SchemeEnsemble{}
	for _, se := range s.Ensembles {
		info[se.Name] = se
	}
	var out []*SchemeGroup
	for _, k := range order {
		p := byKey[k]
		with, without := p[0], p[1]
		if without == nil {
			continue // with replacement alone: the rest of the report covers it
		}
		g := &SchemeGroup{Without: without.Name, Eta: k.eta, Batch: k.batch, Paired: without.Manifest.Paired,
			StepsPerEpoch: info[without.Name].StepsPerEpoch, Epochs: info[without.Name].Epochs}
		if with != nil {
			g.With = with.Name
			g.SameResamples = with.Manifest.Replicas == without.Manifest.Replicas
		}
		n := info[without.Name].TrainExamples
		for kd, dw := range without.Directions {
			sd := SchemeDirection{Index: kd, Source: dw.Source, ClassWithout: dw.Class, SlopeWithout: dw.LateSlope, SlopeWithoutCI: dw.LateSlopeCI}
			if dw.params != nil && n > 0 {
				if f, err := analysis.NoiseFactor(n, k.batch, analysis.WithoutReplacement); err == nil && f > 0 {
					sigma2 := dw.params.C / f
					sd.BridgePeak = num(analysis.BridgeVariance(k.eta, sigma2, n, k.batch, float64(analysis.StepsPerEpoch(n, k.batch)/2)))
					sd.BridgeEpochEnd = num(analysis.BridgeSlope(k.eta, sigma2, n, k.batch))
				}
			}
			if with != nil && kd < len(with.Directions) {
				dv := with.Directions[kd]
				sd.ClassWith, sd.SlopeWith, sd.SlopeWithCI, sd.FlatSlope = dv.Class, dv.LateSlope, dv.LateSlopeCI, dv.FlatSlope
				if sd.SlopeWith != nil && sd.SlopeWithout != nil {
					sd.Ratio = num(*sd.SlopeWithout / *sd.SlopeWith)
					sd.RatioCI = ratioCI(without.Classes[kd].SlopeBoot, with.Classes[kd].SlopeBoot, r.Level)
				}
			}
			g.Directions = append(g.Directions, sd)
		}
		out = append(out, g)
	}
	return out
}

// ratioCI is the equal-tailed percentile interval of top[b]/den[b] over
// bootstrap resamples, or nulls when a resample has no finite ratio.
func ratioCI(top, den []float64, level float64) []*float64 {
	if len(top) == 0 || len(top) != len(den) {
		return []*float64{nil, nil}
	}
	q := make([]float64, len(top))
	for b := range top {
		q[b] = top[b] / den[b]
		if math.IsNaN(q[b]) || math.IsInf(q[b], 0) {
			return []*float64{nil, nil}
		}
	}
	sort.Float64s(q)
	at := func(p float64) *float64 {
		x := p * float64(len(q)-1)
		i := int(x)
		if i >= len(q)-1 {
			return num(q[len(q)-1])
		}
		return num(q[i] + (x-float64(i))*(q[i+1]-q[i]))
	}
	a := (1 - level) / 2
	return []*float64{at(a), at(1 - a)}
}

// schemeFigures draws, for each group, up to maxSchemeFigures directions:
// both schemes' measured variance with bootstrap bands on linear axes,
// the with-replacement discrete prediction, the reshuffled first-order
// (bridge) prediction, and the epoch boundaries. add registers a figure.
func schemeFigures(r *Report, dir string, fd *figureData, add func(*Figure, error) error) error {
	if r.Schemes == nil {
		return nil
	}
	byName := map[string]*Ensemble{}
	for _, e := range r.Ensembles {
		byName[e.Name] = e
	}
	for gi, g := range r.Schemes.Groups {
		without := byName[g.Without]
		with := byName[g.With] // nil when alone
		for _, k := range schemePicks(g) {
			f, err := schemeFigure(gi, g, k, with, without, dir, fd)
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

// schemePicks orders a group's directions for figures: flat family first,
// then those diffusive under either scheme, then the rest.
func schemePicks(g *SchemeGroup) []int {
	rank := func(d SchemeDirection) int {
		fam, _ := sourceFamily(d.Source)
		switch {
		case d.ClassWith == string(analysis.Null) || d.ClassWithout == string(analysis.Null):
			return 3
		case fam == "flat":
			return 0
		case d.ClassWith == string(analysis.Diffusive) || d.ClassWithout == string(analysis.Diffusive):
			return 1
		}
		return 2
	}
	idx := make([]int, len(g.Directions))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rank(g.Directions[idx[a]]) < rank(g.Directions[idx[b]]) })
	var out []int
	for _, i := range idx {
		if rank(g.Directions[i]) < 3 && len(out) < maxSchemeFigures {
			out = append(out, i)
		}
	}
	return out
}

func schemeFigure(gi int, g *SchemeGroup, k int, with, without *Ensemble, dir string, fd *figureData) (*Figure, error) {
	sd := g.Directions[k]
	name := fmt.Sprintf("schemes-%d-%s", gi, sd.Source)
	if sd.Source == "" {
		name = fmt.Sprintf("schemes-%d-d%d", gi, k)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: with vs without replacement, eta %.3g, batch %d", sd.Source, g.Eta, g.Batch)
	p.X.Label.Text = "step t"
	p.Y.Label.Text = "ensemble variance of u . (theta_t - theta_0)"
	tMax, yMax := 0.0, 0.0
	type series struct {
		e     *Ensemble
		label string
		col   color.Color
	}
	var all []series
	if with != nil {
		all = append(all, series{with, "with replacement", plotutil.Color(0)})
	}
	all = append(all, series{without, "epoch reshuffling", plotutil.Color(1)})
	for _, s := range all {
		if k >= len(s.e.Growth.Dirs) {
			continue
		}
		gr := s.e.Growth.Dirs[k]
		var line, hi, lo plotter.XYs
		for ti, t := range s.e.Steps {
			if math.IsNaN(gr.Var[ti]) {
				continue
			}
			x := float64(t)
			line = append(line, plotter.XY{X: x, Y: gr.Var[ti]})
			hi = append(hi, plotter.XY{X: x, Y: gr.VarHi[ti]})
			lo = append(lo, plotter.XY{X: x, Y: gr.VarLo[ti]})
			fd.add(name, s.label+" measured", x, gr.Var[ti], gr.VarLo[ti], gr.VarHi[ti])
			tMax = math.Max(tMax, x)
			if !math.IsNaN(gr.VarHi[ti]) && !math.IsInf(gr.VarHi[ti], 0) {
				yMax = math.Max(yMax, gr.VarHi[ti])
			}
		}
		if len(line) < 2 {
			continue
		}
		band := append(plotter.XYs(nil), hi...)
		for j := len(lo) - 1; j >= 0; j-- {
			band = append(band, lo[j])
		}
		if poly, err := plotter.NewPolygon(band); err == nil {
			poly.Color = withAlpha(s.col, 40)
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		if l, err := plotter.NewLine(line); err == nil {
			l.Color, l.Width = s.col, vg.Points(1.4)
			p.Add(l)
			p.Legend.Add(s.label+" (measured)", l)
		}
	}
	if tMax == 0 {
		return nil, nil
	}
	theory := func(e *Ensemble, th, label string, col color.Color, dashes []vg.Length) {
		if e == nil || k >= len(e.Directions) || e.Directions[k].Curves[th] == nil {
			return
		}
		c := e.Directions[k].Curves[th]
		var xy plotter.XYs
		for _, t := range e.Steps {
			v := c(float64(t))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			fd.add(name, label, float64(t), v, math.NaN(), math.NaN())
			if v > 4*yMax { // keep the measurements readable
				continue
			}
			xy = append(xy, plotter.XY{X: float64(t), Y: v})
		}
		if l, err := plotter.NewLine(xy); err == nil && len(xy) > 1 {
			l.Color, l.Dashes = col, dashes
			p.Add(l)
			p.Legend.Add(label, l)
		}
	}
	theory(with, TheoryDiscrete, "with: discrete theory (eta^2 c t when flat)", plotutil.Color(0), []vg.Length{vg.Points(6), vg.Points(3)})
	theory(without, TheoryBridge, "reshuffled: first order (epoch bridge)", plotutil.Color(1), []vg.Length{vg.Points(2), vg.Points(2)})
	marked := ""
	if spe := g.StepsPerEpoch; spe > 0 {
		epochs := int64(tMax) / spe
		every := max(int64(1), (epochs+39)/40)
		for ep := every; ep <= epochs; ep += every {
			x := float64(ep * spe)
			if l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: yMax}}); err == nil {
				l.Color, l.Width = color.Gray{185}, vg.Points(0.5)
				p.Add(l)
			}
		}
		marked = fmt.Sprintf(" Grey verticals: epoch boundaries (%d steps per epoch", spe)
		if every > 1 {
			marked += fmt.Sprintf(", every %d-th marked", every)
		}
		marked += ")."
	}
	p.Legend.Top, p.Legend.Left = true, true
	cap := "Solid: measured ensemble variance of both schemes with bootstrap bands, replica r of both drawn from the same stream. Dashed: the with-replacement discrete theory (THEORY.md section 3). Dotted: the first-order prediction under epoch reshuffling, the bridge of section 9 (returns at each epoch end); the reshuffled long-time growth is second order and measured only." + marked
	f := &Figure{Name: name, Title: fmt.Sprintf("%s: sampling schemes", sd.Source), Caption: cap}
	return f, save(p, dir, name)
}

// HTML renders the section for index.html (empty for a nil section).
func (s *Schemes) HTML() template.HTML {
	if s == nil {
		return ""
	}
	var b strings.Builder
	e := html.EscapeString
	b.WriteString("<h2>Sampling schemes</h2>\n<p>Which theory describes each ensemble. The recursions of THEORY.md sections 2-3 (discrete, Langevin) assume independent batches: true with replacement, and under epoch reshuffling only within a fraction of an epoch (section 9).</p>\n")
	b.WriteString(`<table><tr><th class="l">ensemble</th><th class="l">sampling</th><th>N</th><th>steps per epoch</th><th>epochs spanned</th><th class="l">classes fitted on</th><th class="l">theory that applies</th></tr>` + "\n")
	for _, x := range s.Ensembles {
		samp := x.Sampling
		if x.Paired {
			samp += " (paired)"
		}
		fmt.Fprintf(&b, `<tr><td class="l">%s</td><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="l">%s</td><td class="l">%s</td></tr>`+"\n",
			e(x.Name), e(samp), intText(x.TrainExamples), intText(int(x.StepsPerEpoch)), f(x.Epochs), e(x.FitCurve), e(x.Theory))
	}
	b.WriteString("</table>\n")
	for _, g := range s.Groups {
		b.WriteString(groupHTML(g, s.Level))
	}
	if len(s.Scans) > 0 {
		fmt.Fprintf(&b, "<h3>Learning-rate exponent per scheme</h3>\n<p>Fit of ln(median late slope) against ln eta within each scheme (%g%% intervals).</p>\n", 100*s.Level)
		b.WriteString(`<table><tr><th class="l">sampling</th><th class="l">ensembles</th><th class="l">directions</th><th>per-step exponent</th><th>CI</th><th class="l">theory</th><th class="l">note</th></tr>` + "\n")
		for _, sc := range s.Scans {
			est, ciT := "-", "-"
			if sc.Exponent != nil {
				est, ciT = g4(sc.Exponent.Est), "["+g4(sc.Exponent.Lo)+", "+g4(sc.Exponent.Hi)+"]"
			}
			fmt.Fprintf(&b, `<tr><td class="l">%s</td><td class="l">%s</td><td class="l">%d %s (%d window-flat in every ensemble)</td><td>%s</td><td>%s</td><td class="l">%s</td><td class="l">%s</td></tr>`+"\n",
				html.EscapeString(sc.Sampling), html.EscapeString(strings.Join(sc.Names, ", ")), sc.Directions, sc.Basis, sc.WindowFlat, est, ciT, html.EscapeString(sc.Theory), html.EscapeString(sc.Note))
		}
		b.WriteString("</table>\n")
	}
	return template.HTML(b.String())
}

func intText(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func groupHTML(g *SchemeGroup, level float64) string {
	var b strings.Builder
	e := html.EscapeString
	if g.With == "" {
		fmt.Fprintf(&b, "<h3>%s (epoch reshuffling, no with-replacement partner)</h3>\n", e(g.Without))
	} else {
		fmt.Fprintf(&b, "<h3>%s vs %s</h3>\n", e(g.With), e(g.Without))
	}
	fmt.Fprintf(&b, "<p>eta %g, batch %d; the window spans %s epochs.", g.Eta, g.Batch, f(g.Epochs))
	if g.Paired {
		b.WriteString(" Common random numbers: replica r of both schemes draws from one stream (the permutations are built from the with-replacement draws).")
	}
	if g.With != "" {
		fmt.Fprintf(&b, " Ratio: reshuffled late slope over the with-replacement one, %g%% bootstrap interval", 100*level)
		if g.SameResamples {
			b.WriteString(" (the same replica resamples in both, paired)")
		}
		b.WriteString(".")
	}
	b.WriteString("</p>\n")
	b.WriteString(`<table><tr><th>#</th><th class="l">source</th><th class="l">class with</th><th>late slope with</th><th>CI</th><th>&eta;&sup2;c</th><th class="l">class reshuffled</th><th>late slope reshuffled</th><th>CI</th><th>ratio</th><th>CI</th><th>bridge peak (1st order)</th></tr>` + "\n")
	for _, d := range g.Directions {
		fmt.Fprintf(&b, `<tr><td>%d</td><td class="l">%s</td><td class="l %s">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="l %s">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`+"\n",
			d.Index, e(d.Source), e(d.ClassWith), e(dash(d.ClassWith)), f(d.SlopeWith), ciText(d.SlopeWithCI), f(d.FlatSlope),
			e(d.ClassWithout), e(d.ClassWithout), f(d.SlopeWithout), ciText(d.SlopeWithoutCI), f(d.Ratio), ciText(d.RatioCI), f(d.BridgePeak))
	}
	b.WriteString("</table>\n")
	for _, fg := range g.Figures {
		fmt.Fprintf(&b, `<figure><img src="figures/%s.png" alt="%s" data-points="%d"><figcaption>%s</figcaption></figure>`+"\n", e(fg.Name), e(fg.Title), fg.Points, e(fg.Caption))
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Markdown renders the section for report.md (empty for a nil section).
func (s *Schemes) Markdown() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	esc := func(x string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(x) }
	b.WriteString("## Sampling schemes\n\n| ensemble | sampling | N | steps/epoch | epochs | fitted on | theory that applies |\n|---|---|---:|---:|---:|---|---|\n")
	for _, x := range s.Ensembles {
		samp := x.Sampling
		if x.Paired {
			samp += " (paired)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", esc(x.Name), samp, intText(x.TrainExamples), intText(int(x.StepsPerEpoch)), f(x.Epochs), x.FitCurve, esc(x.Theory))
	}
	b.WriteString("\n")
	for _, g := range s.Groups {
		if g.With == "" {
			fmt.Fprintf(&b, "### %s (reshuffled, alone)\n\n", esc(g.Without))
		} else {
			fmt.Fprintf(&b, "### %s vs %s\n\n", esc(g.With), esc(g.Without))
		}
		fmt.Fprintf(&b, "eta %g, batch %d, %s epochs; paired streams: %v. Ratio = reshuffled late slope / with-replacement late slope (%g%% bootstrap interval).\n\n", g.Eta, g.Batch, f(g.Epochs), g.Paired, 100*s.Level)
		b.WriteString("| # | source | class with | late slope with | CI | η²c | class reshuffled | late slope reshuffled | CI | ratio | CI |\n|---:|---|---|---:|---|---:|---|---:|---|---:|---|\n")
		for _, d := range g.Directions {
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", d.Index, esc(d.Source), dash(d.ClassWith), f(d.SlopeWith), ciText(d.SlopeWithCI),
				f(d.FlatSlope), d.ClassWithout, f(d.SlopeWithout), ciText(d.SlopeWithoutCI), f(d.Ratio), ciText(d.RatioCI))
		}
		b.WriteString("\n")
		for _, fg := range g.Figures {
			fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n*%s*\n\n", fg.Title, fg.Name, fg.Caption)
		}
	}
	if len(s.Scans) > 0 {
		b.WriteString("### Learning-rate exponent per scheme\n\n| sampling | ensembles | directions | per-step exponent | CI | theory |\n|---|---|---|---:|---|---|\n")
		for _, sc := range s.Scans {
			est, ciT := "-", "-"
			if sc.Exponent != nil {
				est, ciT = g4(sc.Exponent.Est), "["+g4(sc.Exponent.Lo)+", "+g4(sc.Exponent.Hi)+"]"
			}
			fmt.Fprintf(&b, "| %s | %s | %d %s (%d window-flat in every ensemble) | %s | %s | %s |\n", sc.Sampling, esc(strings.Join(sc.Names, ", ")), sc.Directions, sc.Basis, sc.WindowFlat, est, ciT, esc(sc.Theory))
		}
		b.WriteString("\n")
	}
	return b.String()
}

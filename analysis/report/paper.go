package report

// The "Paper protocol" part of the report: the paper's own metrics
// (paper-protocols.md: EXP2, EXP5-LR, EXP14) computed on the paper's
// direction sets, next to sgdyn's analysis of the same ensembles. It is
// kept apart from the rest of the package and called through hooks:
// buildPaper from Build, PaperSection.HTML and Markdown from Write, and
// the summary's "paper" key.

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/analysis/paper"
	"github.com/sgdyn/sgdyn/probe"
)

// The direction buckets of the section, by source family.
const (
	bucketPaperFlat  = "paper flat (smallest |λ|)" // smallest-i
	bucketPaperSharp = "paper sharp (top-i)"       // top-i
	bucketNegative   = "largest |λ|, λ < 0 (bottom-i)"
	bucketFlat       = "window-flat (flat-i)"   // sgdyn's genuine flat directions
	bucketNull       = "null controls (null-i)" // null-i
)

var bucketPrefixes = []struct{ name, prefix string }{
	{bucketPaperFlat, "smallest-"}, {bucketPaperSharp, "top-"}, {bucketNegative, "bottom-"}, {bucketFlat, "flat-"}, {bucketNull, "null-"},
}

// PaperSection is the paper-protocol section.
type PaperSection struct {
	Level        float64 `json:"level"`
	Permutations int     `json:"permutations"`
	// TopAbs and Smallest are the survey's paper direction sets: the TopAbs
	// largest-|lambda| eigenvectors (top-i, bottom-i) and the Smallest
	// smallest-|lambda| ones (smallest-i).
	TopAbs   int `json:"top_abs"`
	Smallest int `json:"smallest"`
	// MedianC is the median c over every eigenvector of the dense Hessian
	// (at the survey's batch size), the reference of the null rule.
	MedianC float64 `json:"median_c"`
	// FlatNulls checks the paper's flat bucket for symmetry nulls, and
	// Flat gives the same statistics for sgdyn's window-flat directions.
	FlatNulls *paper.NullCheck `json:"paper_flat_nulls,omitempty"`
	Flat      *paper.NullCheck `json:"window_flat_noise,omitempty"`
	// GradNorm is the reference point's gradient norm: the paper's
	// reference points are not critical, so drift is reported.
	GradNorm  float64          `json:"grad_norm"`
	Ensembles []*PaperEnsemble `json:"ensembles"`
	Scans     []*PaperScan     `json:"scans,omitempty"`
	Notes     []string         `json:"notes,omitempty"`
}

// PaperEnsemble is the section's numbers for one ensemble.
type PaperEnsemble struct {
	Name      string  `json:"name"`
	Eta       float64 `json:"eta"`
	Batch     int     `json:"batch"`
	Replicas  int     `json:"replicas"`
	Steps     int64   `json:"steps"`
	Surrogate string  `json:"surrogate,omitempty"`
	// FinalStep is the step the EXP2 variances are measured at.
	FinalStep int64 `json:"final_step"`
	// EXP2 compares the variances over the top-i and bottom-i directions
	// with each theory's prediction (nil without that set). EXP2Other
	// splits that set by the sign of lambda (the paper's |lambda| for
	// negative eigenvalues is not a prediction of anything) and adds the
	// random bulk-i directions, as the paper also does (their Rayleigh
	// quotients are averages no mode has, so the diagonal theories are not
	// predictions there: THEORY.md section 6).
	EXP2      *PaperEXP2   `json:"exp2,omitempty"`
	EXP2Other []*PaperEXP2 `json:"exp2_other,omitempty"`
	// LateTimes are the paper's late-slope times for this logging:
	// 320, 360, 400 (EXP5-LR) or the last 7 logged steps (EXP14).
	LateTimes []int64       `json:"late_times"`
	Buckets   []PaperBucket `json:"buckets"`
	// Drift is drift beside variance at FinalStep for every direction of
	// the paper's sets and sgdyn's flat ones.
	Drift []PaperDrift `json:"drift"`
}

// PaperEXP2 is the EXP2 agreement over one direction set.
type PaperEXP2 struct {
	Set        string           `json:"set"`
	Directions int              `json:"directions"`
	Negative   int              `json:"negative_lambda"`
	MaxEtaLam  float64          `json:"max_eta_abs_lambda"`
	Theories   []PaperAgreement `json:"theories"`
}

// PaperAgreement is one theory's EXP2 metrics, with bootstrap intervals
// over replicas (sgdyn's addition) when they could be computed.
type PaperAgreement struct {
	Theory string `json:"theory"`
	paper.Agreement
	CI    *paper.AgreementCI `json:"ci,omitempty"`
	Error string             `json:"error,omitempty"`
}

// PaperBucket is one bucket's late growth: the paper's bucket-mean slope
// over LateTimes, the same with a bootstrap interval, and sgdyn's median
// late slope over its own late window (analysis.Rule) with its interval.
type PaperBucket struct {
	Name       string         `json:"name"`
	Directions int            `json:"directions"`
	Indices    []int          `json:"indices"`
	PaperSlope *float64       `json:"paper_slope"`
	SlopeCI    []*float64     `json:"paper_slope_ci"`
	Median     *float64       `json:"sgdyn_median_slope"`
	MedianCI   []*float64     `json:"sgdyn_median_slope_ci"`
	FlatSlope  *float64       `json:"pred_flat_slope"` // mean eta^2 c over the bucket
	MeanC      *float64       `json:"mean_c"`
	Nulls      int            `json:"nulls"` // flagged null by the survey
	Classes    map[string]int `json:"classes"`
	VarFinal   *float64       `json:"mean_var_final"`
	DriftRatio *float64       `json:"median_drift2_over_var"`
	// rate is sgdyn's median late slope with its interval, for the scans.
	rate *analysis.ScanPoint
}

// PaperDrift is one direction's drift beside its variance.
type PaperDrift struct {
	Source   string   `json:"source"`
	Drift    *float64 `json:"drift"`
	Variance *float64 `json:"variance"`
	Ratio    *float64 `json:"drift2_over_var"`
}

// PaperScan is the paper's correlations over SGD ensembles of one
// reference and window, and sgdyn's log-log fits of the same growth.
type PaperScan struct {
	Names []string `json:"ensembles"`
	// RFlatEta is the paper's Pearson r(eta, flat-bucket slope) on a
	// linear scale, and RFlatInvBatch r(1/batch, flat slope) (EXP14, when
	// the batch varies); RWindowFlatEta is r(eta, slope) for sgdyn's
	// window-flat bucket.
	RFlatEta       *float64 `json:"r_eta_paper_flat"`
	RFlatInvBatch  *float64 `json:"r_inv_batch_paper_flat,omitempty"`
	RWindowFlatEta *float64 `json:"r_eta_window_flat"`
	// Fits are sgdyn's log-log fits of the median late slope against eta
	// (one per batch, theory exponent 2 per step) and against 1/batch (one
	// per eta, theory 1), per bucket.
	Fits []PaperFit `json:"fits"`
}

// PaperFit is one log-log fit of a bucket's growth.
type PaperFit struct {
	Bucket   string     `json:"bucket"`
	Against  string     `json:"against"` // "eta" or "1/batch"
	Fixed    string     `json:"fixed"`   // the parameter held fixed, e.g. "batch 64"
	Points   int        `json:"points"`
	Exponent *float64   `json:"exponent"`
	CI       []*float64 `json:"exponent_ci"`
	Theory   float64    `json:"theory"`
	Error    string     `json:"error,omitempty"`
}

// paperSurvey is what the section reads from hessian/spectrum.json beyond
// the report's Survey.
type paperSurvey struct {
	Dense *struct {
		NullMedian float64 `json:"null_median_c"`
	} `json:"dense"`
	Settings struct {
		TopAbs, Smallest int
		NullTol          float64
	} `json:"settings"`
}

func readPaperSurvey(run string) (paperSurvey, error) {
	var ps paperSurvey
	b, err := os.ReadFile(filepath.Join(run, "hessian", "spectrum.json"))
	if err != nil {
		return ps, err
	}
	return ps, json.Unmarshal(b, &ps)
}

// buildPaper computes the section, or nil when the run's directions do not
// include the paper's sets.
func buildPaper(r *Report, o Options) *PaperSection {
	if r.Survey == nil || len(r.Ensembles) == 0 {
		return nil
	}
	ps, err := readPaperSurvey(r.Run)
	if err != nil {
		return nil
	}
	hasSmallest := slices.ContainsFunc(r.Survey.Directions, func(d probe.Direction) bool { return strings.HasPrefix(d.Source, "smallest-") })
	if ps.Settings.TopAbs <= 0 && !hasSmallest {
		return nil
	}
	s := &PaperSection{Level: o.Level, Permutations: paper.DefaultPermutations, TopAbs: ps.Settings.TopAbs, Smallest: ps.Settings.Smallest,
		GradNorm: r.Survey.GradNorm}
	if ps.Dense != nil {
		s.MedianC = ps.Dense.NullMedian
	}
	s.FlatNulls = surveyNullCheck(s, r, "smallest-", ps.Settings.NullTol)
	s.Flat = surveyNullCheck(s, r, "flat-", ps.Settings.NullTol)
	for _, e := range r.Ensembles {
		if pe := paperEnsemble(s, r, e, o); pe != nil {
			s.Ensembles = append(s.Ensembles, pe)
		}
	}
	s.Scans = paperScans(s, r, o.Level)
	return s
}

// surveyNullCheck applies the null rule to the survey's c of one source
// family (nil when the family is absent or there is no median).
func surveyNullCheck(s *PaperSection, r *Report, prefix string, tol float64) *paper.NullCheck {
	var c []float64
	for _, d := range r.Survey.Directions {
		if strings.HasPrefix(d.Source, prefix) {
			c = append(c, d.C)
		}
	}
	if len(c) == 0 {
		return nil
	}
	nc, err := paper.CheckNulls(c, s.MedianC, tol)
	if err != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("%s directions: %v", prefix, err))
		return nil
	}
	return &nc
}

// paperLateTimes are the paper's late-slope times for a logging: EXP5-LR's
// 320, 360, 400 when the window ends at 400 and logs them, else EXP14's
// last 7 logged steps.
func paperLateTimes(steps []int64) []int64 {
	if n := len(steps); n > 0 && steps[n-1] == 400 && slices.Contains(steps, 320) && slices.Contains(steps, 360) {
		return []int64{320, 360, 400}
	}
	return paper.LastTimes(steps, 7)
}

func paperEnsemble(s *PaperSection, r *Report, e *Ensemble, o Options) *PaperEnsemble {
	m := e.Manifest
	pe := &PaperEnsemble{Name: e.Name, Eta: m.LR, Batch: m.Batch, Replicas: m.Replicas, Steps: m.Steps, Surrogate: m.Surrogate.Kind}
	if len(e.Directions) == 0 || e.Directions[0].params == nil {
		s.Notes = append(s.Notes, fmt.Sprintf("ensemble %s: no theory parameters for its directions, left out", e.Name))
		return nil
	}
	pe.FinalStep = e.Classes[0].End
	fi := indexOfStep(e.Growth.Steps, pe.FinalStep)
	if fi < 0 {
		return nil
	}
	if s.TopAbs > 0 {
		pe.EXP2 = paperEXP2(s, e, fi, o.Seed, "largest-|λ| eigenvectors", "top-", "bottom-")
	}
	for _, set := range []struct{ name, prefix string }{
		{"largest-|λ| eigenvectors with λ > 0 (top-i)", "top-"}, {"largest-|λ| eigenvectors with λ < 0 (bottom-i)", "bottom-"},
		{"random directions (bulk-i)", "bulk-"},
	} {
		if s.TopAbs <= 0 && set.prefix != "bulk-" {
			continue
		}
		if x := paperEXP2(s, e, fi, o.Seed, set.name, set.prefix); x != nil {
			pe.EXP2Other = append(pe.EXP2Other, x)
		}
	}

	pe.LateTimes = paperLateTimes(e.Growth.Steps)
	slopes, err := paper.DirectionSlopes(e.Growth, pe.LateTimes, o.Level)
	if err != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("ensemble %s: %v", e.Name, err))
	}
	mean, vr := make([]float64, len(e.Directions)), make([]float64, len(e.Directions))
	for k := range e.Directions {
		mean[k], vr[k] = e.Growth.Dirs[k].Mean[fi], e.Growth.Dirs[k].Var[fi]
	}
	ratio := paper.DriftRatios(mean, vr)
	for _, bp := range bucketPrefixes {
		var idx []int
		for k, d := range e.Directions {
			if strings.HasPrefix(d.Source, bp.prefix) {
				idx = append(idx, k)
			}
		}
		if len(idx) == 0 {
			continue
		}
		b := PaperBucket{Name: bp.name, Directions: len(idx), Indices: idx, Classes: map[string]int{}}
		var fs, cs, vf float64
		var ratios []float64
		use := make([]bool, len(e.Classes))
		for _, k := range idx {
			d := e.Directions[k]
			b.Classes[d.Class]++
			if d.Class == string(analysis.Null) {
				b.Nulls++
			}
			fs += analysis.FlatSlope(m.LR, d.params.C)
			cs += d.params.C
			vf += vr[k]
			ratios = append(ratios, ratio[k])
			use[k] = e.Classes[k].SlopeBoot != nil // nulls and too-short directions have no slope
			pe.Drift = append(pe.Drift, PaperDrift{Source: d.Source, Drift: num(mean[k]), Variance: num(vr[k]), Ratio: num(ratio[k])})
		}
		n := float64(len(idx))
		b.FlatSlope, b.MeanC, b.VarFinal, b.DriftRatio = num(fs/n), num(cs/n), num(vf/n), num(medianOf(ratios))
		if slopes != nil {
			if iv, err := paper.BucketSlope(slopes, idx, o.Level); err == nil {
				b.PaperSlope, b.SlopeCI = num(iv.Est), ci(iv)
			}
		}
		if p, err := analysis.MedianRate(m.LR, e.Classes, use, o.Level); err == nil {
			b.Median, b.MedianCI, b.rate = num(p.Rate.Est), ci(p.Rate), &p
		}
		pe.Buckets = append(pe.Buckets, b)
	}
	return pe
}

func medianOf(v []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// paperEXP2 compares the variances at index fi over the directions whose
// source has one of the prefixes with the paper's prediction and sgdyn's;
// nil with fewer than 3 such directions.
func paperEXP2(s *PaperSection, e *Ensemble, fi int, seed uint64, set string, prefixes ...string) *PaperEXP2 {
	var idx []int
	for k, d := range e.Directions {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(d.Source, p) }) {
			idx = append(idx, k)
		}
	}
	if len(idx) < 3 {
		return nil
	}
	x := &PaperEXP2{Set: set, Directions: len(idx)}
	eta := e.Manifest.LR
	t := float64(e.Growth.Steps[fi])
	m := make([]float64, len(idx))
	params := make([]analysis.DirectionParams, len(idx))
	sub := make([]float64, len(idx))
	haveSub := true
	for j, k := range idx {
		d := e.Directions[k]
		m[j], params[j] = e.Growth.Dirs[k].Var[fi], *d.params
		if d.params.Lambda < 0 {
			x.Negative++
		}
		x.MaxEtaLam = math.Max(x.MaxEtaLam, eta*math.Abs(d.params.Lambda))
		if d.PredSubspace != nil {
			sub[j] = *d.PredSubspace
		} else {
			haveSub = false
		}
	}
	nb := len(e.Growth.Dirs[idx[0]].Boot)
	boot := make([][]float64, nb)
	for b := range boot {
		row := make([]float64, len(idx))
		for j, k := range idx {
			row[j] = e.Growth.Dirs[k].Boot[b][fi]
		}
		boot[b] = row
	}
	pr := paper.Predict(eta, params, t)
	preds := []struct {
		name string
		p    []float64
	}{{"paper: ηc/(2|λ|)", pr.Paper}, {TheoryDiscrete + " (finite time)", pr.Discrete}, {TheoryLangevin + " (finite time)", pr.Langevin}}
	if haveSub {
		preds = append(preds, struct {
			name string
			p    []float64
		}{TheorySubspace + " (finite time)", sub})
	}
	for _, p := range preds {
		a := PaperAgreement{Theory: p.name}
		ag, err := paper.Compare(m, p.p, s.Permutations, seed)
		if err != nil {
			a.Error = err.Error()
		} else {
			a.Agreement = ag
			if c, err := paper.CompareBoot(m, boot, p.p, s.Level); err == nil {
				a.CI = &c
			}
		}
		x.Theories = append(x.Theories, a)
	}
	return x
}

// paperScans groups the SGD ensembles of one reference, direction set,
// window, replicas and sampling, and computes the paper's correlations
// and sgdyn's fits over each group of at least 2 learning rates or batches.
func paperScans(s *PaperSection, r *Report, level float64) []*PaperScan {
	type key struct {
		ref, dirs, sampling string
		steps               int64
		replicas            int
	}
	byName := map[string]*Ensemble{}
	for _, e := range r.Ensembles {
		byName[e.Name] = e
	}
	groups := map[key][]*PaperEnsemble{}
	var keys []key
	for _, pe := range s.Ensembles {
		if pe.Surrogate != "" {
			continue
		}
		m := byName[pe.Name].Manifest
		k := key{m.ReferenceSHA256, m.DirectionsSHA256, m.Sampling, m.Steps, m.Replicas}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], pe)
	}
	var out []*PaperScan
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		sort.Slice(g, func(i, j int) bool {
			if g[i].Batch != g[j].Batch {
				return g[i].Batch < g[j].Batch
			}
			return g[i].Eta < g[j].Eta
		})
		sc := &PaperScan{}
		for _, pe := range g {
			sc.Names = append(sc.Names, pe.Name)
		}
		sc.RFlatEta, sc.RFlatInvBatch = bucketCorrelations(g, bucketPaperFlat)
		sc.RWindowFlatEta, _ = bucketCorrelations(g, bucketFlat)
		for _, bn := range []string{bucketPaperFlat, bucketFlat, bucketPaperSharp} {
			sc.Fits = append(sc.Fits, bucketFits(g, bn, level)...)
		}
		out = append(out, sc)
	}
	return out
}

func bucketOf(pe *PaperEnsemble, name string) *PaperBucket {
	for i := range pe.Buckets {
		if pe.Buckets[i].Name == name {
			return &pe.Buckets[i]
		}
	}
	return nil
}

// bucketCorrelations returns the paper's Pearson r(eta, slope) and, when
// the batch varies, r(1/batch, slope) of a bucket's slopes over g.
func bucketCorrelations(g []*PaperEnsemble, name string) (rEta, rBatch *float64) {
	var eta, inv, y []float64
	for _, pe := range g {
		b := bucketOf(pe, name)
		if b == nil || b.PaperSlope == nil {
			return nil, nil
		}
		eta, inv, y = append(eta, pe.Eta), append(inv, 1/float64(pe.Batch)), append(y, *b.PaperSlope)
	}
	if r, err := paper.Pearson(eta, y); err == nil {
		rEta = &r
	}
	if r, err := paper.Pearson(inv, y); err == nil {
		rBatch = &r
	}
	return rEta, rBatch
}

// bucketFits are sgdyn's log-log fits of a bucket's median late slope
// against eta at each batch and against 1/batch at each eta.
func bucketFits(g []*PaperEnsemble, name string, level float64) []PaperFit {
	var out []PaperFit
	fit := func(against, fixed string, theory float64, pts []analysis.ScanPoint) {
		if len(pts) < 2 {
			return
		}
		f := PaperFit{Bucket: name, Against: against, Fixed: fixed, Points: len(pts), Theory: theory}
		if slices.ContainsFunc(pts, func(p analysis.ScanPoint) bool { return !(p.Rate.Lo > 0) }) {
			f.Error = "a late-slope interval reaches 0 or below: no log-log fit"
		} else if sf, err := analysis.FitScan(pts, level); err != nil {
			f.Error = err.Error()
		} else {
			f.Exponent, f.CI = num(sf.PerStep.Slope.Est), ci(sf.PerStep.Slope)
		}
		out = append(out, f)
	}
	byBatch, byEta := map[int][]analysis.ScanPoint{}, map[float64][]analysis.ScanPoint{}
	var batches []int
	var etas []float64
	present := false
	for _, pe := range g {
		b := bucketOf(pe, name)
		present = present || b != nil
		if b == nil || b.rate == nil {
			continue
		}
		if _, ok := byBatch[pe.Batch]; !ok {
			batches = append(batches, pe.Batch)
		}
		if _, ok := byEta[pe.Eta]; !ok {
			etas = append(etas, pe.Eta)
		}
		byBatch[pe.Batch] = append(byBatch[pe.Batch], *b.rate)
		// FitScan fits against its Eta field: give it 1/batch.
		byEta[pe.Eta] = append(byEta[pe.Eta], analysis.ScanPoint{Eta: 1 / float64(pe.Batch), Rate: b.rate.Rate})
	}
	if present && len(batches) == 0 {
		return []PaperFit{{Bucket: name, Against: "eta", Theory: 2, Error: "no direction of the bucket has a late slope (all null): nothing to fit"}}
	}
	sort.Ints(batches)
	sort.Float64s(etas)
	for _, b := range batches {
		fit("eta", fmt.Sprintf("batch %d", b), 2, byBatch[b])
	}
	for _, e := range etas {
		fit("1/batch", fmt.Sprintf("eta %g", e), 1, byEta[e])
	}
	return out
}

// paperMetricCells are the EXP2 columns of one theory.
func paperMetricCells(a PaperAgreement) []string {
	if a.Error != "" {
		return []string{"-", "-", "-", "-", "-", a.Error}
	}
	civ := func(iv analysis.Interval) string { return ciText3(iv.Lo, iv.Hi) }
	r, re, sc := sig3(a.LogPearson), sig3(a.RelErr), sig3(a.Scale)
	res := sig3(a.RelErrScaled)
	if a.CI != nil {
		r += " " + civ(a.CI.LogPearson)
		re += " " + civ(a.CI.RelErr)
		sc += " " + civ(a.CI.Scale)
		res += " " + civ(a.CI.RelErrScaled)
	}
	return []string{r, sig3(a.PValue), re, sc, res, ""}
}

var paperEXP2Head = []string{"theory", "r(log m, log p) [CI]", "perm. p", "‖m−p‖/‖m‖ [CI]", "best a [CI]", "‖m−a p‖/‖m‖ [CI]", "note"}

var paperBucketHead = []string{"bucket", "dirs", "sgdyn classes", "mean c", "paper slope (late times)", "CI", "sgdyn median late slope", "CI", "η²c", "mean var(T)", "median drift²/var"}

func (b PaperBucket) cells() []string {
	var cls []string
	for _, c := range classOrder {
		if n := b.Classes[c]; n > 0 {
			cls = append(cls, fmt.Sprintf("%d %s", n, c))
		}
	}
	return []string{b.Name, fmt.Sprint(b.Directions), strings.Join(cls, ", "), sig3p(b.MeanC), sig3p(b.PaperSlope), ci3(b.SlopeCI),
		sig3p(b.Median), ci3(b.MedianCI), sig3p(b.FlatSlope), sig3p(b.VarFinal), sig3p(b.DriftRatio)}
}

// ci3 writes an interval to 3 significant digits, or missing.
func ci3(c []*float64) string {
	if len(c) != 2 || c[0] == nil || c[1] == nil {
		return missing
	}
	return ciText3(*c[0], *c[1])
}

// nullText is the sentence on a bucket's null check.
func nullText(what string, nc *paper.NullCheck) string {
	if nc == nil {
		return ""
	}
	return fmt.Sprintf("%s: %d of %d directions have c at round-off (c ≤ %g × median c = %s); their c spans %s to %s, at most %s × the median.",
		what, nc.Nulls, nc.N, nc.Tol, sig3(nc.Median), sig3(nc.MinC), sig3(nc.MaxC), sig3(nc.MaxRatio))
}

func (s *PaperSection) intro() []string {
	out := []string{fmt.Sprintf("The paper's metrics (paper-protocols.md) on the paper's direction sets: the %d eigenvectors of largest |λ| (top-i, bottom-i) and the %d of smallest |λ| (smallest-i, the paper's \"flat\" bucket), computed by sgdyn next to its own analysis of the same ensembles. Intervals are %g%% bootstrap intervals over replicas (sgdyn's addition; the paper has none). The permutation p-value is (1 + #{r_perm ≥ r}) / (1 + %d) over %d seeded shuffles.",
		s.TopAbs, s.Smallest, 100*s.Level, s.Permutations, s.Permutations)}
	if t := nullText("Paper's flat bucket", s.FlatNulls); t != "" {
		out = append(out, t)
	}
	if t := nullText("sgdyn's window-flat directions of the same Hessian", s.Flat); t != "" {
		out = append(out, t)
	}
	out = append(out, fmt.Sprintf("The reference point's gradient norm is %s: it is not a critical point, so the drift (mean displacement over replicas) is shown beside each variance.", sig3(s.GradNorm)))
	return append(out, s.Notes...)
}

func (pe *PaperEnsemble) title() string {
	t := fmt.Sprintf("%s: η %g, batch %d, %d replicas, %d steps", pe.Name, pe.Eta, pe.Batch, pe.Replicas, pe.Steps)
	if pe.Surrogate != "" {
		t += ", surrogate " + pe.Surrogate
	}
	return t
}

func (x *PaperEXP2) sentence(step int64) string {
	return fmt.Sprintf("EXP2 over the %d %s: %d with λ < 0, max η|λ| = %s; measured variance m at step %d against each prediction p.",
		x.Directions, x.Set, x.Negative, sig3(x.MaxEtaLam), step)
}

func (s *PaperScan) sentence() string {
	t := fmt.Sprintf("Ensembles %s. Paper's correlations over these %d points (linear scale): r(η, flat-bucket slope) = %s", strings.Join(s.Names, ", "), len(s.Names), sig3p(s.RFlatEta))
	if s.RFlatInvBatch != nil {
		t += fmt.Sprintf(", r(1/batch, flat-bucket slope) = %s", sig3p(s.RFlatInvBatch))
	}
	return t + fmt.Sprintf("; for sgdyn's window-flat bucket r(η, slope) = %s. sgdyn's log-log fits of the median late slope (theory: exponent 2 in η per step, 1 in 1/batch):", sig3p(s.RWindowFlatEta))
}

var paperFitHead = []string{"bucket", "against", "held fixed", "points", "exponent [CI]", "theory", "note"}

func (f PaperFit) cells() []string {
	return []string{f.Bucket, f.Against, f.Fixed, fmt.Sprint(f.Points), sig3p(f.Exponent) + " " + ci3(f.CI), fmt.Sprint(f.Theory), f.Error}
}

// HTML renders the section for index.html (empty for a nil section).
func (s *PaperSection) HTML() template.HTML {
	if s == nil {
		return ""
	}
	var b strings.Builder
	e := html.EscapeString
	tbl := func(head []string, rows [][]string) {
		b.WriteString("<table><tr>")
		for i, h := range head {
			cl := ""
			if i == 0 {
				cl = ` class="l"`
			}
			fmt.Fprintf(&b, "<th%s>%s</th>", cl, e(h))
		}
		b.WriteString("</tr>\n")
		for _, r := range rows {
			b.WriteString("<tr>")
			for i, c := range r {
				cl := ""
				if i == 0 || i == len(r)-1 {
					cl = ` class="l"`
				}
				fmt.Fprintf(&b, "<td%s>%s</td>", cl, e(c))
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</table>\n")
	}
	b.WriteString(`<h2 id="paper">Paper protocol</h2>` + "\n")
	for _, p := range s.intro() {
		fmt.Fprintf(&b, "<p>%s</p>\n", e(p))
	}
	for _, pe := range s.Ensembles {
		fmt.Fprintf(&b, "<h3>%s</h3>\n", e(pe.title()))
		for _, x := range append([]*PaperEXP2{pe.EXP2}, pe.EXP2Other...) {
			if x == nil {
				continue
			}
			fmt.Fprintf(&b, "<p>%s</p>\n", e(x.sentence(pe.FinalStep)))
			var rows [][]string
			for _, a := range x.Theories {
				rows = append(rows, append([]string{a.Theory}, paperMetricCells(a)...))
			}
			tbl(paperEXP2Head, rows)
		}
		fmt.Fprintf(&b, "<p>Buckets: the paper's late slope is the least-squares slope of the bucket-mean variance over steps %v; sgdyn's is the median over the bucket of each direction's late slope over the last half of the window (analysis.Rule).</p>\n", pe.LateTimes)
		var rows [][]string
		for _, bk := range pe.Buckets {
			rows = append(rows, bk.cells())
		}
		tbl(paperBucketHead, rows)
	}
	for _, sc := range s.Scans {
		fmt.Fprintf(&b, "<h3>Scan</h3>\n<p>%s</p>\n", e(sc.sentence()))
		var rows [][]string
		for _, f := range sc.Fits {
			rows = append(rows, f.cells())
		}
		tbl(paperFitHead, rows)
	}
	return template.HTML(b.String())
}

// Markdown renders the section for report.md (empty for a nil section).
func (s *PaperSection) Markdown() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	esc := func(x string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(x) }
	tbl := func(head []string, rows [][]string) {
		b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
		for i := range head {
			if i == 0 || i == len(head)-1 {
				b.WriteString("---|")
			} else {
				b.WriteString("---:|")
			}
		}
		b.WriteString("\n")
		for _, r := range rows {
			for i := range r {
				r[i] = esc(r[i])
			}
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("## Paper protocol\n\n")
	for _, p := range s.intro() {
		b.WriteString(esc(p) + "\n\n")
	}
	for _, pe := range s.Ensembles {
		fmt.Fprintf(&b, "### %s\n\n", esc(pe.title()))
		for _, x := range append([]*PaperEXP2{pe.EXP2}, pe.EXP2Other...) {
			if x == nil {
				continue
			}
			b.WriteString(esc(x.sentence(pe.FinalStep)) + "\n\n")
			var rows [][]string
			for _, a := range x.Theories {
				rows = append(rows, append([]string{a.Theory}, paperMetricCells(a)...))
			}
			tbl(paperEXP2Head, rows)
		}
		fmt.Fprintf(&b, "Buckets: paper late slope over steps %v of the bucket-mean variance; sgdyn median late slope over the last half of the window.\n\n", pe.LateTimes)
		var rows [][]string
		for _, bk := range pe.Buckets {
			rows = append(rows, bk.cells())
		}
		tbl(paperBucketHead, rows)
	}
	for _, sc := range s.Scans {
		b.WriteString("### Scan\n\n" + esc(sc.sentence()) + "\n\n")
		var rows [][]string
		for _, f := range sc.Fits {
			rows = append(rows, f.cells())
		}
		tbl(paperFitHead, rows)
	}
	return b.String()
}

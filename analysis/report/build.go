// Package report turns a run directory (training metrics, the Hessian
// survey, ensembles) into the variance-growth report: which directions are
// confined, diffusive, unstable or null, with confidence intervals, and how
// the measurements compare with the discrete theory and with Langevin.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// Options configures the statistics of a report.
type Options struct {
	Resamples int     // bootstrap resamples over replicas (default 1000)
	Level     float64 // confidence level (default 0.95)
	Seed      uint64
	// Primary names the ensemble whose numbers head summary.json and the
	// page. Empty: the one at the run's own learning rate and batch, else
	// the one with the most replicas.
	Primary string
}

// Report is everything the report shows, computed from a run directory.
type Report struct {
	Run        string
	Config     *train.Config
	Params     int
	Training   *TrainingCurves
	Survey     *Survey
	Ensembles  []*Ensemble
	Scan       *Scan
	MSD        *MSD
	Notes      []string // what is missing or partial, in words
	Level      float64
	Primary    *Ensemble
	Rule       string
	TailRule   string
	NoiseBatch int // batch size the noise statistics were measured at
	// Schemes is the sampling schemes side by side (schemes.go).
	Schemes *Schemes
	// Paper is the paper-protocol section (paper.go); nil unless the
	// survey probed the paper's direction sets.
	Paper *PaperSection
	// Surrogates compares Gaussian-surrogate ensembles with the SGD
	// ensemble they simulate (surrogate.go); nil without surrogates.
	Surrogates *Surrogates
}

// TrainingCurves are the metrics of the training run.
type TrainingCurves struct {
	Steps     []float64
	Loss      []float64
	EvalSteps []float64
	ValLoss   []float64
	ValAcc    []float64 // empty for regression
}

// Survey is the Hessian survey at the reference point.
type Survey struct {
	noise       *surveyNoiseArrays // inputs of the subspace recursion, if saved
	Top, Bottom []probe.Eigenvalue
	Density     *probe.DensitySummary
	Trace       *probe.TraceEstimate
	Directions  []probe.Direction
	Loss        float64
	GradNorm    float64
	HVPs        int
	Checkpoint  string
	BatchSize   int
	// FrozenPattern: the products held the reference point's ReLU and
	// max-pool pattern fixed (a network with kinks).
	FrozenPattern bool
	// Window is the ensemble window the survey classified against; each
	// ensemble applies the same threshold to its own eta and T.
	Window probe.Window
}

// windowFlat says whether survey direction d is window-flat for an
// ensemble of T steps at learning rate eta: not null, and its certified
// ||H u|| (|lambda| for an eigenvector) times eta T below the survey's
// threshold. The survey's own class refers to the survey's window, which
// need not be this ensemble's.
func (s *Survey) windowFlat(d probe.Direction, eta float64, steps int64) bool {
	return !d.Null && d.Class != probe.ClassNull && windowCurvature(d) < s.window(eta, steps).FlatBound()
}

// window is the survey's window-flat rule (its threshold) for an ensemble
// of T steps at learning rate eta.
func (s *Survey) window(eta float64, steps int64) probe.Window {
	w := probe.Window{LR: eta, Steps: steps, Threshold: s.Window.Threshold}
	if w.Threshold <= 0 {
		w.Threshold = probe.DefaultFlatThreshold
	}
	return w
}

// windowCurvature is the curvature bound that certifies d: ||H u|| on the
// evaluation set, or |lambda| for surveys that did not record it.
func windowCurvature(d probe.Direction) float64 {
	if d.HNorm > 0 {
		return d.HNorm
	}
	return math.Abs(d.Lambda)
}

// Ensemble is one ensemble's measurements and classification.
type Ensemble struct {
	Name                                 string
	Manifest                             train.EnsembleManifest
	Complete, Running, Missing, Diverged int
	Growth                               *analysis.Growth
	Classes                              []analysis.Classification
	Directions                           []Direction
	Counts                               map[string]int
	Steps                                []int64
	// PredictionHits says per class which theory lies inside the measured
	// intervals how often.
	PredictionHits string `json:"-"`
}

// Direction is one row of the direction table and of summary.json.
type Direction struct {
	Index         int        `json:"index"`
	Source        string     `json:"source"`
	Lambda        *float64   `json:"lambda"`
	C             *float64   `json:"c"`
	S2            *float64   `json:"s2"`
	MeanGrad      *float64   `json:"mean_grad"`
	Class         string     `json:"class"`
	Reason        string     `json:"reason"`
	LateSlope     *float64   `json:"late_slope"`
	LateSlopeCI   []*float64 `json:"late_slope_ci"`
	LogLogSlope   *float64   `json:"loglog_slope"`
	LogLogSlopeCI []*float64 `json:"loglog_slope_ci"`
	VarFinal      *float64   `json:"var_final"`
	VarFinalCI    []*float64 `json:"var_final_ci"`
	FinalStep     int64      `json:"final_step"`
	PredDiscrete  *float64   `json:"pred_discrete"` // sigma^2 at FinalStep, discrete theory
	PredLangevin  *float64   `json:"pred_langevin"` // sigma^2 at FinalStep, Langevin (standard FP)
	// PredSubspace is sigma^2 at FinalStep from the subspace theory, when
	// one has been computed for this direction (nil otherwise).
	PredSubspace *float64 `json:"pred_subspace,omitempty"`
	// EtaLambda is eta lambda at the ensemble's learning rate.
	EtaLambda    *float64 `json:"eta_lambda"`
	StatDiscrete *float64 `json:"stationary_discrete"`
	StatLangevin *float64 `json:"stationary_langevin"`
	FlatSlope    *float64 `json:"pred_flat_slope"` // eta^2 c per step
	// CurvatureWindow is the direction's certified ||H u|| times eta T:
	// below the survey's threshold it is window-flat for this ensemble
	// (WindowFlat), whatever the survey's window was.
	CurvatureWindow *float64 `json:"h_norm_eta_t,omitempty"`
	WindowFlat      bool     `json:"window_flat"`
	// CoupledSlope is the growth per step of a window-flat direction with
	// the transfer from the stiff probed modes (THEORY.md section 7).
	CoupledSlope *float64 `json:"pred_coupled_slope,omitempty"`
	DriftFinal   *float64 `json:"drift_final"` // mean projection at FinalStep
	HeavyTail    bool     `json:"heavy_tail"`
	Stationary   bool     `json:"stationary"`
	// Curves are the theory curves of the variance against step t, keyed
	// by theory name (TheoryDiscrete, TheoryLangevin, TheorySubspace, or a
	// new one); a theory without a prediction for the direction is absent.
	// The figures draw every curve here; the table shows the Pred fields.
	Curves map[string]Curve `json:"-"`
	params *analysis.DirectionParams
}

// Curve is a theory's ensemble variance at step t.
type Curve func(t float64) float64

// Pred is the direction's prediction at FinalStep by the named theory, or
// nil.
func (d *Direction) Pred(theory string) *float64 {
	switch theory {
	case TheoryDiscrete:
		return d.PredDiscrete
	case TheoryLangevin:
		return d.PredLangevin
	case TheorySubspace:
		return d.PredSubspace
	}
	return nil
}

// MSD is the single-run estimator of a training run that logged its
// trajectory: mean squared displacement per direction over lags.
type MSD struct {
	Lags      []int64
	Sources   []string
	Null      []bool      // the survey flagged the direction null (round-off MSD)
	Values    [][]float64 // [direction][lag]
	Summaries []analysis.MSDSummary
	Steps     int64 // logged window: first to last step
	FirstStep int64
	LogEvery  int64
}

// Scan is a learning-rate scan over ensembles that differ only in eta.
type Scan struct {
	// Basis says which directions each point is the median late slope of:
	// "diffusive" (the directions classified diffusive), or, when fewer
	// than two ensembles have any, "bulk" (the random nearly flat
	// directions, whatever their class), whose growth per step the theory
	// also puts at eta^2 c once it is linear.
	Basis  string
	Points []analysis.ScanPoint
	Fit    *analysis.ScanFit
	Names  []string
	Note   string
}

// Build reads the run in dir and computes the report. Missing parts (no
// survey yet, an ensemble still running) are noted, not errors; a run
// directory that is not one is an error.
func Build(dir string, o Options) (*Report, error) {
	if o.Resamples == 0 {
		o.Resamples = 1000
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	cfg, err := train.LoadConfig(filepath.Join(dir, train.ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an sgdyn run directory (no %s)", dir, train.ConfigFile)
		}
		return nil, err
	}
	cfg = cfg.WithDefaults()
	r := &Report{Run: dir, Config: &cfg, Level: o.Level, Rule: analysis.Rule, TailRule: analysis.HeavyTailRule}
	if r.Training, err = readMetrics(filepath.Join(dir, train.MetricsFile)); err != nil {
		return nil, err
	}
	if r.Training == nil {
		r.Notes = append(r.Notes, "no training metrics yet")
	}
	if r.Survey, err = readSurvey(filepath.Join(dir, "hessian")); err != nil {
		return nil, err
	}
	if r.Survey == nil {
		r.Notes = append(r.Notes, "no Hessian survey yet (run 'sgdyn hessian'): no spectrum, and no theory predictions")
	} else {
		r.NoiseBatch = r.Survey.BatchSize
	}
	if r.MSD, err = readMSD(filepath.Join(dir, train.TrajectoryDir, train.TrajectoryFile), r.Survey); err != nil {
		return nil, err
	}
	names, _ := filepath.Glob(filepath.Join(dir, "ensemble", "*", train.ManifestFile))
	sort.Strings(names)
	for _, m := range names {
		e, err := buildEnsemble(filepath.Dir(m), r, o)
		if err != nil {
			return nil, err
		}
		if e != nil {
			r.Ensembles = append(r.Ensembles, e)
		}
	}
	if len(names) == 0 {
		r.Notes = append(r.Notes, "no ensembles yet (run 'sgdyn ensemble')")
	}
	r.Scan = buildScan(r.Ensembles, o.Level)
	if r.Scan != nil && r.Scan.Note != "" {
		r.Notes = append(r.Notes, r.Scan.Note)
	}
	for _, e := range r.Ensembles {
		r.Params = e.Manifest.Params
	}
	r.Schemes = buildSchemes(r)
	r.Paper = buildPaper(r, o)
	r.Surrogates = buildSurrogates(r)
	if r.Primary, err = primary(r, o.Primary); err != nil {
		return nil, err
	}
	return r, nil
}

func primary(r *Report, name string) (*Ensemble, error) {
	if name != "" {
		for _, e := range r.Ensembles {
			if e.Name == name {
				return e, nil
			}
		}
		return nil, fmt.Errorf("no ensemble named %q in %s", name, r.Run)
	}
	var best *Ensemble
	for _, e := range r.Ensembles {
		if e.Manifest.LR == r.Config.SGD.LR && e.Manifest.Batch == r.Config.SGD.Batch {
			return e, nil
		}
		if best == nil || e.Manifest.Replicas > best.Manifest.Replicas {
			best = e
		}
	}
	return best, nil
}

func readMetrics(path string) (*TrainingCurves, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	tc := &TrainingCurves{}
	_, err := atomicfile.ReadLog(path, func(line []byte) error {
		var rec struct {
			Step    float64  `json:"step"`
			Loss    *float64 `json:"loss"`
			ValLoss *float64 `json:"val_loss"`
			ValAcc  *float64 `json:"val_acc"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		if rec.Loss != nil {
			tc.Steps = append(tc.Steps, rec.Step)
			tc.Loss = append(tc.Loss, *rec.Loss)
		}
		if rec.ValLoss != nil {
			tc.EvalSteps = append(tc.EvalSteps, rec.Step)
			tc.ValLoss = append(tc.ValLoss, *rec.ValLoss)
			if rec.ValAcc != nil {
				tc.ValAcc = append(tc.ValAcc, *rec.ValAcc)
			}
		}
		return nil
	})
	return tc, err
}

func readSurvey(dir string) (*Survey, error) {
	b, err := os.ReadFile(filepath.Join(dir, "spectrum.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var raw struct {
		probe.Survey
		Checkpoint string `json:"checkpoint"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "spectrum.json"), err)
	}
	s := &Survey{Top: raw.Top, Bottom: raw.Bottom, Density: raw.Density, Trace: raw.Trace, Loss: raw.Loss,
		GradNorm: raw.GradNorm, HVPs: raw.HVPs, Checkpoint: raw.Checkpoint, BatchSize: raw.Settings.BatchSize,
		FrozenPattern: raw.FrozenPattern, Window: raw.Settings.Window}
	db, err := os.ReadFile(filepath.Join(dir, "directions.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(db, &s.Directions); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "directions.json"), err)
	}
	if s.noise, err = readSurveyNoise(dir); err != nil {
		return nil, err
	}
	return s, nil
}

func buildEnsemble(dir string, r *Report, o Options) (*Ensemble, error) {
	ed, err := train.LoadEnsemble(dir)
	if err != nil {
		return nil, err
	}
	man := ed.Manifest
	e := &Ensemble{Name: man.Name, Manifest: man, Counts: map[string]int{}, Steps: ed.Steps}
	for _, s := range ed.Status {
		switch s {
		case train.StatusComplete:
			e.Complete++
		case train.StatusDiverged:
			e.Diverged++
		case train.StatusRunning:
			e.Running++
		default:
			e.Missing++
		}
	}
	if e.Running+e.Missing > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s is partial: %d of %d replicas finished, %d running or interrupted, %d not started; statistics use the rows written so far",
			man.Name, e.Complete+e.Diverged, man.Replicas, e.Running, e.Missing))
	}
	if e.Diverged > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: %d of %d replicas diverged (loss not finite) and are excluded from the step they diverged on", man.Name, e.Diverged, man.Replicas))
	}
	// Rows not written yet are NaN, which the analysis treats as absent.
	ens := analysis.Ensemble{Eta: man.LR, Batch: man.Batch, Steps: ed.Steps, Proj: ed.Proj, Diverged: ed.Diverged}
	e.Growth, err = analysis.VarianceGrowth(ens, analysis.GrowthOptions{Resamples: o.Resamples, Level: o.Level, Seed: o.Seed})
	if err != nil {
		return nil, fmt.Errorf("ensemble %s: %w", man.Name, err)
	}
	params, null := directionParams(r, &man)
	e.Classes, err = analysis.Classify(e.Growth, null, ensembleClassifyOptions(r, &man))
	if err != nil {
		return nil, fmt.Errorf("ensemble %s: %w", man.Name, err)
	}
	for k, c := range e.Classes {
		d := Direction{Index: k, Class: string(c.Class), Reason: c.Reason, HeavyTail: c.HeavyTail, Stationary: c.Stationary, FinalStep: c.End,
			Curves: map[string]Curve{}}
		if k < len(man.DirectionSources) {
			d.Source = man.DirectionSources[k]
		}
		d.LateSlope, d.LateSlopeCI = num(c.LateSlope.Est), ci(c.LateSlope)
		d.LogLogSlope, d.LogLogSlopeCI = num(c.LogLogSlope.Est), ci(c.LogLogSlope)
		d.VarFinal, d.VarFinalCI = num(c.VarFinal.Est), ci(c.VarFinal)
		if i := indexOfStep(ed.Steps, c.End); i >= 0 {
			d.DriftFinal = num(e.Growth.Dirs[k].Mean[i])
		}
		if p := params[k]; p != nil {
			d.params = p
			d.Lambda, d.C, d.S2 = num(p.Lambda), num(p.C), num(p.S2)
			d.EtaLambda = num(man.LR * p.Lambda)
			eta, pp := man.LR, *p
			d.Curves[TheoryDiscrete] = func(t float64) float64 { return analysis.DiscreteVariance(eta, pp, 0, t) }
			d.Curves[TheoryLangevin] = func(t float64) float64 { return analysis.LangevinVariance(eta, pp, 0, t) }
			t := float64(c.End)
			d.PredDiscrete = num(analysis.DiscreteVariance(man.LR, *p, 0, t))
			d.PredLangevin = num(analysis.LangevinVariance(man.LR, *p, 0, t))
			d.StatDiscrete = num(analysis.DiscreteStationary(man.LR, *p))
			d.StatLangevin = num(analysis.LangevinStationary(man.LR, *p))
			d.FlatSlope = num(analysis.FlatSlope(man.LR, p.C))
			if k < len(r.Survey.Directions) {
				sd := r.Survey.Directions[k]
				d.MeanGrad = num(sd.MeanGrad)
				d.CurvatureWindow = num(windowCurvature(sd) * man.LR * float64(man.Steps))
				d.WindowFlat = r.Survey.windowFlat(sd, man.LR, man.Steps)
			}
		}
		e.Directions = append(e.Directions, d)
		e.Counts[d.Class]++
	}
	windowFlatNote(r, e)
	if r.Survey != nil && r.Survey.noise != nil {
		scale := 1.0
		if r.Survey.BatchSize > 0 && man.Batch > 0 {
			scale = float64(r.Survey.BatchSize) / float64(man.Batch)
		}
		addSubspace(r, e, &man, schemeNoiseScale(r, &man, scale))
	}
	return e, nil
}

// windowFlatNote says, when this ensemble's window makes a different set
// of directions window-flat than the survey's window did, how many are
// window-flat here and what bound that is.
func windowFlatNote(r *Report, e *Ensemble) {
	if r.Survey == nil {
		return
	}
	var here, survey, certifiedFlat int
	for k, d := range e.Directions {
		if k >= len(r.Survey.Directions) {
			break
		}
		sd := r.Survey.Directions[k]
		if d.WindowFlat {
			here++
			if strings.HasPrefix(sd.Source, "flat-") {
				certifiedFlat++
			}
		}
		if sd.Class == probe.ClassWindowFlat {
			survey++
		}
	}
	m := e.Manifest
	sameWindow := r.Survey.Window.LR == m.LR && r.Survey.Window.Steps == m.Steps
	if here == survey && (sameWindow || here == 0 || r.Survey.Window.LR == 0) {
		return
	}
	w := r.Survey.window(m.LR, m.Steps)
	r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: window eta %g x T %d makes %d probed directions window-flat (||H u|| < %.3g = %g/(eta T); %d of them flat-i), against %d for the survey's window eta %g x T %d",
		e.Name, m.LR, m.Steps, here, w.FlatBound(), w.Threshold, certifiedFlat, survey, r.Survey.Window.LR, r.Survey.Window.Steps))
}

// directionParams matches the ensemble's directions to the survey's
// statistics. The noise was measured at the survey's batch size; c and s2
// scale as 1/b (exactly so for sampling with replacement), so they are
// rescaled to the ensemble's batch.
func directionParams(r *Report, man *train.EnsembleManifest) ([]*analysis.DirectionParams, []bool) {
	params := make([]*analysis.DirectionParams, man.Directions)
	null := make([]bool, man.Directions)
	s := r.Survey
	if s == nil || len(s.Directions) != man.Directions {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: its %d directions are not the survey's, so there are no theory predictions", man.Name, man.Directions))
		return params, null
	}
	scale := 1.0
	if s.BatchSize > 0 && man.Batch > 0 {
		scale = float64(s.BatchSize) / float64(man.Batch)
	}
	scale = schemeNoiseScale(r, man, scale)
	for k, d := range s.Directions {
		if k < len(man.DirectionSources) && man.DirectionSources[k] != d.Source {
			r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: direction %d is %s, the survey's is %s: no predictions", man.Name, k, man.DirectionSources[k], d.Source))
			return make([]*analysis.DirectionParams, man.Directions), null
		}
		params[k] = &analysis.DirectionParams{Lambda: d.Lambda, C: d.C * scale, S2: d.S2 * scale}
		null[k] = d.Null
	}
	return params, null
}

func buildScan(ens []*Ensemble, level float64) *Scan {
	// A scan is the ensembles sharing everything but the learning rate.
	type key struct {
		batch, replicas int
		steps           int64
		sampling, ref   string
	}
	groups := map[key][]*Ensemble{}
	for _, e := range ens {
		m := e.Manifest
		k := key{m.Batch, m.Replicas, m.Steps, m.Sampling, m.ReferenceSHA256}
		groups[k] = append(groups[k], e)
	}
	var best []*Ensemble
	for _, g := range groups {
		if len(g) > len(best) {
			best = g
		}
	}
	if len(best) < 2 {
		return nil
	}
	sort.Slice(best, func(i, j int) bool { return best[i].Manifest.LR < best[j].Manifest.LR })
	s := &Scan{Basis: "diffusive"}
	var skipped []string
	for _, e := range best {
		p, err := analysis.DiffusiveRate(e.Manifest.LR, e.Classes, level)
		if err != nil {
			skipped = append(skipped, e.Name)
			continue
		}
		s.Points = append(s.Points, p)
		s.Names = append(s.Names, e.Name)
	}
	if len(skipped) > 0 {
		s.Note = fmt.Sprintf("learning-rate scan: no diffusive direction in %s", strings.Join(skipped, ", "))
	}
	if len(s.Points) < 2 {
		bulk := &Scan{Basis: "bulk"}
		for _, e := range best {
			use := make([]bool, len(e.Classes))
			for i, d := range e.Directions {
				use[i] = strings.HasPrefix(d.Source, "bulk-") && d.Class != string(analysis.Null)
			}
			if p, err := analysis.MedianRate(e.Manifest.LR, e.Classes, use, level); err == nil {
				bulk.Points = append(bulk.Points, p)
				bulk.Names = append(bulk.Names, e.Name)
			}
		}
		if len(bulk.Points) >= 2 {
			bulk.Note = s.Note + "; the scan uses the median late slope of the bulk directions instead, whatever their class"
			s = bulk
		}
	}
	if len(s.Points) >= 2 {
		if fit, err := analysis.FitScan(s.Points, level); err == nil {
			s.Fit = &fit
		} else {
			s.Note = "learning-rate scan: " + err.Error()
		}
	}
	return s
}

func indexOfStep(steps []int64, s int64) int {
	for i, x := range steps {
		if x == s {
			return i
		}
	}
	return -1
}

// num is x for JSON, or null when x is not finite.
func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func ci(iv analysis.Interval) []*float64 { return []*float64{num(iv.Lo), num(iv.Hi)} }

// readMSD computes the MSD of every logged direction of a training run's
// trajectory, if it has one.
func readMSD(path string, s *Survey) (*MSD, error) {
	shape, raw, err := npy.ReadNPY(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	vals, ok := raw.([]float64)
	if !ok || len(shape) != 2 || shape[1] < 4 || shape[0] < 3 {
		return nil, nil // too short to say anything yet
	}
	rows, cols := shape[0], shape[1]
	k := cols - 3
	steps := make([]int64, rows)
	for i := range steps {
		steps[i] = int64(vals[i*cols])
	}
	m := &MSD{FirstStep: steps[0], Steps: steps[rows-1] - steps[0], LogEvery: steps[1] - steps[0]}
	m.Lags = analysis.LogLags(m.Steps/2, 16)
	for i := range m.Lags {
		m.Lags[i] = max(m.LogEvery, m.Lags[i]/m.LogEvery*m.LogEvery) // lags the log can match
	}
	m.Lags = slices.Compact(m.Lags)
	p := make([]float64, rows)
	for d := 0; d < k; d++ {
		for i := range p {
			p[i] = vals[i*cols+3+d]
		}
		v, _, err := analysis.MSD(steps, p, m.Lags)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		sum, err := analysis.SummarizeMSD(m.Lags, v)
		if err != nil {
			sum.Kind = "too short"
		}
		src, null := fmt.Sprintf("d%d", d), false
		if s != nil && len(s.Directions) == k {
			src, null = s.Directions[d].Source, s.Directions[d].Null
		}
		m.Null = append(m.Null, null)
		m.Values = append(m.Values, v)
		m.Summaries = append(m.Summaries, sum)
		m.Sources = append(m.Sources, src)
	}
	return m, nil
}

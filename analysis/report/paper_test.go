package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/analysis/paper"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// paperRun is a tiny softmax MLP (3 classes: the output-bias shift is an
// exact null) with a dense survey of the paper's direction sets (6
// largest |lambda|, 3 smallest |lambda|) plus 2 window-flat directions and
// ensembles at two learning rates, logged every 5 of 40 steps.
func paperRun(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	rng := rand.New(rand.NewPCG(51, 52))
	var sb strings.Builder
	sb.WriteString("x1,x2,x3,label\n")
	for range 300 {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		lab := 0
		if x[0]+0.5*x[1] > 0.3 {
			lab = 1
		} else if x[2] > 0.5 {
			lab = 2
		}
		if rng.Float64() < 0.1 {
			lab = rng.IntN(3)
		}
		fmt.Fprintf(&sb, "%.17g,%.17g,%.17g,%d\n", x[0], x[1], x[2], lab)
	}
	path := filepath.Join(work, "cls.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := train.DefaultConfig("mlp")
	c.Model.DType = "float64"
	c.Model.MLP.Hidden = []int{3}
	c.Model.MLP.Activation = "silu"
	c.Data.Path = path
	c.Data.ValFraction = 0
	c.SGD = train.SGDConfig{LR: 0.1, Batch: 16, Steps: 200, Sampling: "with"}
	run := filepath.Join(work, "run")
	if _, err := train.Train(context.Background(), run, c, train.Options{}); err != nil {
		t.Fatal(err)
	}
	ref, err := train.LoadReference(run, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ref.NewModel("float64")
	s, err := probe.RunSurvey(context.Background(), m, ref.Data.Train, ref.W, probe.SurveyOptions{Dense: true, Top: 1, Bottom: 1, TopAbs: 6, Smallest: 3, Flat: 2, Nulls: -1,
		Bulk: -1, BatchSize: 16, Sampling: "with", NoiseBatches: 64, DensityStarts: -1, TraceSamples: -1, Seed: 3,
		Window: probe.Window{LR: 0.05, Steps: 40}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(run, "hessian")
	os.MkdirAll(dir, 0o755)
	var flat []float64
	for _, v := range s.Vectors {
		flat = append(flat, v...)
	}
	npy.WriteNPY(filepath.Join(dir, "directions.npy"), []int{len(s.Vectors), len(s.Vectors[0])}, flat)
	atomicfile.WriteJSON(filepath.Join(dir, "directions.json"), s.Directions)
	atomicfile.WriteJSON(filepath.Join(dir, "spectrum.json"), struct {
		*probe.Survey
		Checkpoint string `json:"checkpoint"`
	}{s, ref.Checkpoint})
	var src []string
	for _, d := range s.Directions {
		src = append(src, d.Source)
	}
	for i, eta := range []float64{0.025, 0.05} {
		ec := train.EnsembleConfig{Name: fmt.Sprintf("lr%d", i), Replicas: 32, Steps: 40, LR: eta, Batch: 16, Sampling: "with", LogEvery: 5,
			CheckpointEvery: 40, Seed: 9}
		if _, err := train.RunEnsemble(context.Background(), ref, s.Vectors, src, ec, train.Shard{Index: 0, Of: 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

func TestPaperSection(t *testing.T) {
	run := paperRun(t)
	r, err := Build(run, Options{Resamples: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Paper == nil {
		t.Fatal("no paper section for a survey of the paper's direction sets")
	}
	// What summary.json holds, through its JSON encoding.
	b, err := json.Marshal(summary(r, r.Primary))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Paper     *PaperSection `json:"paper"`
		Ensembles []struct {
			Name       string      `json:"name"`
			Eta        float64     `json:"eta"`
			Directions []Direction `json:"directions"`
		} `json:"ensembles"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	ps := sum.Paper
	if ps == nil || len(ps.Ensembles) != 2 || ps.TopAbs != 6 || ps.Smallest != 3 {
		t.Fatalf("summary paper section %+v", ps)
	}
	// The null check agrees with the probe's own flags on the smallest-i
	// directions, and the output-bias shift makes at least one of them null.
	nulls := 0
	for _, d := range r.Survey.Directions {
		if strings.HasPrefix(d.Source, "smallest-") && d.Null {
			nulls++
		}
	}
	if ps.FlatNulls == nil || ps.FlatNulls.N != 3 || ps.FlatNulls.Nulls != nulls || nulls < 1 {
		t.Errorf("flat-bucket null check %+v, probe flags %d nulls", ps.FlatNulls, nulls)
	}
	if ps.Flat == nil || ps.Flat.Nulls != 0 {
		t.Errorf("window-flat directions checked as %+v, want no nulls", ps.Flat)
	}
	for i, pe := range ps.Ensembles {
		e := sum.Ensembles[i]
		if pe.Name != e.Name || pe.FinalStep != 40 {
			t.Fatalf("ensemble %d: %s at step %d", i, pe.Name, pe.FinalStep)
		}
		// Steps 0..40 every 5: the last 7 logged are 10..40 (EXP14 rule).
		if fmt.Sprint(pe.LateTimes) != "[10 15 20 25 30 35 40]" {
			t.Errorf("%s: late times %v", pe.Name, pe.LateTimes)
		}
		// Recompute the paper's EXP2 metric from the per-direction table:
		// the section must use the top-i/bottom-i directions, the final
		// variance and eta c / (2 |lambda|) with the ensemble's c.
		var mv, pv []float64
		for _, d := range e.Directions {
			if strings.HasPrefix(d.Source, "top-") || strings.HasPrefix(d.Source, "bottom-") {
				mv = append(mv, *d.VarFinal)
				pv = append(pv, e.Eta**d.C/(2*math.Abs(*d.Lambda)))
			}
		}
		if len(mv) != 6 || pe.EXP2 == nil || pe.EXP2.Directions != 6 {
			t.Fatalf("%s: EXP2 over %d directions, %+v", pe.Name, len(mv), pe.EXP2)
		}
		want, err := paper.Compare(mv, pv, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := pe.EXP2.Theories[0]
		if got.Error != "" || math.Abs(got.LogPearson-want.LogPearson) > 1e-9 || math.Abs(got.RelErr-want.RelErr) > 1e-9 || got.PValue != want.PValue {
			t.Errorf("%s: paper EXP2 %+v, recomputed %+v", pe.Name, got, want)
		}
		if len(pe.EXP2.Theories) < 3 || got.CI == nil || !(got.CI.LogPearson.Lo <= got.CI.LogPearson.Hi) {
			t.Errorf("%s: theories %+v", pe.Name, pe.EXP2.Theories)
		}
		// The split by sign of lambda: the top-i subset is its own set.
		tops := 0
		for _, d := range e.Directions {
			if strings.HasPrefix(d.Source, "top-") {
				tops++
			}
		}
		if tops >= 3 && (len(pe.EXP2Other) == 0 || !strings.Contains(pe.EXP2Other[0].Set, "top-i") || pe.EXP2Other[0].Directions != tops) {
			t.Errorf("%s: %d top-i directions, subsets %+v", pe.Name, tops, pe.EXP2Other)
		}
		names := map[string]PaperBucket{}
		for _, bk := range pe.Buckets {
			names[bk.Name] = bk
		}
		pf, wf := names[bucketPaperFlat], names[bucketFlat]
		if pf.Directions != 3 || wf.Directions != 2 || pf.PaperSlope == nil || wf.PaperSlope == nil {
			t.Fatalf("%s: buckets %+v", pe.Name, pe.Buckets)
		}
		// The window-flat directions grow at about eta^2 c per step; the
		// paper's bucket, holding a null, grows far less per unit noise.
		if !(*wf.PaperSlope > 0.3**wf.FlatSlope && *wf.PaperSlope < 3**wf.FlatSlope) {
			t.Errorf("%s: window-flat slope %g, eta^2 c %g", pe.Name, *wf.PaperSlope, *wf.FlatSlope)
		}
		if len(pe.Drift) != 11 {
			t.Errorf("%s: drift for %d directions, want 11", pe.Name, len(pe.Drift))
		}
	}
	if len(ps.Scans) != 1 || len(ps.Scans[0].Names) != 2 {
		t.Fatalf("scans %+v", ps.Scans)
	}
	// Two points: Pearson r is +-1, and both flat buckets grow with eta.
	if sc := ps.Scans[0]; sc.RWindowFlatEta == nil || math.Abs(*sc.RWindowFlatEta-1) > 1e-12 {
		t.Errorf("r(eta, window-flat slope) = %v, want 1", sig3p(sc.RWindowFlatEta))
	}
	if os.Getenv("PAPER_DUMP") != "" {
		t.Log(r.Paper.Markdown())
	}
	if md, page := r.Paper.Markdown(), string(r.Paper.HTML()); !strings.Contains(md, "## Paper protocol") || !strings.Contains(page, `id="paper"`) ||
		!strings.Contains(md, "r(log m, log p)") || !strings.Contains(page, bucketFlat) {
		t.Error("the paper section's Markdown or HTML lacks its tables")
	}
	out := filepath.Join(run, "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	for f, mark := range map[string]string{"report.md": "## Paper protocol", "index.html": `<h2 id="paper">`, "summary.json": `"paper": {`} {
		if b, _ := os.ReadFile(filepath.Join(out, f)); !bytes.Contains(b, []byte(mark)) {
			t.Errorf("%s lacks the paper section (%s)", f, mark)
		}
	}

	// Without the paper's sets there is no section.
	spec := filepath.Join(run, "hessian", "spectrum.json")
	sj, _ := os.ReadFile(spec)
	var raw map[string]any
	if err := json.Unmarshal(sj, &raw); err != nil {
		t.Fatal(err)
	}
	raw["settings"].(map[string]any)["TopAbs"] = 0
	atomicfile.WriteJSON(spec, raw)
	dj := filepath.Join(run, "hessian", "directions.json")
	dd, _ := os.ReadFile(dj)
	if !bytes.Contains(dd, []byte(`"smallest-`)) {
		t.Fatal("directions.json has no smallest-i source to rename")
	}
	os.WriteFile(dj, bytes.ReplaceAll(dd, []byte(`"smallest-`), []byte(`"user-`)), 0o644)
	r, err = Build(run, Options{Resamples: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Paper != nil {
		t.Error("paper section without the paper's direction sets")
	}
}

func TestPaperLateTimes(t *testing.T) {
	var exp5, exp14 []int64
	for s := int64(0); s <= 400; s += 40 {
		exp5 = append(exp5, s)
	}
	for s := int64(0); s <= 200; s += 10 {
		exp14 = append(exp14, s)
	}
	if got := fmt.Sprint(paperLateTimes(exp5)); got != "[320 360 400]" {
		t.Errorf("EXP5-LR late times %s", got)
	}
	if got := fmt.Sprint(paperLateTimes(exp14)); got != "[140 150 160 170 180 190 200]" {
		t.Errorf("EXP14 late times %s", got)
	}
}

func TestPaperScanFits(t *testing.T) {
	// Growth exactly 0.01 eta^2 / b with +-10% intervals on a 2 x 2 grid:
	// exponent 2 in eta at each batch, 1 in 1/batch at each eta.
	var g []*PaperEnsemble
	for _, b := range []int{32, 64} {
		for _, eta := range []float64{0.05, 0.1} {
			rate := 0.01 * eta * eta / float64(b)
			p := analysis.ScanPoint{Eta: eta, Rate: analysis.Interval{Est: rate, Lo: 0.9 * rate, Hi: 1.1 * rate}}
			g = append(g, &PaperEnsemble{Eta: eta, Batch: b, Buckets: []PaperBucket{{Name: bucketFlat, PaperSlope: num(rate), rate: &p}}})
		}
	}
	fits := bucketFits(g, bucketFlat, 0.95)
	if len(fits) != 4 {
		t.Fatalf("%d fits, want 4: %+v", len(fits), fits)
	}
	for _, f := range fits {
		if f.Exponent == nil || math.Abs(*f.Exponent-f.Theory) > 1e-9 || f.Points != 2 {
			t.Errorf("fit %+v: exponent %v, want %g", f, sig3p(f.Exponent), f.Theory)
		}
	}
	if fits[0].Against != "eta" || fits[0].Fixed != "batch 32" || fits[2].Against != "1/batch" || fits[2].Fixed != "eta 0.05" {
		t.Errorf("fit labels %+v", fits)
	}
	rEta, rBatch := bucketCorrelations(g, bucketFlat)
	// Hand: slopes 0.01 eta^2/b over (eta, 1/b) = (.05, 1/32), (.1, 1/32),
	// (.05, 1/64), (.1, 1/64).
	y := []float64{0.01 * 0.0025 / 32, 0.01 * 0.01 / 32, 0.01 * 0.0025 / 64, 0.01 * 0.01 / 64}
	wantEta, _ := paper.Pearson([]float64{0.05, 0.1, 0.05, 0.1}, y)
	wantB, _ := paper.Pearson([]float64{1.0 / 32, 1.0 / 32, 1.0 / 64, 1.0 / 64}, y)
	if rEta == nil || rBatch == nil || math.Abs(*rEta-wantEta) > 1e-12 || math.Abs(*rBatch-wantB) > 1e-12 || !(*rEta > *rBatch) {
		t.Errorf("r(eta) %v, r(1/b) %v; want %g, %g", sig3p(rEta), sig3p(rBatch), wantEta, wantB)
	}
}

func TestPaperScanFitsRefused(t *testing.T) {
	// A late-slope interval reaching below 0 has no logarithm: the fit is
	// refused with a reason, not fitted on the estimates.
	pts := []analysis.ScanPoint{{Eta: 0.05, Rate: analysis.Interval{Est: 1e-8, Lo: -1e-9, Hi: 2e-8}}, {Eta: 0.1, Rate: analysis.Interval{Est: 4e-8, Lo: 3e-8, Hi: 5e-8}}}
	g := []*PaperEnsemble{
		{Eta: 0.05, Batch: 64, Buckets: []PaperBucket{{Name: bucketFlat, rate: &pts[0]}, {Name: bucketPaperFlat}}},
		{Eta: 0.1, Batch: 64, Buckets: []PaperBucket{{Name: bucketFlat, rate: &pts[1]}, {Name: bucketPaperFlat}}},
	}
	f := bucketFits(g, bucketFlat, 0.95)
	if len(f) != 1 || f[0].Exponent != nil || !strings.Contains(f[0].Error, "reaches 0") {
		t.Errorf("fit over an interval below 0: %+v", f)
	}
	// A bucket of nulls (no late slopes) gets one row saying so.
	f = bucketFits(g, bucketPaperFlat, 0.95)
	if len(f) != 1 || f[0].Exponent != nil || !strings.Contains(f[0].Error, "all null") {
		t.Errorf("fit over a null bucket: %+v", f)
	}
	if f := bucketFits(g, bucketNull, 0.95); len(f) != 0 {
		t.Errorf("fit over an absent bucket: %+v", f)
	}
}

// TestWindowFlatPerEnsemble checks that each ensemble applies the
// window-flat rule to its own eta and T: at the survey's window (lr1) the
// set is the survey's window-flat class; at half the learning rate (lr0)
// the bound doubles.
func TestWindowFlatPerEnsemble(t *testing.T) {
	run := paperRun(t)
	r, err := Build(run, Options{Resamples: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	thr := r.Survey.window(1, 1).Threshold
	if r.Survey.Window.LR != 0.05 || r.Survey.Window.Steps != 40 || thr != probe.DefaultFlatThreshold {
		t.Fatalf("survey window %+v, threshold %g", r.Survey.Window, thr)
	}
	counts := map[string]int{}
	for _, e := range r.Ensembles {
		for k, d := range e.Directions {
			sd := r.Survey.Directions[k]
			h := sd.HNorm * e.Manifest.LR * float64(e.Manifest.Steps)
			want := !sd.Null && h < thr
			if d.WindowFlat != want || d.CurvatureWindow == nil || math.Abs(*d.CurvatureWindow-h) > 1e-12*h {
				t.Errorf("%s %s: window-flat %v (||Hu|| eta T %v), want %v (%g)", e.Name, d.Source, d.WindowFlat, sig3p(d.CurvatureWindow), want, h)
			}
			if e.Manifest.LR == r.Survey.Window.LR && d.WindowFlat != (sd.Class == probe.ClassWindowFlat) {
				t.Errorf("%s %s: window-flat %v at the survey's own window, survey class %s", e.Name, d.Source, d.WindowFlat, sd.Class)
			}
			if d.WindowFlat {
				counts[e.Name]++
			}
		}
	}
	if counts["lr1"] < 2 || counts["lr0"] < counts["lr1"] {
		t.Errorf("window-flat counts %v: want at least the 2 flat directions at the survey's window, and no fewer at half eta", counts)
	}
}

// TestOrthonormalSubset: only the directions the subspace recursion runs
// over need be orthonormal.
func TestOrthonormalSubset(t *testing.T) {
	v := []float64{
		1, 0, 0,
		0, 0.6, 0.8, // overlaps the next row by 0.6
		0, 1, 0,
	}
	n := &surveyNoiseArrays{k: 3, gram: gramRows(v, 3, 3)}
	if !n.orthonormal([]int{0, 2}, 1e-12) || !n.orthonormal([]int{0, 1}, 1e-12) {
		t.Errorf("orthonormal pairs refused")
	}
	if n.orthonormal([]int{0, 1, 2}, 1e-6) || n.orthonormal([]int{1, 2}, 0.5) {
		t.Errorf("overlapping rows accepted")
	}
	if (&surveyNoiseArrays{k: 3}).orthonormal([]int{0}, 1) {
		t.Errorf("no directions file, yet orthonormal")
	}
}

// TestCoupledRateRefusedPastStability: a stiff mode past eta lambda = 2
// feeds the flat direction without bound in the linear theory, so there is
// no coupled rate, and a note says why; below the edge there is one, above
// eta^2 c.
func TestCoupledRateRefusedPastStability(t *testing.T) {
	hv := mat.NewSymDense(2, []float64{10, 0, 0, 0})
	var batches []*mat.SymDense
	for _, x := range []float64{0.3, -0.3, 0.1, -0.1} {
		batches = append(batches, mat.NewSymDense(2, []float64{10 + x, x, x, 0}))
	}
	for _, tc := range []struct {
		eta     float64
		coupled bool
	}{{0.05, true}, {0.25, false}} {
		r := &Report{Survey: &Survey{noise: &surveyNoiseArrays{k: 2, hv: hv}}}
		e := &Ensemble{Name: "e", Directions: []Direction{
			{Source: "top-0", params: &analysis.DirectionParams{Lambda: 10, C: 1e-2, S2: 0.05}},
			{Source: "flat-0", WindowFlat: true, FinalStep: 100, params: &analysis.DirectionParams{Lambda: 0, C: 1e-4}},
		}}
		man := &train.EnsembleManifest{EnsembleConfig: train.EnsembleConfig{Name: "e", LR: tc.eta}}
		addCoupled(r, e, man, batches)
		got := e.Directions[1].CoupledSlope
		if tc.coupled {
			if got == nil || !(*got > analysis.FlatSlope(tc.eta, 1e-4)) {
				t.Errorf("eta %g: coupled rate %v, want one above eta^2 c", tc.eta, sig3p(got))
			}
			continue
		}
		if got != nil || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "unstable") {
			t.Errorf("eta %g (eta lambda 2.5): coupled rate %v, notes %q", tc.eta, sig3p(got), r.Notes)
		}
	}
}

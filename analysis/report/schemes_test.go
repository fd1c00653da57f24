package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// schemesRun is a linear regression of 64 training examples with one stiff
// and one nearly flat feature, surveyed with replacement at batch 8, and
// ensembles under both schemes (paired) over 6 epochs of 8 steps.
func schemesRun(t *testing.T) (run string, eta float64) {
	t.Helper()
	work := t.TempDir()
	rng := rand.New(rand.NewPCG(41, 42))
	var sb strings.Builder
	sb.WriteString("x1,x2,y\n")
	for range 100 {
		x1, x2 := rng.NormFloat64(), 0.01*rng.NormFloat64()
		fmt.Fprintf(&sb, "%.17g,%.17g,%.17g\n", x1, x2, 2*x1+x2+rng.NormFloat64())
	}
	path := filepath.Join(work, "reg.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := train.DefaultConfig("linreg")
	c.Model.DType = "float64"
	c.Data.Path = path
	c.Data.Limit = 64
	c.SGD = train.SGDConfig{LR: 0.1, Batch: 8, Steps: 400, Sampling: "with"}
	run = filepath.Join(work, "run")
	if _, err := train.Train(context.Background(), run, c, train.Options{}); err != nil {
		t.Fatal(err)
	}
	ref, err := train.LoadReference(run, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ref.NewModel("float64")
	s, err := probe.RunSurvey(context.Background(), m, ref.Data.Train, ref.W, probe.SurveyOptions{Top: 1, Bottom: 1, Bulk: -1, BatchSize: 8,
		Sampling: "with", NoiseBatches: 2000, DensityStarts: -1, TraceSamples: -1, Tol: 1e-10, Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(run, "hessian")
	os.MkdirAll(dir, 0o755)
	var flat []float64
	for _, v := range s.Vectors {
		flat = append(flat, v...)
	}
	npy.WriteNPY(filepath.Join(dir, "directions.npy"), []int{len(s.Vectors), 2}, flat)
	atomicfile.WriteJSON(filepath.Join(dir, "directions.json"), s.Directions)
	atomicfile.WriteJSON(filepath.Join(dir, "spectrum.json"), struct {
		*probe.Survey
		Checkpoint string `json:"checkpoint"`
	}{s, ref.Checkpoint})
	var src []string
	for _, d := range s.Directions {
		src = append(src, d.Source)
	}
	eta = 0.5 / s.Top[0].Value
	for _, sampling := range []string{"with", "without"} {
		ec := train.EnsembleConfig{Name: "lr-b8-" + sampling, Replicas: 64, Steps: 48, LR: eta, Batch: 8, Sampling: sampling, LogEvery: 1,
			CheckpointEvery: 48, Seed: 5, Paired: sampling == "without"}
		if _, err := train.RunEnsemble(context.Background(), ref, s.Vectors, src, ec, train.Shard{Index: 0, Of: 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	return run, eta
}

// TestReportSchemes: the report states per ensemble the epochs spanned and
// which theory applies, classifies the reshuffled one on epoch boundaries,
// pairs the two schemes with a bootstrap ratio of late slopes, draws the
// overlay with the bridge, and warns that the with-replacement predictions
// do not apply to the reshuffled ensemble. The bridge drawn must be the
// first-order theory: at mid-epoch k = 4 of 8 it is (N - k b)/(N - 1) =
// 32/63 of the with-replacement eta^2 c t along the flat direction, with c
// converted from the survey's scheme, and 0 at the epoch ends.
func TestReportSchemes(t *testing.T) {
	run, eta := schemesRun(t)
	r, err := Build(run, Options{Resamples: 300, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Schemes
	if s == nil || len(s.Ensembles) != 2 || len(s.Groups) != 1 {
		t.Fatalf("schemes section %+v, want 2 ensembles in 1 group", s)
	}
	for _, se := range s.Ensembles {
		with := se.Sampling == "with"
		if se.TrainExamples != 64 || se.StepsPerEpoch != 8 || se.Epochs == nil || *se.Epochs != 6 || se.RecursionApplies != with {
			t.Errorf("%s: %+v", se.Name, se)
		}
		if want := map[bool]string{true: analysis.FitLogged, false: analysis.FitEpochBoundaries}[with]; se.FitCurve != want {
			t.Errorf("%s fitted on %q, want %q", se.Name, se.FitCurve, want)
		}
		if !with && (!se.Paired || !strings.Contains(se.Theory, "do NOT apply")) {
			t.Errorf("reshuffled ensemble: paired %v, theory %q", se.Paired, se.Theory)
		}
	}
	g := s.Groups[0]
	if g.With != "lr-b8-with" || g.Without != "lr-b8-without" || !g.Paired || !g.SameResamples || len(g.Directions) != 2 {
		t.Fatalf("group %+v", g)
	}
	flat := -1
	for k, d := range r.Ensembles[0].Directions {
		if d.Lambda != nil && math.Abs(*d.Lambda) < 1e-3 {
			flat = k
		}
	}
	if flat < 0 {
		t.Fatal("no flat direction in the survey")
	}
	fd := g.Directions[flat]
	if fd.Ratio == nil || fd.RatioCI[0] == nil || fd.RatioCI[1] == nil || !(*fd.RatioCI[0] <= *fd.Ratio && *fd.Ratio <= *fd.RatioCI[1]) {
		t.Errorf("flat direction: ratio %v, interval %v", fd.Ratio, fd.RatioCI)
	} else if *fd.RatioCI[1] > 0.5 {
		t.Errorf("flat direction: reshuffled over with-replacement late slope %.3g [%.3g, %.3g], want well below 1", *fd.Ratio, *fd.RatioCI[0], *fd.RatioCI[1])
	}
	var noted bool
	for _, n := range r.Notes {
		noted = noted || (strings.Contains(n, "lr-b8-without") && strings.Contains(n, "comparison only"))
	}
	if !noted {
		t.Errorf("no note that the with-replacement predictions are for comparison only: %q", r.Notes)
	}

	out := filepath.Join(run, "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"<h2>Sampling schemes</h2>", "lr-b8-with vs lr-b8-without", "epoch boundaries", "Common random numbers"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if !strings.Contains(string(md), "## Sampling schemes") {
		t.Error("report.md lacks the schemes section")
	}
	var sum map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	if json.Unmarshal(b, &sum) != nil || sum["schemes"] == nil {
		t.Error("summary.json lacks schemes")
	}
	src := g.Directions[flat].Source
	fig := "schemes-0-" + src
	if _, err := os.Stat(filepath.Join(out, "figures", fig+".png")); err != nil {
		t.Fatalf("overlay figure: %v", err)
	}
	f, _ := os.Open(filepath.Join(out, "figure_data.csv"))
	rows, _ := csv.NewReader(f).ReadAll()
	f.Close()
	val := map[string]map[float64]float64{}
	for _, row := range rows {
		if row[0] != fig {
			continue
		}
		x, _ := strconv.ParseFloat(row[2], 64)
		y, _ := strconv.ParseFloat(row[3], 64)
		if val[row[1]] == nil {
			val[row[1]] = map[float64]float64{}
		}
		val[row[1]][x] = y
	}
	bridge, disc := val["reshuffled: first order (epoch bridge)"], val["with: discrete theory (eta^2 c t when flat)"]
	if len(bridge) == 0 || len(disc) == 0 || len(val["with replacement measured"]) == 0 || len(val["epoch reshuffling measured"]) == 0 {
		t.Fatalf("figure series: %v", keys(val))
	}
	if got := bridge[4] / disc[4]; math.Abs(got-32.0/63) > 0.01 {
		t.Errorf("bridge / with-replacement theory at mid-epoch: %.4f, want 32/63 = %.4f", got, 32.0/63)
	}
	if end := bridge[16]; end > 1e-3*disc[16] {
		t.Errorf("bridge at the end of epoch 2: %g, want about 0 (eta^2 c t = %g)", end, disc[16])
	}
	_ = eta

	// A partial ensemble (a report while replicas run) has NaN rows and
	// bands: the figures must still be drawn, not panic.
	for _, e := range r.Ensembles {
		for k := range e.Growth.Dirs {
			d := &e.Growth.Dirs[k]
			for i := len(d.Var) - 5; i < len(d.Var); i++ {
				d.Var[i], d.VarLo[i], d.VarHi[i] = math.NaN(), math.NaN(), math.NaN()
			}
		}
	}
	if err := Write(r, filepath.Join(run, "report-partial")); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]map[float64]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSchemeScans: ensembles that differ only in eta are fitted within
// each scheme, never across; the exponent of slopes built as eta^2 (with)
// and eta^4 (without) must come back, on the flat family only.
func TestSchemeScans(t *testing.T) {
	r := &Report{Level: 0.95}
	for _, sampling := range []string{"with", "without"} {
		pow := map[string]float64{"with": 2, "without": 4}[sampling]
		for _, eta := range []float64{0.05, 0.1, 0.2, 0.4} {
			e := &Ensemble{Name: fmt.Sprintf("lr%g-%s", eta, sampling)}
			e.Manifest.LR, e.Manifest.Batch, e.Manifest.Steps, e.Manifest.Sampling = eta, 8, 100, sampling
			e.Manifest.ReferenceSHA256, e.Manifest.DirectionsSHA256 = "ref", "dirs"
			for k, src := range []string{"flat-0", "flat-1", "top-0"} {
				rate := 3 * math.Pow(eta, pow) * float64(k+1)
				if src == "top-0" {
					rate = 1 // not part of the basis: would flatten the fit
				}
				boot := make([]float64, 200)
				for b := range boot {
					boot[b] = rate * (1 + 0.05*math.Sin(float64(b*(k+3))))
				}
				e.Directions = append(e.Directions, Direction{Index: k, Source: src, Class: "diffusive"})
				e.Classes = append(e.Classes, analysis.Classification{Direction: k, Class: analysis.Diffusive,
					LateSlope: analysis.Interval{Est: rate, Lo: 0.95 * rate, Hi: 1.05 * rate}, SlopeBoot: boot})
			}
			r.Ensembles = append(r.Ensembles, e)
		}
	}
	scans := schemeScans(r)
	if len(scans) != 2 {
		t.Fatalf("%d scans, want one per scheme", len(scans))
	}
	for _, sc := range scans {
		want := map[string]float64{"with": 2, "without": 4}[sc.Sampling]
		if sc.Basis != "flat" || sc.Directions != 2 || len(sc.Points) != 4 || sc.Exponent == nil || math.Abs(sc.Exponent.Est-want) > 0.02 || !sc.Exponent.Contains(want) {
			t.Errorf("%s: basis %s over %d directions, %d points, exponent %+v; want flat, 2, 4, %g", sc.Sampling, sc.Basis, sc.Directions, len(sc.Points), sc.Exponent, want)
		}
	}
}

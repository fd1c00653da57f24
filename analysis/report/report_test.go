package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// linregRun trains least squares on generated data with a feature that is
// always zero (an exact null direction), surveys it and runs an ensemble at
// eta * lambda_max = 1, where the discrete theory and Langevin differ by 2x.
func linregRun(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	rng := rand.New(rand.NewPCG(21, 22))
	var sb strings.Builder
	sb.WriteString("x1,x2,x3,x4,y\n")
	for i := 0; i < 600; i++ {
		x := []float64{1.5 * rng.NormFloat64(), rng.NormFloat64(), 0.7 * rng.NormFloat64(), 0}
		y := x[0] - 2*x[1] + 0.5*x[2] + 0.3*rng.NormFloat64()
		fmt.Fprintf(&sb, "%g,%g,%g,%g,%g\n", x[0], x[1], x[2], x[3], y)
	}
	csv := filepath.Join(work, "a<b>.csv") // a file name the HTML must escape
	if err := os.WriteFile(csv, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := train.DefaultConfig("linreg")
	c.Model.DType = "float64"
	c.Data.Path = csv
	c.SGD = train.SGDConfig{LR: 0.05, Batch: 32, Steps: 3000, Sampling: "with"}
	run := filepath.Join(work, "run")
	if _, err := train.Train(context.Background(), run, c, train.Options{}); err != nil {
		t.Fatal(err)
	}
	ref, err := train.LoadReference(run, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ref.NewModel("float64")
	s, err := probe.RunSurvey(context.Background(), m, ref.Data.Train, ref.W, probe.SurveyOptions{Top: 3, Bottom: 1, Bulk: -1, BatchSize: 32,
		Sampling: "with", NoiseBatches: 400, DensityStarts: 1, DensitySteps: 4, TraceSamples: 4, Tol: 1e-10, Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(run, "hessian")
	os.MkdirAll(dir, 0o755)
	var flat []float64
	for _, v := range s.Vectors {
		flat = append(flat, v...)
	}
	npy.WriteNPY(filepath.Join(dir, "directions.npy"), []int{len(s.Vectors), 4}, flat)
	atomicfile.WriteJSON(filepath.Join(dir, "directions.json"), s.Directions)
	atomicfile.WriteJSON(filepath.Join(dir, "spectrum.json"), struct {
		*probe.Survey
		Checkpoint string `json:"checkpoint"`
	}{s, ref.Checkpoint})
	writeNoiseNPZ(t, filepath.Join(dir, "noise.npz"), s)
	var src []string
	for _, d := range s.Directions {
		src = append(src, d.Source)
	}
	eta := 1 / s.Top[0].Value
	ec := train.EnsembleConfig{Name: "oracle", Replicas: 400, Steps: 60, LR: eta, Batch: 32, Sampling: "with", LogEvery: 1, CheckpointEvery: 60, Seed: 5}
	if _, err := train.RunEnsemble(context.Background(), ref, s.Vectors, src, ec, train.Shard{Index: 0, Of: 1}, 2, nil); err != nil {
		t.Fatal(err)
	}
	// Continue training with the trajectory logged on the survey's
	// directions, for the single-run MSD.
	c = ref.Config // the resolved config, as saved: only steps may change
	c.SGD.Steps = 13000
	if _, err := train.Train(context.Background(), run, c, train.Options{Trajectory: &train.TrajectoryOptions{Directions: s.Vectors, LogEvery: 2}}); err != nil {
		t.Fatal(err)
	}
	// eta lambda_max = 2.2: the top direction grows geometrically (x1.44
	// per step in variance), 3e9-fold over 60 steps; batch 256 keeps the
	// multiplicative noise, and so the tails, small.
	ec = train.EnsembleConfig{Name: "unstable", Replicas: 48, Steps: 60, LR: 2.2 / s.Top[0].Value, Batch: 256, Sampling: "with", LogEvery: 1, CheckpointEvery: 60, Seed: 6}
	if _, err := train.RunEnsemble(context.Background(), ref, s.Vectors, src, ec, train.Shard{Index: 0, Of: 1}, 2, nil); err != nil {
		t.Fatal(err)
	}
	// eta lambda_max = 10: every replica overflows within a few hundred steps.
	ec = train.EnsembleConfig{Name: "diverged", Replicas: 8, Steps: 600, LR: 10 / s.Top[0].Value, Batch: 32, Sampling: "with", LogEvery: 1, CheckpointEvery: 600, Seed: 7}
	if _, err := train.RunEnsemble(context.Background(), ref, s.Vectors, src, ec, train.Shard{Index: 0, Of: 1}, 2, nil); err != nil {
		t.Fatal(err)
	}
	return run
}

// writeNoiseNPZ saves the survey's subspace inputs as sgdyn hessian does.
func writeNoiseNPZ(t *testing.T, path string, s *probe.Survey) {
	t.Helper()
	k := len(s.Vectors)
	var hv, cov, g, c []float64
	for i := range k {
		hv = append(hv, s.HV[i]...)
		cov = append(cov, s.CV[i]...)
	}
	for m := range s.Noise.Batches {
		g = append(g, s.Noise.Grad[m]...)
		c = append(c, s.Noise.Curv[m]...)
	}
	if err := npy.WriteNPZ(path, []npy.Array{{Name: "hv", Shape: []int{k, k}, F64: hv}, {Name: "cov", Shape: []int{k, k}, F64: cov},
		{Name: "grad", Shape: []int{s.Noise.Batches, k}, F64: g}, {Name: "curv", Shape: []int{s.Noise.Batches, k, k}, F64: c}}); err != nil {
		t.Fatal(err)
	}
}

func TestReportLinReg(t *testing.T) {
	run := linregRun(t)
	r, err := Build(run, Options{Resamples: 400, Seed: 1, Primary: "oracle"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(run, "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Eta        float64        `json:"eta"`
		Batch      int            `json:"batch"`
		Replicas   int            `json:"replicas"`
		Steps      int64          `json:"steps"`
		Params     int            `json:"params"`
		Classes    map[string]int `json:"classes"`
		Directions []Direction    `json:"directions"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Batch != 32 || sum.Replicas != 400 || sum.Steps != 60 || sum.Params != 4 || len(sum.Directions) != 4 {
		t.Fatalf("summary header: %+v", sum)
	}
	for _, d := range sum.Directions {
		t.Logf("%s: lambda %.3g class %s var %.4g [%.4g, %.4g] discrete %.4g langevin %.4g", d.Source, deref(d.Lambda), d.Class,
			deref(d.VarFinal), deref(d.VarFinalCI[0]), deref(d.VarFinalCI[1]), deref(d.PredDiscrete), deref(d.PredLangevin))
		switch d.Source {
		case "bottom-0": // the always-zero feature: lambda = c = 0 exactly
			if d.Class != "null" {
				t.Errorf("exact null direction classified %s", d.Class)
			}
		case "top-0": // eta lambda = 1: Langevin predicts half the discrete variance
			lo, hi := *d.VarFinalCI[0], *d.VarFinalCI[1]
			if disc := *d.PredDiscrete; disc < lo || disc > hi {
				t.Errorf("top-0: discrete prediction %.4g outside the measured interval [%.4g, %.4g]", disc, lo, hi)
			}
			if lang := *d.PredLangevin; lang >= lo && lang <= hi {
				t.Errorf("top-0: Langevin prediction %.4g inside the measured interval [%.4g, %.4g]", lang, lo, hi)
			}
			if d.Class != "confined" {
				t.Errorf("top-0 classified %s, want confined", d.Class)
			}
		}
		// The subspace recursion (every coupling among the probed
		// directions; exact for linear regression up to the sampled
		// batch statistics) predicts each non-null direction, inside the
		// measured interval like the discrete theory.
		if d.Class == "null" {
			if d.PredSubspace != nil {
				t.Errorf("%s: subspace prediction %g for a null", d.Source, *d.PredSubspace)
			}
			continue
		}
		if d.PredSubspace == nil {
			t.Errorf("%s: no subspace prediction", d.Source)
		} else if sub, lo, hi := *d.PredSubspace, *d.VarFinalCI[0], *d.VarFinalCI[1]; sub < lo || sub > hi {
			t.Errorf("%s: subspace prediction %.4g outside the measured interval [%.4g, %.4g] (discrete %.4g)", d.Source, sub, lo, hi, *d.PredDiscrete)
		}
	}
	if sum.Classes["null"] != 1 || sum.Classes["confined"] < 2 {
		t.Errorf("classes %v, want 1 null and the top directions confined", sum.Classes)
	}
	for _, e := range r.Ensembles {
		switch e.Name {
		case "unstable":
			if c := e.Directions[0].Class; c != "unstable" {
				t.Errorf("top-0 at eta lambda = 2.2 classified %s (%s), want unstable", c, e.Directions[0].Reason)
			}
		case "diverged":
			if e.Diverged != 8 {
				t.Errorf("%d of 8 replicas marked diverged at eta lambda = 10", e.Diverged)
			}
		}
	}
	if notes := strings.Join(r.Notes, " "); !strings.Contains(notes, "8 of 8 replicas diverged") {
		t.Errorf("notes %q do not report the diverged replicas", notes)
	}
	// MSD of the training trajectory (eta lambda_max = 0.05 * 2.2 = 0.11:
	// the top direction relaxes in ~5 steps and plateaus at 2 sigma_inf^2).
	if r.MSD == nil || len(r.MSD.Summaries) != 4 {
		t.Fatalf("no MSD for the logged trajectory: %+v", r.MSD)
	}
	for i, sm := range r.MSD.Summaries {
		t.Logf("MSD %s: %s, log-log slope %.3g, sigma_inf^2 %.4g", r.MSD.Sources[i], sm.Kind, sm.LogLogSlope, sm.SigmaInf2)
	}
	if top := r.MSD.Summaries[0]; top.Kind != "plateau" {
		t.Errorf("MSD of top-0: %s (log-log slope %g), want a plateau", top.Kind, top.LogLogSlope)
	} else if d := sum.Directions[0]; d.Lambda != nil && d.C != nil {
		// Training ran at lr 0.05, batch 32: sigma_inf^2 from the probe.
		want := 0.05 * *d.C / (2**d.Lambda - 0.05**d.Lambda**d.Lambda - 0.05**d.S2)
		if top.SigmaInf2 < want/2 || top.SigmaInf2 > want*2 {
			t.Errorf("MSD plateau gives sigma_inf^2 %.4g, discrete theory %.4g", top.SigmaInf2, want)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if strings.Contains(string(html), "a<b>.csv") || !strings.Contains(string(html), "a&lt;b&gt;.csv") {
		t.Error("index.html does not escape the data file name")
	}
	for _, f := range []string{"report.md", "figure_data.csv", "figures/spectrum.png", "figures/spectrum.svg", "figures/training.png", "figures/stationary-oracle.png", "figures/growth-oracle-confined.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}

	// A replica that has not finished: the report still builds and says so.
	os.Remove(filepath.Join(run, "ensemble", "oracle", "replica-0007", "done.json"))
	r, err = Build(run, Options{Resamples: 50, Primary: "oracle"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Notes, " "), "partial") {
		t.Errorf("notes %q do not say the ensemble is partial", r.Notes)
	}
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
}

func TestBuildRefusesNonRun(t *testing.T) {
	if _, err := Build(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not an sgdyn run") {
		t.Errorf("got %v", err)
	}
}

func TestNumIsJSONSafe(t *testing.T) {
	for _, x := range []float64{math.NaN(), math.Inf(1)} {
		if num(x) != nil {
			t.Errorf("num(%g) = %v, want nil (JSON null)", x, *num(x))
		}
	}
	if p := num(2.5); p == nil || *p != 2.5 {
		t.Error("num(2.5) lost the value")
	}
}

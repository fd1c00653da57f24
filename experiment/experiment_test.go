package experiment_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// reluMLP is a one-hidden-layer ReLU classifier defined as a user's
// Gorgonia graph, with the recording ReLU so that its Hessian-vector
// products hold the activation pattern fixed.
func reluMLP(inputs, hidden, classes int) models.GraphNet {
	dense := func(name string, in, out int) []models.Param {
		return []models.Param{
			{Name: name + ".weight", Shape: []int{in, out}, Init: models.Init{Std: math.Sqrt(2 / float64(in))}},
			{Name: name + ".bias", Shape: []int{out}},
		}
	}
	return models.GraphNet{
		Name:       "relu-mlp",
		Params:     append(dense("hidden", inputs, hidden), dense("out", hidden, classes)...),
		Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			h, err := g.Dense(g.Input(), g.Param("hidden.weight"), g.Param("hidden.bias"))
			if err != nil {
				return nil, nil, err
			}
			if h, err = g.ReLU(h); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(h, g.Param("out.weight"), g.Param("out.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}
}

// newReluMLP is the experiment's model hook for reluMLP.
func newReluMLP(c models.Config, s models.Shape, seed uint64) (models.Model, error) {
	return models.FromGraph(reluMLP(s.Inputs, 8, s.Classes), s, models.GraphOptions{DType: c.DType, Chunk: c.Chunk}, seed)
}

// writeClasses writes n rows of d Gaussian features whose label is the
// argmax of a fixed linear map of them, as a classification CSV.
func writeClasses(t *testing.T, path string, n, d, classes int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]float64, d*classes)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	var b strings.Builder
	for j := range d {
		fmt.Fprintf(&b, "x%d,", j+1)
	}
	b.WriteString("label\n")
	x := make([]float64, d)
	for range n {
		for j := range x {
			x[j] = rng.NormFloat64()
			fmt.Fprintf(&b, "%.6f,", x[j])
		}
		best, arg := math.Inf(-1), 0
		for k := range classes {
			s := 0.0
			for j := range x {
				s += w[j*classes+k] * x[j]
			}
			if s > best {
				best, arg = s, k
			}
		}
		fmt.Fprintf(&b, "%d\n", arg)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// customConfig is a small experiment on the user's ReLU MLP: 240 training
// rows, a Lanczos survey over all of them, and ensembles of 4 replicas
// that span more than one epoch (so both sampling schemes run).
func customConfig(csv string) experiment.Config {
	c := experiment.Default(models.KindCustom)
	c.Seed = 7
	c.Model = models.Config{Kind: models.KindCustom, Name: "relu-mlp", DType: "float32"}
	c.Data = train.DataConfig{Kind: "classification", Path: csv, ValFraction: 0.2}
	c.SGD = train.SGDConfig{LR: 0.2, Batch: 16, Steps: 200, EvalEvery: 50, EvalExamples: 60}
	h := &c.Hessian
	h.EvalExamples, h.Top, h.Bottom, h.Bulk, h.Tol = 1000, 3, 1, 2, 1e-7
	h.NoiseBatches, h.DensityStarts, h.DensitySteps, h.TraceSamples = 4, 1, 8, 2
	c.Ensemble = experiment.EnsembleSection{Replicas: 4, Steps: 20, LogEvery: 5}
	return c
}

// TestCustomModelPipeline runs a model defined through models.FromGraph
// through every stage with experiment's API: training lowers the loss, the
// survey's lambda_max is the top eigenvalue of a dense finite-difference
// Hessian of the frozen-pattern gradient, the ensembles and the report are
// complete, a second Run skips everything, and the run refuses to be
// continued without the model's constructor.
func TestCustomModelPipeline(t *testing.T) {
	work := t.TempDir()
	csv := filepath.Join(work, "classes.csv")
	writeClasses(t, csv, 300, 4, 3)
	dir := filepath.Join(work, "run")
	c := customConfig(csv)
	var out bytes.Buffer
	e, err := experiment.New(c, dir, experiment.Options{Out: &out, Workers: 2, NewModel: newReluMLP})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, err := e.Train(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Steps != 200 || tr.Resumed != 0 {
		t.Errorf("trained %d steps from %d, want 200 from 0", tr.Steps, tr.Resumed)
	}
	s, err := e.Survey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ens, err := e.Ensembles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Training: the validation loss fell well below the initial one.
	if v := r.Training.ValLoss; len(v) < 2 || !(v[len(v)-1] < 0.7*v[0]) {
		t.Errorf("validation loss %v: want the last below 0.7 of the first", v)
	}

	// The survey: the frozen pattern was used, and lambda_max agrees with
	// an independent dense Hessian of the same loss at the same point.
	if s == nil || !s.FrozenPattern || len(s.Top) == 0 {
		t.Fatalf("survey %+v: want a frozen-pattern survey with eigenvalues", s)
	}
	ref, err := train.LoadReferenceWith(dir, "", newReluMLP)
	if err != nil {
		t.Fatal(err)
	}
	hess := denseHessian(t, ref, c.Hessian.EvalExamples)
	var eig mat.EigenSym
	if !eig.Factorize(hess, true) {
		t.Fatal("eigendecomposition failed")
	}
	vals := eig.Values(nil)
	t.Logf("validation loss %.4g -> %.4g; lambda_max %.8g (dense %.8g), lambda_min %.8g (dense %.8g)", r.Training.ValLoss[0], r.Training.ValLoss[len(r.Training.ValLoss)-1],
		s.Top[0].Value, vals[len(vals)-1], s.Bottom[0].Value, vals[0])
	if want := vals[len(vals)-1]; math.Abs(s.Top[0].Value-want) > 1e-6*math.Abs(want) {
		t.Errorf("survey lambda_max %.8g, dense finite-difference Hessian %.8g", s.Top[0].Value, want)
	}
	if want := vals[0]; math.Abs(s.Bottom[0].Value-want) > 1e-6*math.Abs(vals[len(vals)-1]) {
		t.Errorf("survey lambda_min %.8g, dense %.8g", s.Bottom[0].Value, want)
	}
	top := slices.IndexFunc(s.Directions, func(d probe.Direction) bool { return d.Source == "top-0" || d.Source == "top-1" })
	if top < 0 {
		t.Fatalf("no top direction among %d", len(s.Directions))
	}
	v := mat.NewVecDense(len(ref.W), s.Vectors[top])
	if q := mat.Inner(v, hess, v); math.Abs(q-s.Top[0].Value) > 1e-6*s.Top[0].Value {
		t.Errorf("Rayleigh quotient of the top direction %.8g, lambda_max %.8g", q, s.Top[0].Value)
	}

	// The ensembles: one per scheme (20 steps of 16 span 1.3 epochs of 240
	// rows), every replica complete, starting at the reference point.
	names := []string{"lr0.2-b16-with", "lr0.2-b16-without"}
	if len(ens) != len(names) {
		t.Fatalf("%d ensembles, want %v", len(ens), names)
	}
	for i, name := range names {
		ed, err := train.LoadEnsemble(train.EnsembleDir(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if ens[i].Ran != 4 || ed.Manifest.Model != models.KindCustom || !slices.Equal(ed.Steps, []int64{0, 5, 10, 15, 20}) {
			t.Errorf("%s: ran %d, model %q, steps %v; want 4 custom replicas logged at 0, 5, ..., 20", name, ens[i].Ran, ed.Manifest.Model, ed.Steps)
		}
		for _, f := range []string{"projections.npy", "loss.npy", "distance.npy", "steps.npy"} {
			if _, err := os.Stat(filepath.Join(ed.Dir, f)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		for rep := range ed.Proj {
			if ed.Status[rep] != train.StatusComplete || len(ed.Proj[rep]) != 5 || len(ed.Proj[rep][0]) != len(s.Directions) {
				t.Fatalf("%s replica %d: status %s, %d x %d projections; want complete, 5 x %d", name, rep, ed.Status[rep], len(ed.Proj[rep]), len(ed.Proj[rep][0]), len(s.Directions))
			}
			if ed.Dist[rep][0] != 0 || !(ed.Dist[rep][4] > 0) {
				t.Errorf("%s replica %d: distance %v, want 0 at the start and positive after", name, rep, ed.Dist[rep])
			}
		}
		if ed.Dist[0][4] == ed.Dist[1][4] {
			t.Errorf("%s: replicas 0 and 1 end at the same distance %g: their minibatch streams are not independent", name, ed.Dist[0][4])
		}
	}

	// The report covers both ensembles and every direction.
	if len(r.Ensembles) != 2 {
		t.Fatalf("report of %d ensembles, want 2", len(r.Ensembles))
	}
	for _, re := range r.Ensembles {
		total := 0
		for _, n := range re.Counts {
			total += n
		}
		if total != len(s.Directions) {
			t.Errorf("report %s classifies %d directions, want %d", re.Name, total, len(s.Directions))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "report", "index.html")); err != nil {
		t.Error(err)
	}

	// The run records the custom model, and a second Run skips every stage.
	saved, err := os.ReadFile(filepath.Join(dir, train.ConfigFile))
	if err != nil || !bytes.Contains(saved, []byte("kind: custom")) || !bytes.Contains(saved, []byte("name: relu-mlp")) {
		t.Errorf("config.yaml does not record the custom model (%v):\n%s", err, saved)
	}
	out.Reset()
	again, err := experiment.New(c, dir, experiment.Options{Out: &out, NewModel: newReluMLP})
	if err != nil {
		t.Fatal(err)
	}
	res, err := again.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Survey != nil || res.Train.Resumed != 200 || res.Ensembles[0].Ran != 0 || res.Ensembles[0].Skipped != 4 {
		t.Errorf("second run: survey rerun %v, resumed at %d, ensemble ran %d; want everything skipped", res.Survey != nil, res.Train.Resumed, res.Ensembles[0].Ran)
	}
	for _, want := range []string{"[1/4] train custom relu-mlp", "already trained", "survey up to date", "[4/4] report"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("second run's output lacks %q:\n%s", want, out.String())
		}
	}

	// Without the constructor the run is refused, in one line.
	if _, err := experiment.New(c, dir, experiment.Options{}); err == nil || !strings.Contains(err.Error(), "relu-mlp") || strings.Contains(err.Error(), "\n") {
		t.Errorf("experiment without the model hook: %v", err)
	}
	if _, err := train.LoadReference(dir, ""); err == nil || !strings.Contains(err.Error(), "custom model") || strings.Contains(err.Error(), "\n") {
		t.Errorf("loading the run without the model hook: %v", err)
	}
	builtin := c
	builtin.Model = models.Config{Kind: "mlp"}
	if _, err := experiment.New(builtin, filepath.Join(work, "other"), experiment.Options{NewModel: newReluMLP}); err == nil || !strings.Contains(err.Error(), "custom") {
		t.Errorf("a model hook with a built-in kind: %v", err)
	}
}

// denseHessian is the Hessian of the mean loss over the survey's
// evaluation set at ref's parameters, by central differences of the
// gradient with the activation pattern of ref's point held fixed.
func denseHessian(t *testing.T, ref *train.Reference, evalExamples int) *mat.SymDense {
	t.Helper()
	m, err := ref.NewProbeModel()
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := m.(models.Piecewise)
	if !ok {
		t.Fatalf("the user's ReLU graph (%T) is not a models.Piecewise", m)
	}
	var b data.Batch
	ref.Data.Train.Fill(&b, data.EvenlySpaced(ref.Data.Train.Len(), evalExamples))
	pat, err := pw.RecordPattern(&b)
	if err != nil {
		t.Fatal(err)
	}
	p := len(ref.W)
	const h = 1e-4
	cols := make([][]float64, p)
	w := slices.Clone(ref.W)
	gp, gm := make([]float64, p), make([]float64, p)
	for j := range p {
		w[j] = ref.W[j] + h
		m.SetParams(w)
		if _, err := pw.GradFrozen(&b, pat, gp); err != nil {
			t.Fatal(err)
		}
		w[j] = ref.W[j] - h
		m.SetParams(w)
		if _, err := pw.GradFrozen(&b, pat, gm); err != nil {
			t.Fatal(err)
		}
		w[j] = ref.W[j]
		cols[j] = make([]float64, p)
		for i := range p {
			cols[j][i] = (gp[i] - gm[i]) / (2 * h)
		}
	}
	hess := mat.NewSymDense(p, nil)
	for i := range p {
		for j := i; j < p; j++ {
			hess.SetSym(i, j, (cols[i][j]+cols[j][i])/2)
		}
	}
	return hess
}

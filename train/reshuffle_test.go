package train

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/analysis"
)

// linregSetup is a float64 linear-regression run of n training examples
// whose reference point is their exact least-squares solution.
type linregSetup struct {
	ref   *Reference
	dirs  [][]float64 // Hessian eigenvectors, ascending eigenvalue
	lams  []float64
	rows  [][]float64 // a_n
	grads [][]float64 // per-example gradients a_n (a_n . theta* - y_n) at theta*
}

// newLinregSetup writes the rows (features, then target) as a CSV and loads
// the first n as the training set.
func newLinregSetup(t *testing.T, data [][]float64, n int) *linregSetup {
	t.Helper()
	d := len(data[0]) - 1
	var sb strings.Builder
	for j := 1; j <= d; j++ {
		sb.WriteString("x" + strconv.Itoa(j) + ",")
	}
	sb.WriteString("y\n")
	for _, row := range data {
		for j, v := range row {
			if j > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(strconv.FormatFloat(v, 'g', 17, 64))
		}
		sb.WriteString("\n")
	}
	dir := t.TempDir()
	csv := filepath.Join(dir, "reg.csv")
	if err := os.WriteFile(csv, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig("linreg")
	c.Model.DType = "float64"
	c.Data.Path = csv
	c.Data.Limit = n
	c = c.WithDefaults()
	ds, err := LoadData(c)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.Len() != n {
		t.Fatalf("training set of %d, want %d", ds.Train.Len(), n)
	}
	A := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	for i := range n {
		copy(A.RawRowView(i), data[i][:d])
		y[i] = data[i][d]
	}
	var theta mat.VecDense
	if err := theta.SolveVec(A, mat.NewVecDense(n, y)); err != nil {
		t.Fatal(err)
	}
	H := mat.NewSymDense(d, nil)
	H.SymOuterK(1/float64(n), A.T())
	var eig mat.EigenSym
	eig.Factorize(H, true)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	s := &linregSetup{lams: eig.Values(nil)}
	for i := range d {
		s.dirs = append(s.dirs, mat.Col(nil, i, &vecs))
	}
	for i := range n {
		a := A.RawRowView(i)
		r := mat.Dot(mat.NewVecDense(d, a), &theta) - y[i]
		g := make([]float64, d)
		for j := range g {
			g[j] = r * a[j]
		}
		s.rows = append(s.rows, append([]float64(nil), a...))
		s.grads = append(s.grads, g)
	}
	s.ref = &Reference{Dir: dir, Config: c, Data: ds, Checkpoint: "exact least-squares solution", W: theta.RawVector().Data}
	return s
}

// exactReshuffled returns, after every step 1..epochs*S (S = n/b steps per
// epoch), the exact mean and second moment E[x x^T] of x = theta - theta*
// for SGD with epoch reshuffling, by enumerating every ordered partition of
// the n examples into the S batches of an epoch. Within an epoch
// x_k = M_k x_0 + v_k for each partition; epochs are independent.
func exactReshuffled(s *linregSetup, eta float64, b, epochs int) (means [][]float64, moments []*mat.Dense) {
	n, d := len(s.rows), len(s.rows[0])
	spe := n / b
	type path struct{ M, V []*mat.Dense } // after steps 1..spe
	var paths []path
	used := make([]bool, n)
	batches := make([][]int, 0, spe)
	var rec func(cur []int)
	// Batches as sets (their order inside does not matter), in every order.
	rec = func(cur []int) {
		if len(cur) == b {
			batches = append(batches, append([]int(nil), cur...))
			if len(batches) == spe {
				p := path{}
				M := mat.NewDense(d, d, nil)
				for i := range d {
					M.Set(i, i, 1)
				}
				V := mat.NewDense(d, 1, nil)
				for _, bt := range batches {
					HB := mat.NewDense(d, d, nil)
					gB := mat.NewDense(d, 1, nil)
					for _, e := range bt {
						for i := range d {
							gB.Set(i, 0, gB.At(i, 0)+s.grads[e][i]/float64(b))
							for j := range d {
								HB.Set(i, j, HB.At(i, j)+s.rows[e][i]*s.rows[e][j]/float64(b))
							}
						}
					}
					step := mat.NewDense(d, d, nil)
					step.Scale(-eta, HB)
					for i := range d {
						step.Set(i, i, 1+step.At(i, i))
					}
					var nm, nv mat.Dense
					nm.Mul(step, M)
					nv.Mul(step, V)
					gB.Scale(eta, gB)
					nv.Sub(&nv, gB)
					M, V = &nm, &nv
					p.M, p.V = append(p.M, M), append(p.V, V)
				}
				paths = append(paths, p)
			} else {
				rec(nil)
			}
			batches = batches[:len(batches)-1]
			return
		}
		start := 0
		if len(cur) > 0 {
			start = cur[len(cur)-1] + 1
		}
		for e := start; e < n; e++ {
			if !used[e] {
				used[e] = true
				rec(append(cur, e))
				used[e] = false
			}
		}
	}
	rec(nil)
	m0 := mat.NewDense(d, 1, nil)
	S0 := mat.NewDense(d, d, nil)
	inv := 1 / float64(len(paths))
	for range epochs {
		for k := range spe {
			m := mat.NewDense(d, 1, nil)
			S := mat.NewDense(d, d, nil)
			for _, p := range paths {
				var mx, t1, t2, mv, vm mat.Dense
				mx.Mul(p.M[k], m0)
				mx.Add(&mx, p.V[k])
				m.Add(m, &mx)
				t1.Mul(p.M[k], S0)
				t2.Mul(&t1, p.M[k].T())
				S.Add(S, &t2)
				mv.Mul(p.M[k], m0)
				vm.Mul(&mv, p.V[k].T())
				S.Add(S, &vm)
				S.Add(S, vm.T())
				var vv mat.Dense
				vv.Mul(p.V[k], p.V[k].T())
				S.Add(S, &vv)
			}
			m.Scale(inv, m)
			S.Scale(inv, S)
			means = append(means, mat.Col(nil, 0, m))
			moments = append(moments, S)
			if k == spe-1 {
				m0, S0 = m, S
			}
		}
	}
	return means, moments
}

// projVar returns the sample variance of replicas' projections on direction
// k at time index i, and its standard error from the sample fourth moment.
func projVar(e *EnsembleData, i, k int) (v, se float64) {
	R := float64(len(e.Proj))
	var mean float64
	for r := range e.Proj {
		mean += e.Proj[r][i][k] / R
	}
	var m2, m4 float64
	for r := range e.Proj {
		d := (e.Proj[r][i][k] - mean) * (e.Proj[r][i][k] - mean)
		m2 += d / R
		m4 += d * d / R
	}
	return m2 * R / (R - 1), math.Sqrt(math.Max(m4-m2*m2, 0) / R)
}

// TestEnsembleMatchesExactReshuffling is the reshuffling oracle: 8
// examples in dimension 4, batches of 2 (4 steps per epoch), and the exact
// moments by enumeration of all 2520 ordered partitions of each epoch. The
// ensemble code, with the ordinary and with the paired permutations, must
// match them within 4 standard errors after every step of 3 epochs, mid-epoch
// and at epoch ends. The i.i.d.-batch recursion, with the one-step
// covariance of sampling without replacement, must fail at the epoch ends:
// otherwise the test could not tell a reshuffling sampler from one that
// draws a fresh subset each step.
func TestEnsembleMatchesExactReshuffling(t *testing.T) {
	const n, d, b, epochs, R = 8, 4, 2, 3, 300
	rng := rand.New(rand.NewPCG(21, 22))
	scale := []float64{1.2, 1, 0.7, 0.4}
	var data [][]float64
	for range 20 {
		row := make([]float64, d+1)
		for j := range d {
			row[j] = scale[j] * rng.NormFloat64()
			row[d] += float64(j+1) * row[j]
		}
		row[d] += 0.8 * rng.NormFloat64()
		data = append(data, row)
	}
	s := newLinregSetup(t, data, n)
	eta := 0.5 / s.lams[d-1]
	T := int64(epochs * n / b)
	means, moments := exactReshuffled(s, eta, b, epochs)

	A := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	for i := range n {
		copy(A.RawRowView(i), s.rows[i])
		y[i] = data[i][d]
	}
	lr, err := analysis.NewLinReg(A, y)
	if err != nil {
		t.Fatal(err)
	}
	var iidSteps []int
	for st := 1; st <= int(T); st++ {
		iidSteps = append(iidSteps, st)
	}
	iid, err := lr.Recursion(eta, b, analysis.WithoutReplacement, iidSteps)
	if err != nil {
		t.Fatal(err)
	}

	for _, paired := range []bool{false, true} {
		c := EnsembleConfig{Name: "reshuffled", Replicas: R, Steps: T, LR: eta, Batch: b, Sampling: "without", LogEvery: 1, CheckpointEvery: T, Seed: 5, Paired: paired}
		if paired {
			c.Name = "paired"
		}
		if _, err := RunEnsemble(context.Background(), s.ref, s.dirs, nil, c, Shard{0, 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
		e, err := MergeEnsemble(EnsembleDir(s.ref.Dir, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		if e.Manifest.TrainExamples != n {
			t.Errorf("manifest records %d training examples, want %d", e.Manifest.TrainExamples, n)
		}
		rejected, minZ := 0, math.Inf(1)
		for st := 1; st <= int(T); st++ {
			for k, u := range s.dirs {
				uv := mat.NewVecDense(d, u)
				mu := mat.Dot(uv, mat.NewVecDense(d, means[st-1]))
				want := mat.Inner(uv, moments[st-1], uv) - mu*mu
				got, se := projVar(e, st, k)
				if math.Abs(got-want) > 4*se {
					t.Errorf("paired %v, step %d, direction %d: ensemble variance %.5g +- %.2g, exact %.5g", paired, st, k, got, se, want)
				}
				if st%(n/b) == 0 {
					w := mat.Inner(uv, iid[st-1], uv)
					if math.Abs(got-w) > 6*se {
						rejected++
					}
					minZ = math.Min(minZ, math.Abs(got-w)/se)
				}
			}
		}
		if rejected < d {
			t.Errorf("paired %v: the i.i.d.-batch recursion is rejected at only %d of %d epoch-end comparisons", paired, rejected, d*epochs)
		}
		t.Logf("paired %v: the i.i.d.-batch recursion is off by %.1f standard errors or more at every epoch end", paired, minZ)
	}
}

// TestFlatDirectionSchemes: along a nearly flat direction of linear
// regression (eta lambda T = 2e-3), the with-replacement ensemble grows as
// eta^2 c t (c = sigma_u^2 / b): its late-slope bootstrap interval contains
// eta^2 c and it is classified diffusive. The reshuffled ensemble follows the
// bridge of THEORY.md section 9 within each epoch, peaking mid-epoch and
// returning at the epoch ends to a small fraction of eta^2 c t.
func TestFlatDirectionSchemes(t *testing.T) {
	const n, b, R = 64, 8, 400
	const spe = n / b
	rng := rand.New(rand.NewPCG(31, 32))
	var data [][]float64
	for range 80 {
		x1, x2 := rng.NormFloat64(), 0.01*rng.NormFloat64()
		data = append(data, []float64{x1, x2, 2*x1 + x2 + rng.NormFloat64()})
	}
	s := newLinregSetup(t, data, n)
	flat := 0 // ascending eigenvalues
	eta := 0.5 / s.lams[1]
	const T = 6 * spe
	if x := eta * s.lams[flat] * T; x > 0.01 {
		t.Fatalf("direction not flat over the window: eta lambda T = %g", x)
	}
	var mean, sigma2 float64
	for _, g := range s.grads {
		mean += mat.Dot(mat.NewVecDense(2, g), mat.NewVecDense(2, s.dirs[flat])) / n
	}
	for _, g := range s.grads {
		p := mat.Dot(mat.NewVecDense(2, g), mat.NewVecDense(2, s.dirs[flat])) - mean
		sigma2 += p * p / n
	}
	cWith := sigma2 / b
	slope := analysis.FlatSlope(eta, cWith)

	growth := func(sampling string) (*analysis.Growth, *EnsembleData) {
		c := EnsembleConfig{Name: sampling, Replicas: R, Steps: T, LR: eta, Batch: b, Sampling: sampling, LogEvery: 1, CheckpointEvery: T, Seed: 9, Paired: sampling == "without"}
		if _, err := RunEnsemble(context.Background(), s.ref, s.dirs, nil, c, Shard{0, 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
		e, err := MergeEnsemble(EnsembleDir(s.ref.Dir, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		g, err := analysis.VarianceGrowth(analysis.Ensemble{Eta: eta, Batch: b, Steps: e.Steps, Proj: e.Proj, Diverged: e.Diverged},
			analysis.GrowthOptions{Resamples: 400, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		return g, e
	}

	with, ew := growth("with")
	cls, err := analysis.Classify(with, nil, analysis.ClassifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := cls[flat]; !c.LateSlope.Contains(slope) || c.Class != analysis.Diffusive {
		t.Errorf("with replacement: late slope %.4g [%.4g, %.4g], class %s; want an interval containing eta^2 c = %.4g, diffusive",
			c.LateSlope.Est, c.LateSlope.Lo, c.LateSlope.Hi, c.Class, slope)
	}

	without, eo := growth("without")
	dg := without.Dirs[flat]
	// Common random numbers: after one step the paired replicas have
	// mostly the same batch (each position agrees with probability
	// (N - j)/N), so their displacements are strongly correlated.
	var sxy, sxx, syy float64
	for r := range R {
		x, y := ew.Proj[r][1][flat], eo.Proj[r][1][flat]
		sxy, sxx, syy = sxy+x*y, sxx+x*x, syy+y*y
	}
	corr := sxy / math.Sqrt(sxx*syy)
	if corr < 0.8 {
		t.Errorf("paired schemes: correlation %.3f of the first-step displacements, want > 0.8", corr)
	}
	for i, st := range without.Steps {
		if st == 0 {
			continue
		}
		want := analysis.BridgeVariance(eta, sigma2, n, b, float64(st))
		k := st % spe
		switch {
		case st <= spe && k != 0: // first epoch: the bridge, to first order
			if se := dg.RelSEKurt[i] * dg.Var[i]; math.Abs(dg.Var[i]-want) > 4*se {
				t.Errorf("without, step %d: variance %.4g +- %.2g, bridge %.4g", st, dg.Var[i], se, want)
			}
		case k == spe/2: // mid-epoch later on: the bridge plus what the epochs left
			if se := dg.RelSEKurt[i] * dg.Var[i]; dg.Var[i]+4*se < want || dg.Var[i] > 0.6*slope*float64(st) {
				t.Errorf("without, step %d: mid-epoch variance %.4g +- %.2g, want at least the bridge %.4g and well below eta^2 c t = %.4g", st, dg.Var[i], se, want, slope*float64(st))
			}
		case k == 0: // epoch end: the bridge is back at 0 (b divides n)
			if dg.Var[i] > 0.1*slope*float64(st) {
				t.Errorf("without, epoch end %d: variance %.4g, want below 10%% of eta^2 c t = %.4g", st, dg.Var[i], slope*float64(st))
			}
		}
	}
	t.Logf("flat direction: eta^2 c = %.4g per step; with: late slope %.4g [%.4g, %.4g]; without at the last epoch end: %.4g (eta^2 c t = %.4g); first-step correlation of paired replicas %.3f",
		slope, cls[flat].LateSlope.Est, cls[flat].LateSlope.Lo, cls[flat].LateSlope.Hi, dg.Var[len(dg.Var)-1], slope*T, corr)
}

// TestManifestBeforeTrainExamples: an ensemble recorded before manifests
// held N (and paired) keeps its fingerprint, so it resumes and merges;
// rerunning records N in its manifest.
func TestManifestBeforeTrainExamples(t *testing.T) {
	ref, dirs, _, _, _ := linregReference(t, 40, 2)
	c := ensembleConfig("old", 2, 6)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := RunEnsemble(cancelled, ref, dirs, nil, c, Shard{0, 1}, 1, nil); err == nil {
		t.Fatal("a cancelled run finished")
	}
	dir := EnsembleDir(ref.Dir, "old")
	path := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	if raw["train_examples"] != float64(ref.Data.Train.Len()) {
		t.Fatalf("manifest train_examples %v, want %d", raw["train_examples"], ref.Data.Train.Len())
	}
	if _, ok := raw["paired"]; ok {
		t.Error("an unpaired manifest records paired: its fingerprint changed")
	}
	delete(raw, "train_examples")
	b, _ = json.Marshal(raw)
	os.WriteFile(path, b, 0o644)
	if _, err := RunEnsemble(ctx, ref, dirs, nil, c, Shard{0, 1}, 1, nil); err != nil {
		t.Fatalf("resuming an ensemble with an old manifest: %v", err)
	}
	e, err := MergeEnsemble(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e.Manifest.TrainExamples != ref.Data.Train.Len() {
		t.Errorf("resumed manifest has train_examples %d, want %d", e.Manifest.TrainExamples, ref.Data.Train.Len())
	}
}

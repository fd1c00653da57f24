package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
)

// linregReference builds a float64 linear-regression run on generated data
// whose reference point is the exact least-squares solution of the
// training part, with the eigenvectors of its Hessian as directions.
func linregReference(t *testing.T, n, d int) (*Reference, [][]float64, []float64, *mat.SymDense, [][]float64) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	var sb strings.Builder
	for j := 1; j <= d; j++ {
		sb.WriteString("x" + itoa(j) + ",")
	}
	sb.WriteString("y\n")
	scale := []float64{1.5, 1, 0.6, 0.3}
	for i := 0; i < n; i++ {
		var y float64
		for j := 0; j < d; j++ {
			x := scale[j%len(scale)] * rng.NormFloat64()
			y += float64(j+1) * x
			sb.WriteString(fmtG(x) + ",")
		}
		sb.WriteString(fmtG(y+0.5*rng.NormFloat64()) + "\n")
	}
	csv := filepath.Join(dir, "reg.csv")
	os.WriteFile(csv, []byte(sb.String()), 0o644)
	c := DefaultConfig("linreg")
	c.Model.DType = "float64"
	c.Data.Path = csv
	c = c.WithDefaults()
	ds, err := LoadData(c)
	if err != nil {
		t.Fatal(err)
	}
	N := ds.Train.Len()
	all := make([]int, N)
	for i := range all {
		all[i] = i
	}
	var b data.Batch
	ds.Train.Fill(&b, all)
	A := mat.NewDense(N, d, b.X)
	var theta mat.VecDense
	if err := theta.SolveVec(A, mat.NewVecDense(N, b.Targets)); err != nil {
		t.Fatal(err)
	}
	H := mat.NewSymDense(d, nil)
	H.SymOuterK(1/float64(N), A.T())
	var eig mat.EigenSym
	eig.Factorize(H, true)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	dirs := make([][]float64, d)
	for i := range dirs {
		dirs[i] = mat.Col(nil, i, &vecs)
	}
	ref := &Reference{Dir: dir, Config: c, Data: ds, Checkpoint: "exact least-squares solution", W: theta.RawVector().Data}
	// Per-example residual-weighted inputs for the exact recursion.
	resid := make([]float64, N)
	for i := range resid {
		resid[i] = mat.Dot(A.RowView(i), &theta) - b.Targets[i]
	}
	rows := make([][]float64, N)
	for i := range rows {
		rows[i] = mat.Row(nil, i, A)
	}
	return ref, dirs, resid, H, rows
}

func itoa(i int) string { return string(rune('0' + i)) }

func ensembleConfig(name string, replicas int, steps int64) EnsembleConfig {
	return EnsembleConfig{Name: name, Replicas: replicas, Steps: steps, LR: 0.05, Batch: 4, Sampling: "with", LogEvery: 1, CheckpointEvery: 3, Seed: 7}
}

func trajectories(t *testing.T, dir string, replicas int) [][]byte {
	t.Helper()
	var out [][]byte
	for r := 0; r < replicas; r++ {
		b, err := os.ReadFile(filepath.Join(replicaDir(dir, r), TrajectoryFile))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestEnsembleReproducible checks that a replica's trajectory depends only on
// its index: not on R, on sharding, on workers, or on interruptions.
func TestEnsembleReproducible(t *testing.T) {
	ref, dirs, _, _, _ := linregReference(t, 120, 3)
	ctx := context.Background()
	run := func(name string, replicas int, shard Shard, workers int) string {
		if _, err := RunEnsemble(ctx, ref, dirs, nil, ensembleConfig(name, replicas, 10), shard, workers, nil); err != nil {
			t.Fatal(err)
		}
		return EnsembleDir(ref.Dir, name)
	}
	want := trajectories(t, run("whole", 4, Shard{0, 1}, 1), 4)
	run("sharded", 4, Shard{1, 2}, 2)
	sharded := run("sharded", 4, Shard{0, 2}, 1)
	small := run("small", 2, Shard{0, 1}, 2)
	for r, b := range trajectories(t, sharded, 4) {
		if !bytes.Equal(b, want[r]) {
			t.Errorf("replica %d: sharded run differs from the unsharded one", r)
		}
	}
	for r, b := range trajectories(t, small, 2) {
		if !bytes.Equal(b, want[r]) {
			t.Errorf("replica %d: a 2-replica ensemble differs from a 4-replica one", r)
		}
	}
	if bytes.Equal(want[0], want[1]) {
		t.Error("replicas 0 and 1 are identical: streams are not independent")
	}

	// Interrupt after every replica's first step, then after a few more, then finish.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for i := 0; i < 2; i++ {
		if _, err := RunEnsemble(cctx, ref, dirs, nil, ensembleConfig("resumed", 4, 10), Shard{0, 1}, 2, nil); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("cancelled run: got %v, want ErrInterrupted", err)
		}
	}
	resumed := run("resumed", 4, Shard{0, 1}, 2)
	for r, b := range trajectories(t, resumed, 4) {
		if !bytes.Equal(b, want[r]) {
			t.Errorf("replica %d: resumed run differs from the uninterrupted one", r)
		}
	}

	// Merge: complete ensembles merge; a mixed one is refused.
	e, err := MergeEnsemble(EnsembleDir(ref.Dir, "whole"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Proj) != 4 || len(e.Steps) != 11 || e.Proj[2][0][0] != 0 {
		t.Errorf("merged %d replicas x %d steps, p(0) = %g; want 4 x 11 and 0", len(e.Proj), len(e.Steps), e.Proj[2][0][0])
	}
	stray := replicaDir(EnsembleDir(ref.Dir, "whole"), 1)
	os.Rename(filepath.Join(replicaDir(small, 1), replicaJSON), filepath.Join(stray, replicaJSON))
	if _, err := MergeEnsemble(EnsembleDir(ref.Dir, "whole")); err == nil || !strings.Contains(err.Error(), "mixed") {
		t.Errorf("merging a replica of another ensemble: got %v, want a mixed-ensemble error", err)
	}
	os.MkdirAll(replicaDir(small, 5), 0o755)
	if _, err := MergeEnsemble(small); err == nil || !strings.Contains(err.Error(), "not part") {
		t.Errorf("a stray replica-0005 in a 2-replica ensemble: got %v", err)
	}
	if _, err := RunEnsemble(ctx, ref, dirs, nil, func() EnsembleConfig { c := ensembleConfig("whole", 4, 10); c.LR = 0.1; return c }(), Shard{0, 1}, 1, nil); err == nil {
		t.Error("reusing an ensemble name with other settings succeeded")
	}
}

// TestEnsembleMatchesExactRecursion is the end-to-end oracle: linear
// regression from the exact least-squares solution, where the covariance
// recursion of THEORY.md section 2 is exact. The ensemble variance along
// each Hessian eigendirection must match it within 3 standard errors.
func TestEnsembleMatchesExactRecursion(t *testing.T) {
	const d, b, R, T = 3, 8, 500, 25
	ref, dirs, resid, H, rows := linregReference(t, 90, d)
	var eig mat.EigenSym
	eig.Factorize(H, false)
	lmax := eig.Values(nil)[d-1]
	eta := 0.8 / lmax // eta*lambda_max = 0.8: discrete effects are large, tails still light at b = 8
	c := EnsembleConfig{Name: "oracle", Replicas: R, Steps: T, LR: eta, Batch: b, Sampling: "with", LogEvery: 1, CheckpointEvery: T, Seed: 3}
	if _, err := RunEnsemble(context.Background(), ref, dirs, nil, c, Shard{0, 1}, 2, nil); err != nil {
		t.Fatal(err)
	}
	e, err := MergeEnsemble(EnsembleDir(ref.Dir, "oracle"))
	if err != nil {
		t.Fatal(err)
	}
	// Exact recursion, with replacement:
	// S' = S - eta (H S + S H) + eta^2 (H S H + (E_n[a a^T S a a^T] - H S H) / b) + eta^2 C_1 / b.
	N := len(rows)
	C1 := mat.NewDense(d, d, nil)
	for n, a := range rows {
		g := mat.NewVecDense(d, nil)
		g.ScaleVec(resid[n], mat.NewVecDense(d, a))
		C1.RankOne(C1, 1/float64(N), g, g) // mean gradient is 0 at the solution
	}
	S := mat.NewDense(d, d, nil)
	for step := 0; step < T; step++ {
		var HS, SH, HSH, next mat.Dense
		HS.Mul(H, S)
		SH.Mul(S, H)
		HSH.Mul(&HS, H)
		fourth := mat.NewDense(d, d, nil)
		for _, a := range rows {
			av := mat.NewVecDense(d, a)
			q := mat.Inner(av, S, av)
			fourth.RankOne(fourth, q/float64(N), av, av)
		}
		next.Add(&HS, &SH)
		next.Scale(-eta, &next)
		next.Add(S, &next)
		var extra mat.Dense
		extra.Sub(fourth, &HSH)
		extra.Scale(1/float64(b), &extra)
		extra.Add(&extra, &HSH)
		extra.Scale(eta*eta, &extra)
		next.Add(&next, &extra)
		var noise mat.Dense
		noise.Scale(eta*eta/float64(b), C1)
		next.Add(&next, &noise)
		S = &next
	}
	for i, u := range dirs {
		uv := mat.NewVecDense(d, u)
		want := mat.Inner(uv, S, uv)
		var mean, m2 float64
		for r := 0; r < R; r++ {
			mean += e.Proj[r][T][i] / R
		}
		for r := 0; r < R; r++ {
			m2 += (e.Proj[r][T][i] - mean) * (e.Proj[r][T][i] - mean)
		}
		got := m2 / (R - 1)
		se := want * math.Sqrt(2.0/(R-1))
		if math.Abs(got-want) > 3*se {
			t.Errorf("direction %d: ensemble variance %.5g, exact recursion %.5g (3 s.e. = %.2g)", i, got, want, 3*se)
		}
		t.Logf("direction %d: ensemble variance %.5g, exact %.5g, s.e. %.2g", i, got, want, se)
	}
}

// TestEnsembleDivergence checks that replicas that blow up are marked at
// the step they diverge and the others are kept.
func TestEnsembleDivergence(t *testing.T) {
	ref, dirs, _, H, _ := linregReference(t, 60, 2)
	var eig mat.EigenSym
	eig.Factorize(H, false)
	c := ensembleConfig("diverge", 3, 400)
	c.LR = 10 / eig.Values(nil)[1] // eta*lambda_max = 10: |1 - 10|^400 overflows float64
	res, err := RunEnsemble(context.Background(), ref, dirs, nil, c, Shard{0, 1}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diverged != 3 {
		t.Fatalf("%d of 3 replicas diverged, want 3", res.Diverged)
	}
	e, err := MergeEnsemble(EnsembleDir(ref.Dir, "diverge"))
	if err != nil {
		t.Fatal(err)
	}
	for r := range e.Status {
		if e.Status[r] != StatusDiverged || e.Diverged[r] < 2 || e.Diverged[r] > 400 || int64(e.Rows[r]) != e.Diverged[r] {
			t.Errorf("replica %d: status %s at step %d with %d rows", r, e.Status[r], e.Diverged[r], e.Rows[r])
		}
	}
}

func TestCheckpointDue(t *testing.T) {
	c := EnsembleConfig{CheckpointEvery: 50}
	for _, tc := range []struct {
		after time.Duration
		done  int64
		since time.Duration
		want  bool
	}{
		{0, 50, 0, true},
		{0, 51, time.Hour, false},
		{30 * time.Second, 100, 10 * time.Second, false},
		{30 * time.Second, 100, 30 * time.Second, true},
		{30 * time.Second, 101, time.Minute, false},
	} {
		c.CheckpointAfter = tc.after
		if got := c.checkpointDue(tc.done, tc.since); got != tc.want {
			t.Errorf("every 50 steps, after %v: step %d, %v since the last: due %v, want %v", tc.after, tc.done, tc.since, got, tc.want)
		}
	}
	c = ensembleConfig("e", 2, 10)
	c.CheckpointAfter = -time.Second
	if err := c.Validate(100); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative interval: got %v", err)
	}
}

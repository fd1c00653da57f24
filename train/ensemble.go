package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
)

// EnsembleConfig is one ensemble: R replicas of plain SGD from the same
// reference point, each with its own minibatch stream.
type EnsembleConfig struct {
	Name            string  `json:"name"`
	Replicas        int     `json:"replicas"`
	Steps           int64   `json:"steps"`
	LR              float64 `json:"lr"`
	Batch           int     `json:"batch"`
	Sampling        string  `json:"sampling"`
	LogEvery        int64   `json:"log_every"`
	SnapshotEvery   int64   `json:"snapshot_every"`
	CheckpointEvery int64   `json:"checkpoint_every"`
	// CheckpointAfter holds a replica's periodic checkpoint (at a multiple
	// of CheckpointEvery) back until this long after its start or its last
	// checkpoint; 0 writes every one. A checkpoint costs several fsyncs
	// (about 8 ms here), more than a short replica's steps between them:
	// of 500 tiny-transformer steps, 9 checkpoints took a third of the
	// time. An interrupted replica always checkpoints. How often to
	// checkpoint does not make replicas of different ensembles, so it is
	// not in the manifest.
	CheckpointAfter time.Duration `json:"-"`
	// Seed seeds the replica streams: replica r draws the batches of
	// sampler stream 1+r (the training run is stream 0), so its sequence
	// does not depend on R, on sharding or on the order replicas run in.
	Seed uint64 `json:"seed"`
	// Surrogate, when set, replaces the minibatch gradient by a Gaussian
	// surrogate of it (surrogate.go); the zero value is plain SGD and is
	// left out of the manifest, so SGD fingerprints do not change.
	Surrogate SurrogateConfig `json:"surrogate,omitzero"`
	// Paired builds the epoch permutations of a without-replacement
	// ensemble from the with-replacement draws of the same (seed, stream)
	// (data.NewPairedSampler), so that it and the with-replacement
	// ensemble of the same settings share common random numbers. Left out
	// of the manifest when false, so existing fingerprints do not change.
	Paired bool `json:"paired,omitempty"`
}

// DefaultCheckpointAfter is the CheckpointAfter of the command line and the
// experiment configs: a replica shorter than this never checkpoints
// midway, since running it again costs less than checkpointing it.
const DefaultCheckpointAfter = 30 * time.Second

// checkpointDue reports whether a replica checkpoints after step done,
// since its last checkpoint (or start) the time since ago.
func (c EnsembleConfig) checkpointDue(done int64, since time.Duration) bool {
	return done%c.CheckpointEvery == 0 && since >= c.CheckpointAfter
}

// Shard selects the replicas r with r mod Of == Index.
type Shard struct{ Index, Of int }

// Validate reports the first bad setting.
func (c EnsembleConfig) Validate(trainLen int) error {
	switch {
	case c.Name == "" || c.Name != filepath.Base(c.Name) || c.Name[0] == '.':
		return fmt.Errorf("ensemble name %q: must be a plain directory name", c.Name)
	case c.Replicas < 2:
		return fmt.Errorf("replicas %d: an ensemble variance needs at least 2", c.Replicas)
	case c.Steps < 1:
		return fmt.Errorf("steps %d: must be positive", c.Steps)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("learning rate %g: must be positive and finite", c.LR)
	case c.Batch < 1:
		return fmt.Errorf("batch size %d: must be positive", c.Batch)
	case c.Batch > trainLen:
		return fmt.Errorf("batch %d larger than the data set (%d examples)", c.Batch, trainLen)
	case c.LogEvery < 1:
		return fmt.Errorf("log_every %d: must be positive", c.LogEvery)
	case c.SnapshotEvery < 0:
		return fmt.Errorf("snapshot_every %d: must not be negative", c.SnapshotEvery)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("checkpoint_every %d: must be positive", c.CheckpointEvery)
	case c.CheckpointAfter < 0:
		return fmt.Errorf("checkpoint interval %v: must not be negative", c.CheckpointAfter)
	}
	if err := c.Surrogate.Validate(); err != nil {
		return err
	}
	_, err := data.ParseSampling(c.Sampling)
	return err
}

// EnsembleManifest is manifest.json: everything that makes two replicas
// members of the same ensemble. Its hash, the fingerprint, is recorded by
// every replica, so a merge can refuse a mixed ensemble.
type EnsembleManifest struct {
	EnsembleConfig
	Run              string   `json:"run"`
	Checkpoint       string   `json:"checkpoint"`
	Step             int64    `json:"reference_step"`
	Model            string   `json:"model"`
	DType            string   `json:"dtype"`
	Params           int      `json:"params"`
	ReferenceSHA256  string   `json:"reference_sha256"`
	Directions       int      `json:"directions"`
	DirectionSources []string `json:"direction_sources"`
	DirectionsSHA256 string   `json:"directions_sha256"`
	Columns          []string `json:"columns"`
	// TrainExamples is N, the size of the training set the batches are
	// drawn from (for epochs and the reshuffling theory). It follows from
	// the reference run, so it is not part of the fingerprint, and
	// manifests written before it existed lack it (0).
	TrainExamples int `json:"train_examples,omitempty"`
	// ByContent marks a manifest whose fingerprint leaves out Run and
	// Checkpoint, the reference's paths as typed ("r", "../r/"), which are
	// for display only: the reference is its parameters' hash, step, model
	// and dtype. Manifests written before it (false) keep their fingerprint
	// over every field, so their replicas still resume and merge.
	ByContent bool `json:"fingerprint_by_content,omitempty"`
}

// Fingerprint identifies the ensemble's reference, directions and settings.
func (m *EnsembleManifest) Fingerprint() string {
	c := *m
	c.TrainExamples = 0
	if c.ByContent {
		c.Run, c.Checkpoint = "", ""
	}
	b, _ := json.Marshal(&c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// sameEnsemble reports whether manifests a and b describe one ensemble,
// whatever paths they name their reference by and whenever they were
// written.
func sameEnsemble(a, b EnsembleManifest) bool {
	a.ByContent, b.ByContent = true, true
	return a.Fingerprint() == b.Fingerprint()
}

// Files of an ensemble directory.
const (
	ManifestFile  = "manifest.json"
	ReferenceNPY  = "reference.npy"
	DirectionsNPY = "directions.npy"
	replicaJSON   = "replica.json"
	stateJSON     = "state.json"
	doneJSON      = "done.json"
)

// EnsembleDir is where the ensemble name of run dir lives.
func EnsembleDir(runDir, name string) string { return filepath.Join(runDir, "ensemble", name) }

func replicaDir(dir string, r int) string { return filepath.Join(dir, fmt.Sprintf("replica-%04d", r)) }

// ReplicaDone is done.json: how a replica ended.
type ReplicaDone struct {
	Replica  int     `json:"replica"`
	Status   string  `json:"status"` // complete or diverged
	Steps    int64   `json:"steps"`  // steps taken (for diverged: the step whose loss was not finite)
	Reason   string  `json:"reason,omitempty"`
	Seconds  float64 `json:"seconds"`
	Finger   string  `json:"fingerprint"`
	Shard    string  `json:"shard"`
	Finished string  `json:"finished"`
}

// replicaState is state.json, the commit record of a replica checkpoint:
// it names the parameter file of its step, which is written before it, so
// a kill between the two writes leaves the previous, consistent pair.
type replicaState struct {
	Step   int64  `json:"step"`
	Rows   int64  `json:"rows"`
	Params string `json:"params"`
}

type replicaInfo struct {
	Replica     int    `json:"replica"`
	Stream      uint64 `json:"stream"`
	Fingerprint string `json:"fingerprint"`
}

// EnsembleResult summarises what one invocation did.
type EnsembleResult struct {
	Dir                         string
	Ran, Skipped, Diverged      int
	ReplicaSteps                int64
	Seconds, ReplicaStepsPerSec float64
}

// RunEnsemble runs the replicas of c that belong to shard (all of them for
// Shard{0, 1}) from the reference point ref, projecting every logged step
// on dirs. Finished replicas are skipped and interrupted ones resume from
// their last checkpoint, so rerunning the same command completes an
// ensemble with nothing lost or duplicated.
func RunEnsemble(ctx context.Context, ref *Reference, dirs [][]float64, sources []string, c EnsembleConfig, shard Shard, workers int, progressOut io.Writer) (*EnsembleResult, error) {
	c.Surrogate = c.Surrogate.WithDefaults()
	if c.Surrogate.Kind != "" { // the manifest records the evaluation set actually used
		c.Surrogate.EvalExamples = min(c.Surrogate.EvalExamples, ref.Data.Train.Len())
	}
	if err := c.Validate(ref.Data.Train.Len()); err != nil {
		return nil, err
	}
	if shard.Of < 1 || shard.Index < 0 || shard.Index >= shard.Of {
		return nil, fmt.Errorf("shard %d/%d: want i/n with 0 <= i < n", shard.Index, shard.Of)
	}
	if len(dirs) == 0 {
		return nil, errors.New("no directions to project on")
	}
	proj, err := NewProjector(ref.W, dirs)
	if err != nil {
		return nil, err
	}
	m0, err := ref.NewModel("")
	if err != nil {
		return nil, err
	}
	man := &EnsembleManifest{
		EnsembleConfig: c, Run: ref.Dir, Checkpoint: ref.Checkpoint, Step: ref.Step,
		Model: ref.Config.Model.Kind, DType: m0.DType(), Params: len(ref.W),
		ReferenceSHA256: floatsSHA256(ref.W), Directions: len(dirs), DirectionSources: sources,
		Columns:       append([]string{"step", "loss", "distance"}, projectionColumns(len(dirs))...),
		TrainExamples: ref.Data.Train.Len(), ByContent: true,
	}
	h := sha256.New()
	for _, d := range dirs {
		h.Write(floatsBytes(d))
	}
	man.DirectionsSHA256 = hex.EncodeToString(h.Sum(nil))
	dir := EnsembleDir(ref.Dir, c.Name)
	if err := prepareEnsembleDir(dir, man, ref.W, dirs); err != nil {
		return nil, err
	}
	finger := man.Fingerprint() // the existing ensemble's, when resuming
	var sur *surrogate
	if c.Surrogate.Kind != "" {
		if sur, err = newSurrogate(ref, c); err != nil {
			return nil, err
		}
		if err := sur.write(dir, dirs); err != nil {
			return nil, err
		}
	}

	var todo []int
	skipped := 0
	for r := shard.Index; r < c.Replicas; r += shard.Of {
		if _, err := os.Stat(filepath.Join(replicaDir(dir, r), doneJSON)); err == nil {
			skipped++
			continue
		}
		todo = append(todo, r)
	}
	res := &EnsembleResult{Dir: dir, Skipped: skipped}
	if len(todo) == 0 {
		return res, nil
	}
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(todo))

	start := time.Now()
	var stepsDone atomic.Int64
	total := int64(len(todo)) * c.Steps
	stopProgress := reportEnsembleProgress(progressOut, &stepsDone, total)
	defer stopProgress()

	jobs := make(chan int)
	errs := make(chan error, workers)
	var diverged atomic.Int32
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := ref.NewModel("") // a Model is not safe for concurrent use
			if err != nil {
				errs <- err
				return
			}
			rp := &replicaRunner{ref: ref, man: man, finger: finger, dir: dir, m: m, shard: shard, stepsDone: &stepsDone,
				block: newProjectionBlock(proj), sur: sur}
			for r := range jobs {
				div, err := rp.run(ctx, r)
				if err != nil {
					errs <- fmt.Errorf("replica %d: %w", r, err)
					return
				}
				if div {
					diverged.Add(1)
				}
			}
		}()
	}
	var firstErr error
feed:
	for _, r := range todo {
		select {
		case jobs <- r:
		case firstErr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if firstErr == nil || (errors.Is(firstErr, ErrInterrupted) && !errors.Is(err, ErrInterrupted)) {
			firstErr = err
		}
	}
	res.Ran, res.Diverged = len(todo), int(diverged.Load())
	res.ReplicaSteps = stepsDone.Load()
	res.Seconds = time.Since(start).Seconds()
	res.ReplicaStepsPerSec = float64(res.ReplicaSteps) / res.Seconds
	if firstErr != nil {
		if errors.Is(firstErr, ErrInterrupted) {
			return res, fmt.Errorf("%w: replicas checkpointed; run the same command to continue", ErrInterrupted)
		}
		return res, firstErr
	}
	return res, nil
}

func projectionColumns(k int) []string {
	cols := make([]string, k)
	for i := range cols {
		cols[i] = fmt.Sprintf("p%d", i)
	}
	return cols
}

// prepareEnsembleDir writes the manifest, reference and directions, or
// checks that an existing ensemble of that name is the same one and makes
// *man that ensemble's manifest, so that resumed replicas record its
// fingerprint whatever spelling of the run directory the command used.
// Shard processes may race here: their manifests differ at most in the
// paths, which by-content fingerprints leave out, and each file is
// replaced atomically.
func prepareEnsembleDir(dir string, man *EnsembleManifest, w []float64, dirs [][]float64) error {
	mpath := filepath.Join(dir, ManifestFile)
	if b, err := os.ReadFile(mpath); err == nil {
		var old EnsembleManifest
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("%s: %w", mpath, err)
		}
		if !sameEnsemble(old, *man) {
			return fmt.Errorf("ensemble %q in %s was run %s; remove that directory or choose another name (--name, or another --out for sgdyn run)", man.Name, filepath.Dir(dir), ensembleDifference(old, *man))
		}
		n := man.TrainExamples
		*man = old
		if old.TrainExamples == 0 && n > 0 { // a manifest from before the field: record N
			man.TrainExamples = n
			return atomicfile.WriteJSON(mpath, man)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := npy.WriteNPY(filepath.Join(dir, ReferenceNPY), []int{len(w)}, w); err != nil {
		return err
	}
	flat := make([]float64, 0, len(dirs)*len(w))
	for _, d := range dirs {
		flat = append(flat, d...)
	}
	if err := npy.WriteNPY(filepath.Join(dir, DirectionsNPY), []int{len(dirs), len(w)}, flat); err != nil {
		return err
	}
	return atomicfile.WriteJSON(mpath, man) // last: marks a complete setup
}

// ensembleDifference says what sets two different manifests of one
// ensemble name apart, for the refusal to mix them.
func ensembleDifference(old, cur EnsembleManifest) string {
	switch {
	case old.ReferenceSHA256 != cur.ReferenceSHA256 || old.Step != cur.Step || old.Model != cur.Model || old.DType != cur.DType || old.Params != cur.Params:
		return fmt.Sprintf("from another reference point (step %d, parameters %.12s; now step %d, %.12s)", old.Step, old.ReferenceSHA256, cur.Step, cur.ReferenceSHA256)
	case old.DirectionsSHA256 != cur.DirectionsSHA256 || old.Directions != cur.Directions:
		return fmt.Sprintf("on other directions (%d, sha256 %.12s; now %d, %.12s)", old.Directions, old.DirectionsSHA256, cur.Directions, cur.DirectionsSHA256)
	}
	return "with other settings"
}

// replicaRunner runs replicas one after another on one model instance.
type replicaRunner struct {
	ref       *Reference
	man       *EnsembleManifest
	finger    string
	dir       string
	m         models.Model
	block     *projectionBlock // reused by each replica the runner runs
	shard     Shard
	stepsDone *atomic.Int64
	sur       *surrogate // nil for SGD
}

// run runs replica r to completion, divergence or interruption. It reports
// whether the replica diverged.
func (rp *replicaRunner) run(ctx context.Context, r int) (diverged bool, err error) {
	c := rp.man.EnsembleConfig
	dir := replicaDir(rp.dir, r)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	unlock, err := lockReplica(dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, doneJSON)); err == nil {
		return false, nil // finished by another process meanwhile
	}
	began := time.Now()
	stream := uint64(1 + r)
	if err := atomicfile.WriteJSON(filepath.Join(dir, replicaJSON), replicaInfo{Replica: r, Stream: stream, Fingerprint: rp.finger}); err != nil {
		return false, err
	}
	w := slices.Clone(rp.ref.W)
	var start int64
	keepRows := int64(-1)
	if b, err := os.ReadFile(filepath.Join(dir, stateJSON)); err == nil {
		var st replicaState
		if err := json.Unmarshal(b, &st); err != nil {
			return false, fmt.Errorf("%s: %w", filepath.Join(dir, stateJSON), err)
		}
		_, raw, err := npy.ReadNPY(filepath.Join(dir, st.Params))
		if err != nil {
			return false, err
		}
		saved, ok := raw.([]float64)
		if !ok || len(saved) != len(w) {
			return false, fmt.Errorf("%s: not this model's parameters", filepath.Join(dir, st.Params))
		}
		copy(w, saved)
		start, keepRows = st.Step, st.Rows
	}
	traj, err := openTrajectory(dir, rp.block, c.LogEvery, c.SnapshotEvery, keepRows)
	if err != nil {
		return false, err
	}
	defer traj.close()
	if start == 0 {
		if err := traj.record(0, math.NaN(), w); err != nil {
			return false, err
		}
	}
	m := rp.m
	m.SetParams(w)
	mode, _ := data.ParseSampling(c.Sampling)
	newSampler := data.NewSampler
	if c.Paired {
		newSampler = data.NewPairedSampler
	}
	sampler, err := newSampler(rp.ref.Data.Train.Len(), c.Batch, mode, c.Seed, stream)
	if err != nil {
		return false, err
	}
	lastCheckpoint := began
	checkpoint := func(step int64) error {
		lastCheckpoint = time.Now()
		rows, err := traj.flush()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("params-%09d.npy", step)
		if err := npy.WriteNPY(filepath.Join(dir, name), []int{len(w)}, w); err != nil {
			return err
		}
		if err := atomicfile.WriteJSON(filepath.Join(dir, stateJSON), replicaState{Step: step, Rows: rows, Params: name}); err != nil {
			return err
		}
		removeParams(dir, name)
		return nil
	}
	finish := func(d ReplicaDone) error {
		if err := traj.close(); err != nil {
			return err
		}
		d.Replica, d.Seconds, d.Finger = r, time.Since(began).Seconds(), rp.finger
		d.Shard = fmt.Sprintf("%d/%d", rp.shard.Index, rp.shard.Of)
		d.Finished = time.Now().UTC().Format(time.RFC3339)
		return atomicfile.WriteJSON(filepath.Join(dir, doneJSON), d)
	}

	grad := make([]float64, len(w))
	idx := make([]int, c.Batch)
	var batch data.Batch
	var noise *surrogateReplica
	if rp.sur != nil {
		noise = rp.sur.replica(r)
	}
	for step := start; step < c.Steps; step++ {
		var loss float64
		if noise != nil {
			loss, err = noise.grad(m, step, grad)
		} else {
			idx = sampler.Indices(step, idx)
			rp.ref.Data.Train.Fill(&batch, idx)
			loss, err = m.Grad(&batch, grad)
		}
		if err != nil {
			return false, fmt.Errorf("step %d: %w", step+1, err)
		}
		if gn := norm(grad); math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(gn) || math.IsInf(gn, 0) {
			return true, finish(ReplicaDone{Status: "diverged", Steps: step + 1, Reason: fmt.Sprintf("loss %g, gradient norm %g", loss, gn)})
		}
		for i, g := range grad {
			w[i] -= c.LR * g
		}
		m.SetParams(w)
		m.Params(w)
		done := step + 1
		if err := traj.record(done, loss, w); err != nil {
			return false, err
		}
		rp.stepsDone.Add(1)
		if done == c.Steps {
			break
		}
		if ctx.Err() != nil {
			if err := checkpoint(done); err != nil {
				return false, err
			}
			return false, ErrInterrupted
		}
		if c.checkpointDue(done, time.Since(lastCheckpoint)) {
			if err := checkpoint(done); err != nil {
				return false, err
			}
		}
	}
	if err := finish(ReplicaDone{Status: "complete", Steps: c.Steps}); err != nil {
		return false, err
	}
	// The resume state is no longer needed once done.json exists.
	os.Remove(filepath.Join(dir, stateJSON))
	removeParams(dir, "")
	return false, nil
}

// removeParams deletes a replica's checkpoint parameter files except keep.
func removeParams(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "params-*.npy"))
	for _, p := range old {
		if filepath.Base(p) != keep {
			os.Remove(p)
		}
	}
}

// lockReplica takes an exclusive advisory lock on a replica directory, so
// two processes (overlapping shards) never write one replica. The kernel
// releases it when the process dies, so a kill never leaves it stale.
func lockReplica(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is being run by another process (overlapping --shard?)", dir)
	}
	return func() { f.Close() }, nil
}

func reportEnsembleProgress(w io.Writer, done *atomic.Int64, total int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	p := newProgress(w, "ensemble", 0, total)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				p.update(done.Load(), "replica-steps")
				p.finish()
				return
			case <-t.C:
				p.update(done.Load(), "replica-steps")
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

func floatsBytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func floatsSHA256(v []float64) string {
	h := sha256.Sum256(floatsBytes(v))
	return hex.EncodeToString(h[:])
}

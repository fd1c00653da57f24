// Package train runs plain SGD on a model and records the run: resolved
// config, per-step metrics, checkpoints and the machine it ran on, in a run
// directory that a later `sgdyn train` continues bit for bit.
package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
)

// Files of a run directory.
const (
	ConfigFile      = "config.yaml"
	MetricsFile     = "metrics.jsonl"
	EnvironmentFile = "environment.json"
	VocabFile       = "vocab.json"
)

// ErrInterrupted is returned when the context is cancelled mid-run (SIGINT,
// SIGTERM): the current step was finished and checkpointed.
var ErrInterrupted = errors.New("interrupted")

// DivergedError reports a NaN or Inf loss or gradient.
type DivergedError struct {
	Step int64
	What string
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("diverged at step %d: %s is not finite (lower the learning rate)", e.Step, e.What)
}

// Options are the parts of a run that do not change its results.
type Options struct {
	Progress io.Writer // progress bar or lines; nil for silence
	// AfterStep, if set, is called after every step with the step count
	// and the new parameters (which it must not modify).
	AfterStep func(step int64, w []float64) error
	// Trajectory, if set, logs projections of the path on directions in
	// the run's trajectory/ directory (for single-run MSD analysis).
	Trajectory *TrajectoryOptions
	// OnStart, if set, is called once the config, the data, the model and
	// the run directory have all been accepted, before anything is written
	// (also for a run that is already complete), with the step the run
	// starts from: a caller announces the run there, so that a refused
	// run announces nothing.
	OnStart func(start int64)
	// NewModel builds the model when the config's kind is custom (a Go
	// program's own network); it must be nil for the built-in kinds.
	NewModel ModelFunc
}

// TrajectoryOptions configures trajectory logging in a training run. The
// displacement is measured from the parameters at the step where logging
// began (saved as trajectory/reference.npy).
type TrajectoryOptions struct {
	Directions    [][]float64
	LogEvery      int64 // default 1
	SnapshotEvery int64 // 0: no snapshots
}

// TrajectoryDir is where a training run logs its trajectory.
const TrajectoryDir = "trajectory"

// Result summarises a finished run.
type Result struct {
	Steps      int64       // steps done in total
	Resumed    int64       // step the run resumed from (0 for a fresh run)
	Val        models.Eval // validation at the end
	Checkpoint *Checkpoint // the final checkpoint
}

// A train record is one line of metrics.jsonl per step.
type trainRecord struct {
	Step     int64   `json:"step"`
	Loss     float64 `json:"loss"`
	GradNorm float64 `json:"grad_norm"`
}

// An eval record is written every eval_every steps and at the end.
type evalRecord struct {
	Step     int64    `json:"step"`
	ValLoss  float64  `json:"val_loss"`
	ValAcc   *float64 `json:"val_acc,omitempty"`
	Examples int      `json:"val_examples"`
}

// Train runs (or continues) the run in dir with config c.
func Train(ctx context.Context, dir string, c Config, opts Options) (*Result, error) {
	// Everything that can fail on bad input is checked before the run
	// directory is touched, so a bad command never damages a run.
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkResumable(dir, c); err != nil {
		return nil, err
	}
	ds, err := LoadData(c)
	if err != nil {
		return nil, err
	}
	m, err := newModel(opts.NewModel, c.Model, ds.Shape, c.Seed)
	if err != nil {
		return nil, err
	}
	mode, _ := data.ParseSampling(c.SGD.Sampling)
	const stream = 0 // the training run is stream 0; ensemble replicas use 1..R
	sampler, err := data.NewSampler(ds.Train.Len(), c.SGD.Batch, mode, c.Seed, stream)
	if err != nil {
		return nil, err // it names the sampler
	}
	w := make([]float64, m.NumParams())
	m.Params(w)
	if opts.Trajectory != nil {
		for i, d := range opts.Trajectory.Directions {
			if len(d) != len(w) {
				return nil, fmt.Errorf("trajectory: direction %d has %d entries, model has %d parameters", i, len(d), len(w))
			}
		}
	}
	var start, metricsKeep int64
	trajKeep := int64(-1)
	ck, err := LatestCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	if ck != nil {
		if err := LoadParams(ck.Path(), m, w); err != nil {
			return nil, err
		}
		m.SetParams(w)
		start, metricsKeep = ck.Step, ck.MetricsBytes
		if ck.TrajectoryRows > 0 {
			trajKeep = ck.TrajectoryRows
		}
	}
	res := &Result{Resumed: start, Steps: start, Checkpoint: ck}
	if opts.OnStart != nil {
		opts.OnStart(start)
	}
	if start >= c.SGD.Steps {
		return res, nil // already complete
	}

	// From here on the run directory is written.
	if err := writeRunFiles(dir, c, ds); err != nil {
		return nil, err
	}
	log, err := atomicfile.OpenLog(filepath.Join(dir, MetricsFile), metricsKeep)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	var traj *trajectory
	if opts.Trajectory != nil {
		if traj, err = openRunTrajectory(filepath.Join(dir, TrajectoryDir), w, start, trajKeep, opts.Trajectory); err != nil {
			return nil, fmt.Errorf("trajectory: %w", err)
		}
		defer traj.close()
	}

	evalIdx := data.EvenlySpaced(ds.Val.Len(), c.SGD.EvalExamples)
	var evalBatch data.Batch
	evaluate := func(step int64, idx []int) (models.Eval, error) {
		ds.Val.Fill(&evalBatch, idx)
		e, err := m.Eval(&evalBatch)
		if err != nil {
			return e, fmt.Errorf("evaluation at step %d: %w", step, err)
		}
		rec := evalRecord{Step: step, ValLoss: e.Loss, Examples: len(idx)}
		if e.Count > 0 {
			acc := float64(e.Correct) / float64(e.Count)
			rec.ValAcc = &acc
		}
		return e, log.Append(rec)
	}
	checkpoint := func(step int64) error {
		ck := Checkpoint{Step: step, MetricsBytes: log.Size(), SamplerSeed: c.Seed, SamplerStream: stream, Config: c}
		if err := log.Sync(); err != nil {
			return err
		}
		if traj != nil {
			if ck.TrajectoryRows, err = traj.flush(); err != nil {
				return err
			}
		}
		if err := saveCheckpoint(dir, m, w, ck, c.SGD.KeepCheckpoints); err != nil {
			return err
		}
		res.Checkpoint, err = LatestCheckpoint(dir)
		return err
	}
	if start == 0 {
		if _, err := evaluate(0, evalIdx); err != nil {
			return nil, err
		}
	}

	// The loop: draw the step's batch, take one plain SGD step, record it.
	grad := make([]float64, len(w))
	idx := make([]int, c.SGD.Batch)
	var batch data.Batch
	lr := c.SGD.LR
	bar := newProgress(opts.Progress, "train", start, c.SGD.Steps)
	defer bar.finish()
	for step := start; step < c.SGD.Steps; step++ {
		idx = sampler.Indices(step, idx)
		ds.Train.Fill(&batch, idx)
		loss, err := m.Grad(&batch, grad)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		gnorm := norm(grad)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, &DivergedError{Step: step + 1, What: fmt.Sprintf("training loss (%g)", loss)}
		}
		if math.IsNaN(gnorm) || math.IsInf(gnorm, 0) {
			return nil, &DivergedError{Step: step + 1, What: "gradient norm"}
		}
		for i, g := range grad {
			w[i] -= lr * g
		}
		m.SetParams(w)
		m.Params(w) // keep w equal to the stored (possibly float32) parameters
		done := step + 1
		if err := log.Append(trainRecord{Step: done, Loss: loss, GradNorm: gnorm}); err != nil {
			return nil, err
		}
		if traj != nil {
			if err := traj.record(done, loss, w); err != nil {
				return nil, err
			}
		}
		if done%c.SGD.EvalEvery == 0 && done < c.SGD.Steps {
			if _, err := evaluate(done, evalIdx); err != nil {
				return nil, err
			}
		}
		res.Steps = done
		if opts.AfterStep != nil {
			if err := opts.AfterStep(done, w); err != nil {
				return nil, fmt.Errorf("step %d: %w", done, err)
			}
		}
		if done == c.SGD.Steps {
			break
		}
		if ctx.Err() != nil {
			if err := checkpoint(done); err != nil {
				return nil, err
			}
			return res, fmt.Errorf("%w at step %d: checkpoint written; run the same command to continue", ErrInterrupted, done)
		}
		if done%c.SGD.CheckpointEvery == 0 {
			if err := checkpoint(done); err != nil {
				return nil, err
			}
		}
		bar.update(done, fmt.Sprintf("loss %.4f", loss))
	}
	bar.update(c.SGD.Steps, "evaluating")
	// The final evaluation uses a larger fixed subset of the validation set.
	res.Val, err = evaluate(c.SGD.Steps, data.EvenlySpaced(ds.Val.Len(), max(c.SGD.EvalExamples, 10000)))
	if err != nil {
		return nil, err
	}
	if err := checkpoint(c.SGD.Steps); err != nil {
		return nil, err
	}
	return res, nil
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// checkResumable refuses a directory that holds something other than a run,
// or a run whose config differs from c in anything but the step count.
func checkResumable(dir string, c Config) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		if len(entries) > 0 {
			return fmt.Errorf("%s exists, is not empty and has no %s: not an sgdyn run directory", dir, ConfigFile)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	prev, err := ParseConfig(saved)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	prev = prev.WithDefaults()
	prev.SGD.Steps = c.SGD.Steps
	if samePath(prev.Data.Path, c.Data.Path) {
		// Two spellings of one place (../data and /work/data) are one data set.
		prev.Data.Path = c.Data.Path
	}
	a, _ := encodeConfig(prev)
	b, _ := encodeConfig(c)
	if !bytes.Equal(a, b) {
		return fmt.Errorf("%s holds a run with a different config (only steps may change when continuing); use a new --run directory", dir)
	}
	return nil
}

// samePath reports whether a and b name the same file from the current
// directory.
func samePath(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// writeRunFiles records the resolved config, the environment and, for
// text, the vocabulary.
func writeRunFiles(dir string, c Config, ds *Data) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	y, err := encodeConfig(c)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), y, 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, EnvironmentFile), CurrentEnvironment()); err != nil {
		return err
	}
	if ds.Vocab != nil {
		return atomicfile.WriteJSON(filepath.Join(dir, VocabFile), ds.Vocab)
	}
	return nil
}

// openRunTrajectory starts the trajectory of a training run at w (step
// start), or continues it keeping keepRows rows. A trajectory whose
// reference was taken at another step is an error: its rows would not be
// displacements from this run's path.
func openRunTrajectory(dir string, w []float64, start, keepRows int64, o *TrajectoryOptions) (*trajectory, error) {
	if o.LogEvery < 1 {
		o.LogEvery = 1
	}
	refPath := filepath.Join(dir, ReferenceNPY)
	ref := w
	if keepRows > 0 {
		_, raw, err := npy.ReadNPY(refPath)
		if err != nil {
			return nil, err
		}
		saved, ok := raw.([]float64)
		if !ok || len(saved) != len(w) {
			return nil, fmt.Errorf("%s: not this model's parameters", refPath)
		}
		ref = saved
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := npy.WriteNPY(refPath, []int{len(w)}, w); err != nil {
			return nil, err
		}
		flat := make([]float64, 0, len(o.Directions)*len(w))
		for _, d := range o.Directions {
			flat = append(flat, d...)
		}
		if err := npy.WriteNPY(filepath.Join(dir, DirectionsNPY), []int{len(o.Directions), len(w)}, flat); err != nil {
			return nil, err
		}
		keepRows = -1
	}
	proj, err := NewProjector(slices.Clone(ref), o.Directions)
	if err != nil {
		return nil, err
	}
	t, err := openTrajectory(dir, newProjectionBlock(proj), o.LogEvery, o.SnapshotEvery, keepRows)
	if err != nil {
		return nil, err
	}
	if keepRows < 0 {
		// Row 0 of a new trajectory is its reference point; rows are
		// logged on absolute training steps, so log at start whatever
		// log_every says.
		if err := t.log(start, math.NaN(), w); err != nil {
			return nil, err
		}
	}
	return t, nil
}

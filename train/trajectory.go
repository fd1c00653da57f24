package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/sgdyn/sgdyn/internal/npy"
)

// Projector maps a parameter vector to its displacement from a reference
// point projected on K unit directions: p_i = u_i . (w - w0).
type Projector struct {
	w0    []float64
	u     []float64 // K x P, row-major
	k     int
	delta []float64
}

// NewProjector returns a projector onto dirs (each of len(w0)).
func NewProjector(w0 []float64, dirs [][]float64) (*Projector, error) {
	p := len(w0)
	u := make([]float64, 0, len(dirs)*p)
	for i, d := range dirs {
		if len(d) != p {
			return nil, fmt.Errorf("direction %d has %d entries, model has %d parameters", i, len(d), p)
		}
		u = append(u, d...)
	}
	return &Projector{w0: w0, u: u, k: len(dirs), delta: make([]float64, p)}, nil
}

// Project writes the K projections of w - w0 into dst and returns ||w - w0||.
func (pr *Projector) Project(dst, w []float64) float64 {
	var dist float64
	for i, x := range w {
		d := x - pr.w0[i]
		pr.delta[i] = d
		dist += d * d
	}
	if pr.k > 0 {
		// One matrix-vector product: the cost that decides the logging
		// overhead, K*P multiply-adds per logged step.
		blas64.Implementation().Dgemv(blas.NoTrans, pr.k, len(pr.w0), 1, pr.u, len(pr.w0), pr.delta, 1, 0, dst, 1)
	}
	return math.Sqrt(dist)
}

// Trajectory columns: step, loss of the step that led here (NaN at step 0),
// distance from the start, then one projection per direction.
const trajectoryLead = 3

// TrajectoryFile is the name of a trajectory array in its directory.
const TrajectoryFile = "trajectory.npy"

// trajectory appends rows (step, loss, distance, p_1..p_K) to a .npy array
// every logEvery steps and writes a full parameter snapshot every
// snapshotEvery steps (0: never).
type trajectory struct {
	dir           string
	proj          *Projector
	app           *npy.Appender
	row           []float64
	logEvery      int64
	snapshotEvery int64
}

// openTrajectory starts (keepRows < 0) or continues (keeping keepRows rows)
// the trajectory in dir.
func openTrajectory(dir string, proj *Projector, logEvery, snapshotEvery int64, keepRows int64) (*trajectory, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, TrajectoryFile)
	var app *npy.Appender
	var err error
	if keepRows < 0 {
		app, err = npy.CreateAppender(path, trajectoryLead+proj.k, 256)
	} else {
		app, err = npy.OpenAppender(path, 256, keepRows)
	}
	if err != nil {
		return nil, err
	}
	return &trajectory{dir: dir, proj: proj, app: app, row: make([]float64, trajectoryLead+proj.k), logEvery: logEvery, snapshotEvery: snapshotEvery}, nil
}

// record logs the state after step (0 is the start).
func (t *trajectory) record(step int64, loss float64, w []float64) error {
	if step%t.logEvery == 0 {
		t.row[0], t.row[1] = float64(step), loss
		t.row[2] = t.proj.Project(t.row[trajectoryLead:], w)
		if err := t.app.Append(t.row); err != nil {
			return err
		}
	}
	if t.snapshotEvery > 0 && step%t.snapshotEvery == 0 {
		snap := filepath.Join(t.dir, "snapshots", fmt.Sprintf("step-%09d.npy", step))
		if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
			return err
		}
		return npy.WriteNPY(snap, []int{len(w)}, w)
	}
	return nil
}

// flush makes every row so far readable on disk; it returns the row count.
func (t *trajectory) flush() (int64, error) {
	return t.app.Rows(), t.app.Flush()
}

// close flushes and closes the array; later calls do nothing.
func (t *trajectory) close() error {
	if t.app == nil {
		return nil
	}
	err := t.app.Close()
	t.app = nil
	return err
}

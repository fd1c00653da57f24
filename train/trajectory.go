package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/npy"
)

// Projector maps parameter vectors to their displacement from a reference
// point projected on K unit directions: p_i = u_i . (w - w0). It is read
// only after construction, so the replicas of an ensemble share one.
type Projector struct {
	w0 []float64
	ut []float64 // P x K: direction i is column i
	k  int
}

// NewProjector returns a projector onto dirs (each of len(w0)).
func NewProjector(w0 []float64, dirs [][]float64) (*Projector, error) {
	p, k := len(w0), len(dirs)
	ut := make([]float64, p*k)
	for i, d := range dirs {
		if len(d) != p {
			return nil, fmt.Errorf("direction %d has %d entries, model has %d parameters", i, len(d), p)
		}
		for j, v := range d {
			ut[j*k+i] = v
		}
	}
	return &Projector{w0: w0, ut: ut, k: k}, nil
}

// projectBlock is how many logged steps are projected together. One step
// at a time, the projection is a matrix-vector product that reads all K*P
// direction entries from memory for 2*K*P flops, and that costs 10-20% of
// a training step; a block of steps is one matrix product that reads them
// once per block. A multiple of 4, so that every row goes through the same
// kernel and a row's projections do not depend on which rows share its
// block (resumed runs stay bit-identical).
const projectBlock = 32

// projectPanel is the slice of the parameter axis multiplied at once: the
// panel of directions (panel x K) and of displacements (block x panel)
// stay in the L2 cache while the product runs over it.
const projectPanel = 256

// projectionBlock buffers displacements w - w0 and projects them a block at
// a time.
type projectionBlock struct {
	proj  *Projector
	delta []float64 // projectBlock x P: the pending displacements
	out   []float64 // projectBlock x K
	n     int       // pending rows
}

func newProjectionBlock(proj *Projector) *projectionBlock {
	return &projectionBlock{proj: proj, delta: make([]float64, projectBlock*len(proj.w0)), out: make([]float64, projectBlock*proj.k)}
}

// add stores w - w0 as the next pending row and returns ||w - w0||. The
// caller projects when full says so.
func (b *projectionBlock) add(w []float64) float64 {
	w0 := b.proj.w0
	d := b.delta[b.n*len(w0) : (b.n+1)*len(w0)]
	var dist float64
	for i, x := range w[:len(w0)] {
		d[i] = x - w0[i]
		dist += d[i] * d[i]
	}
	b.n++
	return math.Sqrt(dist)
}

func (b *projectionBlock) full() bool { return b.n == projectBlock }

// project computes the projections of the pending rows into b.out (row r
// at b.out[r*K:]) and returns how many there are; the block is empty
// afterwards.
func (b *projectionBlock) project() int {
	n, p, k := b.n, len(b.proj.w0), b.proj.k
	b.n = 0
	if n == 0 || k == 0 {
		return n
	}
	// Unused rows are zeroed rather than skipped: the product always has
	// the same shape (see projectBlock).
	clear(b.delta[n*p:])
	for p0 := 0; p0 < p; p0 += projectPanel {
		w := min(projectPanel, p-p0)
		beta := 1.0
		if p0 == 0 {
			beta = 0
		}
		gemm.Gemm(false, false, projectBlock, k, w, 1, b.delta[p0:], p, b.proj.ut[p0*k:], k, beta, b.out, k)
	}
	return n
}

// Trajectory columns: step, loss of the step that led here (NaN at step 0),
// distance from the start, then one projection per direction.
const trajectoryLead = 3

// TrajectoryFile is the name of a trajectory array in its directory.
const TrajectoryFile = "trajectory.npy"

// trajectory appends rows (step, loss, distance, p_1..p_K) to a .npy array
// every logEvery steps and writes a full parameter snapshot every
// snapshotEvery steps (0: never). Rows wait in a projection block until it
// is full or the trajectory is flushed.
type trajectory struct {
	dir           string
	block         *projectionBlock
	app           *npy.Appender
	pending       [][trajectoryLead]float64 // step, loss, distance of the rows in block
	row           []float64
	logEvery      int64
	snapshotEvery int64
}

// openTrajectory starts (keepRows < 0) or continues (keeping keepRows rows)
// the trajectory in dir, projecting through block, which is the
// trajectory's until it is closed.
func openTrajectory(dir string, block *projectionBlock, logEvery, snapshotEvery int64, keepRows int64) (*trajectory, error) {
	proj := block.proj
	block.n = 0
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
	return &trajectory{dir: dir, block: block, app: app, row: make([]float64, trajectoryLead+proj.k),
		logEvery: logEvery, snapshotEvery: snapshotEvery}, nil
}

// log queues the row of step (loss is the step's training loss, NaN at the
// start) whatever logEvery says.
func (t *trajectory) log(step int64, loss float64, w []float64) error {
	dist := t.block.add(w)
	t.pending = append(t.pending, [trajectoryLead]float64{float64(step), loss, dist})
	if t.block.full() {
		return t.writePending()
	}
	return nil
}

// writePending projects the queued rows and appends them to the array.
func (t *trajectory) writePending() error {
	n := t.block.project()
	k := t.block.proj.k
	for r, lead := range t.pending[:n] {
		copy(t.row, lead[:])
		copy(t.row[trajectoryLead:], t.block.out[r*k:(r+1)*k])
		if err := t.app.Append(t.row); err != nil {
			return err
		}
	}
	t.pending = t.pending[:0]
	return nil
}

// record logs the state after step (0 is the start).
func (t *trajectory) record(step int64, loss float64, w []float64) error {
	if step%t.logEvery == 0 {
		if err := t.log(step, loss, w); err != nil {
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
	if err := t.writePending(); err != nil {
		return 0, err
	}
	return t.app.Rows(), t.app.Flush()
}

// close flushes and closes the array; later calls do nothing.
func (t *trajectory) close() error {
	if t.app == nil {
		return nil
	}
	err := t.writePending()
	if cerr := t.app.Close(); err == nil {
		err = cerr
	}
	t.app = nil
	return err
}

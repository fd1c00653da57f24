package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
)

// Checkpoint is the JSON sidecar of a parameter file. It is written after
// the .npz, so a sidecar on disk always names a complete parameter file.
type Checkpoint struct {
	Step int64 `json:"step"`
	// MetricsBytes is the size of metrics.jsonl when the checkpoint was
	// taken; resuming truncates the log to it so no record is duplicated.
	MetricsBytes int64  `json:"metrics_bytes"`
	Params       string `json:"params"` // .npz file name, beside the sidecar
	NumParams    int    `json:"num_params"`
	DType        string `json:"dtype"`
	// The sampler needs nothing else: the batch at step t is a pure
	// function of (seed, stream, t).
	SamplerSeed   uint64 `json:"sampler_seed"`
	SamplerStream uint64 `json:"sampler_stream"`
	Config        Config `json:"config"`
	Time          string `json:"time"`
	// TrajectoryRows is the length of trajectory/trajectory.npy at the
	// checkpoint (0 when the run logs none).
	TrajectoryRows int64 `json:"trajectory_rows,omitempty"`

	dir string
}

// Path is the parameter file's path.
func (c *Checkpoint) Path() string { return filepath.Join(c.dir, c.Params) }

const checkpointDir = "checkpoints"

func checkpointName(step int64) string { return fmt.Sprintf("step-%09d", step) }

// saveCheckpoint writes m's parameters and the sidecar, then prunes all but
// the newest keep checkpoints.
func saveCheckpoint(runDir string, m models.Model, w []float64, ck Checkpoint, keep int) error {
	dir := filepath.Join(runDir, checkpointDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	name := checkpointName(ck.Step)
	ck.Params = name + ".npz"
	ck.NumParams = m.NumParams()
	ck.DType = m.DType()
	ck.Time = time.Now().UTC().Format(time.RFC3339)
	if err := npy.WriteNPZ(filepath.Join(dir, ck.Params), paramArrays(m, w)); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", ck.Step, err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, name+".json"), ck); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", ck.Step, err)
	}
	return pruneCheckpoints(dir, keep)
}

// paramArrays splits the flat vector w into m's named tensors, in m's
// float type so that a reload is exact.
func paramArrays(m models.Model, w []float64) []npy.Array {
	var arrs []npy.Array
	for _, t := range m.Tensors() {
		a := npy.Array{Name: t.Name, Shape: t.Shape}
		v := w[t.Offset : t.Offset+t.Size]
		if m.DType() == "float32" {
			a.F32 = make([]float32, len(v))
			for i, x := range v {
				a.F32[i] = float32(x)
			}
		} else {
			a.F64 = slices.Clone(v)
		}
		arrs = append(arrs, a)
	}
	return arrs
}

// listCheckpoints returns the valid sidecars in dir/checkpoints, oldest first.
func listCheckpoints(runDir string) ([]*Checkpoint, error) {
	dir := filepath.Join(runDir, checkpointDir)
	names, err := filepath.Glob(filepath.Join(dir, "step-*.json"))
	if err != nil {
		return nil, err
	}
	var cks []*Checkpoint
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", n, err)
		}
		ck := &Checkpoint{dir: dir}
		if err := json.Unmarshal(b, ck); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", n, err)
		}
		cks = append(cks, ck)
	}
	slices.SortFunc(cks, func(a, b *Checkpoint) int { return int(a.Step - b.Step) })
	return cks, nil
}

// LatestCheckpoint returns the newest checkpoint of a run, or nil if it has none.
func LatestCheckpoint(runDir string) (*Checkpoint, error) {
	cks, err := listCheckpoints(runDir)
	if err != nil || len(cks) == 0 {
		return nil, err
	}
	return cks[len(cks)-1], nil
}

func pruneCheckpoints(dir string, keep int) error {
	cks, err := listCheckpoints(filepath.Dir(dir))
	if err != nil {
		return err
	}
	for len(cks) > keep {
		old := cks[0]
		cks = cks[1:]
		// Sidecar first: a parameter file without a sidecar is ignored.
		base := strings.TrimSuffix(old.Params, ".npz")
		if err := os.Remove(filepath.Join(dir, base+".json")); err != nil {
			return fmt.Errorf("pruning checkpoint: %w", err)
		}
		if err := os.Remove(old.Path()); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("pruning checkpoint: %w", err)
		}
	}
	return nil
}

// LoadParams reads a parameter file into w (len m.NumParams()), checking
// that its tensors are exactly m's.
func LoadParams(path string, m models.Model, w []float64) error {
	arrs, err := npy.ReadNPZ(path)
	if err != nil {
		return err
	}
	want := m.Tensors()
	if len(arrs) != len(want) {
		return fmt.Errorf("%s: %d tensors, model has %d (parameters from a different model?)", path, len(arrs), len(want))
	}
	for i, t := range want {
		a := arrs[i]
		if a.Name != t.Name || !slices.Equal(a.Shape, t.Shape) {
			return fmt.Errorf("%s: tensor %d is %s%v, model wants %s%v (parameters from a different model?)", path, i, a.Name, a.Shape, t.Name, t.Shape)
		}
		dst := w[t.Offset : t.Offset+t.Size]
		switch {
		case a.F32 != nil && len(a.F32) == t.Size:
			for j, x := range a.F32 {
				dst[j] = float64(x)
			}
		case a.F64 != nil && len(a.F64) == t.Size:
			copy(dst, a.F64)
		default:
			return fmt.Errorf("%s: tensor %s has the wrong number of values", path, t.Name)
		}
	}
	return nil
}

package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
)

// Replica statuses as read from disk.
const (
	StatusComplete = "complete"
	StatusDiverged = "diverged"
	StatusRunning  = "running" // started, not finished (running now, or interrupted)
	StatusMissing  = "missing" // not started
)

// EnsembleData is an ensemble read back from disk, complete or not.
type EnsembleData struct {
	Dir      string
	Manifest EnsembleManifest
	Steps    []int64       // the logged steps: 0, log_every, ..., steps
	Proj     [][][]float64 // [replica][logged step][direction]; NaN where not (yet) logged
	Loss     [][]float64   // [replica][logged step]
	Dist     [][]float64   // [replica][logged step]
	Status   []string      // per replica
	Diverged []int64       // step at which a replica diverged, -1 if it did not
	Rows     []int         // logged rows on disk per replica
}

// LoadEnsemble reads an ensemble directory. It tolerates an ensemble that
// is still being written (it reads only complete rows and never writes),
// but refuses replicas that belong to a different ensemble.
func LoadEnsemble(dir string) (*EnsembleData, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an ensemble directory (no %s)", dir, ManifestFile)
		}
		return nil, err
	}
	e := &EnsembleData{Dir: dir}
	if err := json.Unmarshal(b, &e.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	man := &e.Manifest
	finger := man.Fingerprint()
	for s := int64(0); s <= man.Steps; s += man.LogEvery {
		e.Steps = append(e.Steps, s)
	}
	if err := checkNoStrayReplicas(dir, man.Replicas); err != nil {
		return nil, err
	}
	R, T, K := man.Replicas, len(e.Steps), man.Directions
	cols := trajectoryLead + K
	for r := 0; r < R; r++ {
		proj := make([][]float64, T)
		flat := make([]float64, T*K)
		for t := range proj {
			proj[t] = flat[t*K : (t+1)*K]
		}
		loss, dist := make([]float64, T), make([]float64, T)
		for i := range flat {
			flat[i] = math.NaN()
		}
		for t := range loss {
			loss[t], dist[t] = math.NaN(), math.NaN()
		}
		status, diverged, rows := StatusMissing, int64(-1), 0
		rdir := replicaDir(dir, r)
		if info, err := readJSON[replicaInfo](filepath.Join(rdir, replicaJSON)); err == nil {
			if info.Fingerprint != finger || info.Replica != r {
				return nil, fmt.Errorf("%s belongs to a different ensemble (fingerprint %.12s, this ensemble %.12s): refusing a mixed ensemble", rdir, info.Fingerprint, finger)
			}
			status = StatusRunning
			shape, raw, err := npy.ReadNPY(filepath.Join(rdir, TrajectoryFile))
			if err == nil {
				vals, _ := raw.([]float64)
				if len(shape) != 2 || shape[1] != cols {
					return nil, fmt.Errorf("%s: trajectory shape %v, want (rows, %d)", rdir, shape, cols)
				}
				rows = min(shape[0], T)
				for t := 0; t < rows; t++ {
					row := vals[t*cols : (t+1)*cols]
					if int64(row[0]) != e.Steps[t] {
						return nil, fmt.Errorf("%s: row %d is step %g, want %d", rdir, t, row[0], e.Steps[t])
					}
					loss[t], dist[t] = row[1], row[2]
					copy(proj[t], row[trajectoryLead:])
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			if d, err := readJSON[ReplicaDone](filepath.Join(rdir, doneJSON)); err == nil {
				if d.Finger != finger {
					return nil, fmt.Errorf("%s finished under a different ensemble: refusing a mixed ensemble", rdir)
				}
				status = d.Status
				if d.Status == StatusDiverged {
					diverged = d.Steps
				} else if rows != T {
					return nil, fmt.Errorf("%s is marked complete but has %d of %d rows", rdir, rows, T)
				}
			}
		}
		e.Proj = append(e.Proj, proj)
		e.Loss = append(e.Loss, loss)
		e.Dist = append(e.Dist, dist)
		e.Status = append(e.Status, status)
		e.Diverged = append(e.Diverged, diverged)
		e.Rows = append(e.Rows, rows)
	}
	return e, nil
}

var replicaName = regexp.MustCompile(`^replica-(\d+)$`)

func checkNoStrayReplicas(dir string, replicas int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if m := replicaName.FindStringSubmatch(en.Name()); m != nil {
			if r, _ := strconv.Atoi(m[1]); r >= replicas {
				return fmt.Errorf("%s: replica %d is not part of this %d-replica ensemble: refusing a mixed ensemble", dir, r, replicas)
			}
		}
	}
	return nil
}

func readJSON[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Merged array files, written by MergeEnsemble beside the replicas.
const (
	MergedProjections = "projections.npy" // (R, T, K)
	MergedLoss        = "loss.npy"        // (R, T)
	MergedDistance    = "distance.npy"    // (R, T)
	MergedSteps       = "steps.npy"       // (T)
	MergedStatus      = "merged.json"
)

// MergeEnsemble checks that every replica of the ensemble in dir finished
// (complete or diverged) under the same manifest, and writes the merged
// arrays for numpy and the analysis.
func MergeEnsemble(dir string) (*EnsembleData, error) {
	e, err := LoadEnsemble(dir)
	if err != nil {
		return nil, err
	}
	var unfinished []string
	for r, s := range e.Status {
		if s != StatusComplete && s != StatusDiverged {
			unfinished = append(unfinished, fmt.Sprintf("%d (%s)", r, s))
		}
	}
	if len(unfinished) > 0 {
		if len(unfinished) > 10 {
			unfinished = append(unfinished[:10], "...")
		}
		return nil, fmt.Errorf("ensemble %s is incomplete: replicas %s", dir, strings.Join(unfinished, ", "))
	}
	R, T, K := len(e.Proj), len(e.Steps), e.Manifest.Directions
	proj := make([]float64, 0, R*T*K)
	var loss, dist []float64
	for r := range e.Proj {
		for t := range e.Proj[r] {
			proj = append(proj, e.Proj[r][t]...)
		}
		loss = append(loss, e.Loss[r]...)
		dist = append(dist, e.Dist[r]...)
	}
	steps := make([]float64, T)
	for i, s := range e.Steps {
		steps[i] = float64(s)
	}
	for _, f := range []struct {
		name  string
		shape []int
		vals  []float64
	}{
		{MergedProjections, []int{R, T, K}, proj},
		{MergedLoss, []int{R, T}, loss},
		{MergedDistance, []int{R, T}, dist},
		{MergedSteps, []int{T}, steps},
	} {
		if err := npy.WriteNPY(filepath.Join(dir, f.name), f.shape, f.vals); err != nil {
			return nil, err
		}
	}
	summary := map[string]any{"replicas": R, "steps": T, "directions": K, "status": e.Status, "diverged_at": e.Diverged, "fingerprint": e.Manifest.Fingerprint()}
	return e, atomicfile.WriteJSON(filepath.Join(dir, MergedStatus), summary)
}

package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sgdyn/sgdyn/models"
)

// Reference is a trained point of a run, loaded for probing or for starting
// an ensemble: the run's config and data, and the parameters of one of its
// checkpoints.
type Reference struct {
	Dir        string
	Config     Config
	Data       *Data
	Checkpoint string    // parameter file
	Step       int64     // training step of the checkpoint (-1 if not a run checkpoint)
	W          []float64 // parameters, as float64

	build ModelFunc // a custom model's constructor (LoadReferenceWith)
}

// LoadReference opens the run in dir at its latest checkpoint, or at
// checkpoint (a .npz path) if that is not empty.
func LoadReference(dir, checkpoint string) (*Reference, error) {
	return LoadReferenceWith(dir, checkpoint, nil)
}

// LoadReferenceWith is LoadReference for a run of a custom model (kind
// custom), whose instances newModel builds; nil for the built-in kinds.
func LoadReferenceWith(dir, checkpoint string, newModel ModelFunc) (*Reference, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(cfgPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an sgdyn run directory (no %s)", dir, ConfigFile)
		}
		return nil, err
	}
	c, err := LoadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	r := &Reference{Dir: dir, Config: c, Checkpoint: checkpoint, Step: -1, build: newModel}
	if checkpoint == "" {
		ck, err := LatestCheckpoint(dir)
		if err != nil {
			return nil, err
		}
		if ck == nil {
			return nil, fmt.Errorf("run %s has no checkpoint yet (train it first)", dir)
		}
		r.Checkpoint, r.Step = ck.Path(), ck.Step
	}
	if r.Data, err = LoadData(c); err != nil {
		return nil, err
	}
	m, err := r.NewModel("")
	if err != nil {
		return nil, err
	}
	r.W = make([]float64, m.NumParams())
	if err := LoadParams(r.Checkpoint, m, r.W); err != nil {
		return nil, err
	}
	return r, nil
}

// ReferenceFromWeights loads a parameter file for the model and data c
// describes, without a run directory (dir is where outputs go).
func ReferenceFromWeights(dir string, c Config, weights string) (*Reference, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Reference{Dir: dir, Config: c, Checkpoint: weights, Step: -1}
	var err error
	if r.Data, err = LoadData(c); err != nil {
		return nil, err
	}
	m, err := r.NewModel("")
	if err != nil {
		return nil, err
	}
	r.W = make([]float64, m.NumParams())
	if err := LoadParams(weights, m, r.W); err != nil {
		return nil, err
	}
	return r, nil
}

// NewModel builds a fresh instance of the run's model set to the reference
// parameters, in dtype ("" for the run's own).
func (r *Reference) NewModel(dtype string) (models.Model, error) {
	mc := r.Config.Model
	if dtype != "" {
		mc.DType = dtype
	}
	return r.newModel(mc)
}

// NewProbeModel builds the model the curvature probes use: the run's
// network at the reference parameters in float64 (finite differences need
// float64 gradients) and in the fused implementation whatever the run used,
// since every implementation computes the same function and only the fused
// one can hold its ReLU and max-pool pattern (models.Piecewise).
func (r *Reference) NewProbeModel() (models.Model, error) {
	mc := r.Config.Model
	mc.DType = "float64"
	if mc.Kind != models.KindCustom {
		mc.Impl = "fused"
	}
	return r.newModel(mc)
}

func (r *Reference) newModel(mc models.Config) (models.Model, error) {
	m, err := newModel(r.build, mc, r.Data.Shape, r.Config.Seed)
	if err != nil {
		return nil, err
	}
	if r.W != nil {
		m.SetParams(r.W)
	}
	return m, nil
}

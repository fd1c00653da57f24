package train

import (
	"fmt"

	"github.com/sgdyn/sgdyn/models"
)

// ModelFunc builds the model c describes for data of shape s, with
// parameters initialised from seed; models.New is one. A Go program passes
// its own (Options.NewModel, LoadReferenceWith) to train, probe and run
// ensembles of a network of its own: c then has kind custom, and c.DType
// is the float type wanted (float64 for the curvature probes). Equal
// arguments must give equal models, since the survey and the ensembles
// build several instances, and it may be called from several goroutines
// at once (one per ensemble worker).
type ModelFunc func(c models.Config, s models.Shape, seed uint64) (models.Model, error)

// newModel builds c's model: with fn for kind custom, which needs it, and
// with models.New for the built-in kinds. A constructor given for a
// built-in kind is refused: the run would record a model that models.New
// builds, and a later command would continue it with another.
func newModel(fn ModelFunc, c models.Config, s models.Shape, seed uint64) (models.Model, error) {
	switch {
	case c.Kind != models.KindCustom && fn == nil:
		return models.New(c, s, seed)
	case c.Kind != models.KindCustom:
		return nil, fmt.Errorf("a model constructor was given for model kind %q: a network built by a Go constructor must be recorded as model kind custom with a name", c.Kind)
	case fn == nil:
		return nil, fmt.Errorf("model %q is a custom model (kind custom): only a Go program that passes its constructor (experiment.Options.NewModel) can build it", c.Name)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m, err := fn(c, s, seed)
	if err != nil {
		return nil, fmt.Errorf("custom model %q: %w", c.Name, err)
	}
	if m.DType() != c.DType {
		return nil, fmt.Errorf("custom model %q: its constructor built a %s model, asked for %s", c.Name, m.DType(), c.DType)
	}
	return m, nil
}

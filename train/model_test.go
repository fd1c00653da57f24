package train

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/models"
)

// TestCustomModel: a run of model kind custom is trained and referenced
// through the caller's constructor, with the dtype each use asks for; it
// trains exactly as the built-in model the constructor wraps; and it is
// refused without the constructor, as is a constructor for a built-in kind
// or one that builds the wrong dtype.
func TestCustomModel(t *testing.T) {
	base := DefaultConfig("linreg")
	base.Data.Kind = "synthetic"
	base.SGD = SGDConfig{LR: 0.05, Batch: 8, Steps: 20}
	var asked []string
	linreg := func(c models.Config, s models.Shape, seed uint64) (models.Model, error) {
		asked = append(asked, c.DType)
		return models.New(models.Config{Kind: "linreg", DType: c.DType, Chunk: c.Chunk}, s, seed)
	}
	custom := base
	custom.Model = models.Config{Kind: models.KindCustom, Name: "my-linreg", DType: "float64"}
	ctx := context.Background()
	work := t.TempDir()

	dir := filepath.Join(work, "custom")
	if _, err := Train(ctx, dir, custom, Options{NewModel: linreg}); err != nil {
		t.Fatal(err)
	}
	builtin := base
	builtin.Model.DType = "float64"
	bdir := filepath.Join(work, "builtin")
	if _, err := Train(ctx, bdir, builtin, Options{}); err != nil {
		t.Fatal(err)
	}
	a, pa := readAll(t, dir)
	b, pb := readAll(t, bdir)
	if !slices.Equal(a, b) || !slices.Equal(pa, pb) {
		t.Error("the custom wrapper of linreg trains differently from linreg")
	}
	saved, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if !strings.Contains(string(saved), "kind: custom") || !strings.Contains(string(saved), "name: my-linreg") || strings.Contains(string(saved), "impl:") {
		t.Errorf("config.yaml does not record the custom model (and no impl):\n%s", saved)
	}

	asked = nil
	ref, err := LoadReferenceWith(dir, "", linreg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.NewProbeModel(); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.NewModel("float32"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"float64", "float64", "float32"}; !slices.Equal(asked, want) {
		t.Errorf("constructor asked for dtypes %v, want %v (load, probe, float32)", asked, want)
	}

	for _, c := range []struct {
		name string
		run  func() error
		want string
	}{
		{"reference without constructor", func() error { _, err := LoadReference(dir, ""); return err }, `"my-linreg" is a custom model`},
		{"continue without constructor", func() error { _, err := Train(ctx, dir, custom, Options{}); return err }, `"my-linreg" is a custom model`},
		{"constructor for a built-in kind", func() error {
			_, err := Train(ctx, filepath.Join(work, "x"), base, Options{NewModel: linreg})
			return err
		}, `kind "linreg"`},
		{"wrong dtype", func() error {
			c := custom
			c.Model.DType = "float32"
			_, err := Train(ctx, filepath.Join(work, "y"), c, Options{NewModel: func(models.Config, models.Shape, uint64) (models.Model, error) {
				return linreg(models.Config{DType: "float64"}, models.Shape{Inputs: 4}, 1)
			}})
			return err
		}, "built a float64 model, asked for float32"},
		{"no name", func() error {
			c := custom
			c.Model.Name = ""
			_, err := Train(ctx, filepath.Join(work, "z"), c, Options{NewModel: linreg})
			return err
		}, "needs a name"},
	} {
		err := c.run()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line error containing %q", c.name, err, c.want)
		}
	}
	for _, d := range []string{"x", "y", "z"} {
		if _, err := os.Stat(filepath.Join(work, d)); err == nil {
			t.Errorf("refused run %s left a directory", d)
		}
	}
}

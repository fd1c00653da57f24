package train

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOnStart checks that Options.OnStart runs once, with the step the run
// starts from, for a run that starts or continues, and never for one that
// is refused on its data or its directions, which also write nothing.
func TestOnStart(t *testing.T) {
	work := t.TempDir()
	var sb strings.Builder
	sb.WriteString("x1,y\n")
	for i := range 40 {
		x := float64(i%7) - 3
		sb.WriteString(fmtG(x) + "," + fmtG(0.5*x) + "\n")
	}
	csv := filepath.Join(work, "rows.csv")
	os.WriteFile(csv, []byte(sb.String()), 0o644)
	c := DefaultConfig("linreg")
	c.Data.Path = csv
	c.SGD.Steps, c.SGD.CheckpointEvery = 6, 2

	var starts []int64
	opts := Options{OnStart: func(s int64) { starts = append(starts, s) }}
	ctx := context.Background()
	for _, bad := range []struct {
		change func(*Config, *Options)
		want   string
	}{
		{func(c *Config, _ *Options) { c.SGD.Batch = 37 }, "batch 37 larger than the data set (36 examples)"},
		{func(_ *Config, o *Options) { o.Trajectory = &TrajectoryOptions{Directions: [][]float64{{1, 0}}} }, "direction 0 has 2 entries, model has 1 parameters"},
	} {
		bc, bo := c, opts
		bad.change(&bc, &bo)
		dir := filepath.Join(work, "refused")
		if _, err := Train(ctx, dir, bc, bo); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("got %v, want an error with %q", err, bad.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Error("a refused run wrote its directory")
		}
	}
	if len(starts) != 0 {
		t.Errorf("OnStart ran for refused runs: %v", starts)
	}

	dir := filepath.Join(work, "run")
	c.SGD.Steps = 4
	if _, err := Train(ctx, dir, c, opts); err != nil {
		t.Fatal(err)
	}
	c.SGD.Steps = 6
	for range 2 { // continued from step 4, then already complete at 6
		if _, err := Train(ctx, dir, c, opts); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int64{0, 4, 6}; !slices.Equal(starts, want) {
		t.Errorf("OnStart saw starts %v, want %v", starts, want)
	}
}

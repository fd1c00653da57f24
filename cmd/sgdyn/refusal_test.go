package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainRefusesBeforeHeader checks that refusals which depend on the
// data (a batch larger than the training set, directions of another
// parameter count) come before the "run DIR: ..." header, in one line,
// and leave no run directory; and that a run that starts prints the
// header once.
func TestTrainRefusesBeforeHeader(t *testing.T) {
	work := t.TempDir()
	writeRowsCSV(t, filepath.Join(work, "rows.csv"), 162, 18) // 180 rows, 162 of them training
	writeDirections(t, filepath.Join(work, "three.npy"), [][]float64{{1, 0, 0}})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "1000"}, "sgdyn train: sampler: batch 1000 larger than the data set (162 examples)\n"},
		{[]string{"--batch", "4", "--directions", "three.npy"}, "sgdyn train: trajectory: direction 0 has 3 entries, model has 1 parameters\n"},
	} {
		args := append([]string{"train", "--run", "runs/r1", "--model", "linreg", "--data", "rows.csv", "--steps", "5"}, c.args...)
		r := sgdyn(t, work, args...)
		if r.code != 2 || r.stderr != c.want {
			t.Errorf("sgdyn %s: exit %d, stderr %q; want 2 and %q", strings.Join(args, " "), r.code, r.stderr, c.want)
		}
		if r.stdout != "" {
			t.Errorf("sgdyn %s printed %q before refusing", strings.Join(args, " "), r.stdout)
		}
		if _, err := os.Stat(filepath.Join(work, "runs")); err == nil {
			t.Errorf("sgdyn %s left runs/ behind", strings.Join(args, " "))
		}
	}

	args := []string{"train", "--run", "ok", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "5"}
	for i, then := range []string{"done: 5 steps", "already complete at step 5"} {
		out := mustRun(t, work, args...)
		if n := strings.Count(out, "run ok: linreg, lr 0.01, batch 4, 5 steps\n"); n != 1 || !strings.HasPrefix(out, "run ok:") || !strings.Contains(out, then) {
			t.Errorf("run %d: header %d times in\n%s\nwant it once, first, then %q", i+1, n, out, then)
		}
	}
}

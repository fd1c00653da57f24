package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTheoryLinRegByHand checks `sgdyn theory linreg` on data whose
// recursion is solvable by hand: x = +-1 makes every H_B = 1 (s2 = 0), the
// solution is theta* = 0 with per-example gradients +-1 (C_1 = 1), so with
// batch 1 S_{t+1} = (1 - eta)^2 S_t + eta^2, and Langevin gives
// eta (1 - exp(-2 eta t)) / 2.
func TestTheoryLinRegByHand(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "pm1.csv")
	os.WriteFile(csv, []byte("x1,y\n1,1\n-1,1\n1,-1\n-1,-1\n"), 0o644)
	out := mustRun(t, dir, "theory", "linreg", "--data", csv, "--val-fraction", "0", "--lr", "0.5", "--batch", "1", "--steps", "3", "--every", "1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	rows := lines[len(lines)-4:]
	eta := 0.5
	s := 0.0
	for i, row := range rows {
		f := strings.Split(row, "\t")
		if len(f) != 3 || f[0] != strconv.Itoa(i) {
			t.Fatalf("row %q", row)
		}
		disc, _ := strconv.ParseFloat(f[1], 64)
		lang, _ := strconv.ParseFloat(f[2], 64)
		wantLang := eta * (1 - math.Exp(-2*eta*float64(i))) / 2
		if math.Abs(disc-s) > 1e-9 || math.Abs(lang-wantLang) > 1e-9 {
			t.Errorf("step %d: discrete %g langevin %g, want %g and %g", i, disc, lang, s, wantLang)
		}
		s = (1-eta)*(1-eta)*s + eta*eta
	}
}

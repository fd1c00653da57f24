package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCompare compares two runs from their summary.json files, with
// flags after the run directories, and checks that --out is refused
// without --compare.
func TestReportCompare(t *testing.T) {
	work := t.TempDir()
	var dirs []string
	for i, s := range []string{
		`{"model":"mlp","ensemble":"lr0.1","eta":0.1,"batch":8,"replicas":16,"steps":100,"params":50,"classes":{"confined":3,"diffusive":2},
		  "directions":[{"source":"top-0","class":"confined","var_final_ci":[1,2],"pred_discrete":1.5,"pred_langevin":3}],
		  "spectrum":{"top":[{"value":12,"residual":0}]},"training":{"final_val_loss":0.25}}`,
		`{"model":"cnn","ensemble":"lr0.2","eta":0.2,"batch":8,"replicas":16,"steps":100,"params":70,"classes":{"unstable":1}}`,
	} {
		dir := filepath.Join(work, []string{"a", "b"}[i])
		os.MkdirAll(filepath.Join(dir, "report"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "report", "summary.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	html := filepath.Join(work, "cmp.html")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"report", "--compare", dirs[0], dirs[1], "--out", html}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rows []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "| "+work) {
			rows = append(rows, l)
		}
	}
	// eta lambda_max = 0.1 * 12 = 1.2; the discrete prediction 1.5 is
	// inside [1, 2], Langevin's 3 is not.
	if len(rows) != 2 || !strings.Contains(rows[0], "| 1.2 |") || !strings.Contains(rows[0], "| 1/1 | 0/1 |") || !strings.Contains(rows[1], "| cnn |") {
		t.Errorf("compare table:\n%s", out.String())
	}
	if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte(`<table class="sortable"`)) {
		t.Errorf("--out page: %v", err)
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"report", "--out", html, dirs[0]}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--compare") {
		t.Errorf("report --out without --compare: exit %d, %q", code, errb.String())
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportRunDirFlags checks that `sgdyn report` takes its run directory
// as --run DIR or --out DIR as well as an argument, from another working
// directory too, and refuses two different directories or --out FILE.html
// without --compare.
func TestReportRunDirFlags(t *testing.T) {
	work := linregRun(t)
	index := filepath.Join(work, "r", "report", "index.html")
	other := filepath.Join(work, "elsewhere")
	os.MkdirAll(other, 0o755)
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{work, []string{"--run", "r"}},
		{other, []string{"--out", "../r"}},
		{work, []string{"r", "--run", "r/"}}, // the same directory twice
		{work, []string{"r"}},
	} {
		os.RemoveAll(filepath.Join(work, "r", "report"))
		args := append([]string{"report", "--resamples", "10"}, c.args...)
		out := mustRun(t, c.dir, args...)
		if _, err := os.Stat(index); err != nil || !strings.Contains(out, "wrote ") {
			t.Errorf("sgdyn %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--run", "r", "--out", "e"}, "--run r and --out e name two run directories; give one"},
		{[]string{"--out", "r", "e"}, "--out r and the argument e name two run directories; give one"},
		{[]string{"--out", "page.html", "r"}, "--out page.html names a page, which is for --compare"},
		{[]string{"--compare", "--run", "r"}, "--run r: --compare takes its run directories as arguments"},
		{nil, "usage: sgdyn report"},
	} {
		args := append([]string{"report", "--resamples", "10"}, c.args...)
		r := sgdyn(t, work, args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("sgdyn %s: exit %d, %q; want 2 and one line with %q", strings.Join(args, " "), r.code, r.stderr, c.want)
		}
	}
}

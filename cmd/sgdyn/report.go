package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/sgdyn/sgdyn/analysis/report"
	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "report [--resamples B] [--level L] [--run] DIR\n       sgdyn report --compare [--out FILE.html] DIR DIR...", stderr)
	resamples := fs.Int("resamples", 1000, "bootstrap resamples over replicas")
	level := fs.Float64("level", 0.95, "confidence level of the intervals")
	primary := fs.String("primary", "", "ensemble `name` that heads the summary (default: the run's own lr and batch, else the largest)")
	compare := fs.Bool("compare", false, "compare the classes and headline numbers of the run directories given, in one table (Markdown on stdout; read-only)")
	// Not runDirFlag: with --compare, --out names the HTML page instead.
	runDir := fs.String("run", "", "run `directory`; its report goes to DIR/report (or give DIR as the argument)")
	out := fs.String("out", "", "the same as --run `directory`; with --compare: also write the table as an HTML file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *compare {
		if *runDir != "" {
			return fmt.Errorf("--run %s: --compare takes its run directories as arguments", *runDir)
		}
		return runCompare(pos, *out, report.Options{Resamples: *resamples, Level: *level}, stdout)
	}
	dir, err := reportDir(*runDir, *out, pos)
	if err != nil {
		return err
	}
	if !(*level > 0 && *level < 1) || *resamples < 10 {
		return fmt.Errorf("--level %g must be in (0, 1) and --resamples %d at least 10", *level, *resamples)
	}
	release, err := experiment.LockReport(dir, "sgdyn report")
	if err != nil {
		return err
	}
	defer release()
	_, err = experiment.WriteReport(dir, report.Options{Resamples: *resamples, Level: *level, Primary: *primary}, stdout)
	return err
}

// reportDir is the one run directory that --run, --out and the arguments
// of `sgdyn report` name; any of them may name it, and several only if
// they name the same directory.
func reportDir(run, out string, pos []string) (string, error) {
	if strings.EqualFold(filepath.Ext(out), ".html") {
		return "", fmt.Errorf("--out %s names a page, which is for --compare; the report of a run goes to RUN_DIR/report", out)
	}
	type naming struct{ by, dir string }
	var names []naming
	if run != "" {
		names = append(names, naming{"--run " + run, run})
	}
	if out != "" {
		names = append(names, naming{"--out " + out, out})
	}
	for _, p := range pos {
		names = append(names, naming{"the argument " + p, p})
	}
	if len(names) == 0 {
		return "", errors.New("usage: sgdyn report [flags] RUN_DIR (or --run RUN_DIR)")
	}
	for _, n := range names[1:] {
		if filepath.Clean(n.dir) != filepath.Clean(names[0].dir) {
			return "", fmt.Errorf("%s and %s name two run directories; give one", names[0].by, n.by)
		}
	}
	return names[0].dir, nil
}

// parseInterspersed parses flags that may follow positional arguments
// ("--compare A B --out x.html"), which flag.Parse alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// runCompare prints the comparison of the runs in dirs as Markdown and,
// with out, writes it as an HTML page. It only reads the runs.
func runCompare(dirs []string, out string, o report.Options, stdout io.Writer) error {
	if len(dirs) < 1 {
		return errors.New("usage: sgdyn report --compare [--out FILE.html] RUN_DIR RUN_DIR...")
	}
	rows, err := report.CompareRuns(dirs, o)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report.CompareMarkdown(rows))
	if out == "" {
		return nil
	}
	page, err := report.CompareHTML(rows)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, page, 0o644); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", out)
	return nil
}

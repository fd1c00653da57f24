package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sgdyn/sgdyn/analysis/report"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "report [--resamples B] [--level L] DIR\n       sgdyn report --compare [--out FILE.html] DIR DIR...", stderr)
	resamples := fs.Int("resamples", 1000, "bootstrap resamples over replicas")
	level := fs.Float64("level", 0.95, "confidence level of the intervals")
	primary := fs.String("primary", "", "ensemble `name` that heads the summary (default: the run's own lr and batch, else the largest)")
	compare := fs.Bool("compare", false, "compare the classes and headline numbers of the run directories given, in one table (Markdown on stdout; read-only)")
	out := fs.String("out", "", "with --compare: also write the table as an HTML `file`")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *compare {
		return runCompare(pos, *out, report.Options{Resamples: *resamples, Level: *level}, stdout)
	}
	if *out != "" {
		return fmt.Errorf("--out %s is for --compare; the report of a run goes to RUN_DIR/report", *out)
	}
	if len(pos) != 1 {
		return errors.New("usage: sgdyn report [flags] RUN_DIR")
	}
	if !(*level > 0 && *level < 1) || *resamples < 10 {
		return fmt.Errorf("--level %g must be in (0, 1) and --resamples %d at least 10", *level, *resamples)
	}
	release, err := lockReport(pos[0])
	if err != nil {
		return err
	}
	defer release()
	return writeReportWith(pos[0], report.Options{Resamples: *resamples, Level: *level, Primary: *primary}, stdout)
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

func writeReport(dir, primary string, stdout io.Writer) error {
	return writeReportWith(dir, report.Options{Primary: primary}, stdout)
}

func writeReportWith(dir string, o report.Options, stdout io.Writer) error {
	r, err := report.Build(dir, o)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "report")
	if err := report.Write(r, out); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	for _, e := range r.Ensembles {
		fmt.Fprintf(stdout, "  %s: ", e.Name)
		first := true
		for _, c := range []string{"confined", "diffusive", "unstable", "null", "undetermined"} {
			if n := e.Counts[c]; n > 0 {
				if !first {
					fmt.Fprint(stdout, ", ")
				}
				fmt.Fprintf(stdout, "%d %s", n, c)
				first = false
			}
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(out, "index.html"))
	return nil
}

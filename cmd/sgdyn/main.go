// Command sgdyn trains networks with plain SGD and measures how SGD moves
// through their loss landscape.
//
// Usage:
//
//	sgdyn train [flags]                     train a model, or continue a run
//	sgdyn hessian --run DIR [flags]         probe the curvature at a run's checkpoint
//	sgdyn ensemble --run DIR --steps T      replicas of SGD from that point
//	sgdyn report DIR                        the variance-growth report
//	sgdyn run [--config NAME] [--out DIR]   all of it
//	sgdyn theory linreg --run DIR --steps T exact linear-regression theory
//	sgdyn data fetch cifar10 --dir D        download and verify CIFAR-10
//
// `sgdyn run` is a thin command line over package experiment, which runs
// the same pipeline from Go (and with a network of the caller's own).
//
// A run directory is named by --run DIR or, equally, --out DIR, in every
// command. Commands that write a run directory hold its lock
// (internal/runlock) while they run, so a second writer is refused at once.
//
// Every command prints a one-line error and exits with status 2 on bad
// input or failure, and with status 130 when interrupted (after writing a
// checkpoint). `sgdyn -h` lists the commands, `sgdyn COMMAND -h` (exit
// status 0) a command's subcommands and flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/train"
)

// Exit statuses.
const (
	exitFailure     = 2
	exitInterrupted = 130
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// subcommands are the argument prefixes whose -h texts make up the
	// command's help, for commands whose flags depend on a subcommand
	// (nil: the command's own -h is its help).
	subcommands [][]string
}

func commands() []command {
	var dataSubs [][]string
	for _, action := range []string{"fetch", "verify"} {
		for _, name := range slices.Sorted(maps.Keys(dataSets())) {
			dataSubs = append(dataSubs, []string{action, name})
		}
	}
	return []command{
		{"train", "train a model with plain SGD, or continue a run", runTrain, nil},
		{"hessian", "probe the mean Hessian and the minibatch noise at a run's reference point", runHessian, nil},
		{"ensemble", "run replicas of SGD from a reference point; merge shards", runEnsemble, [][]string{{}, {"merge"}}},
		{"report", "write the variance-growth report of a run directory", runReport, nil},
		{"run", "the whole experiment: train, probe, ensembles, report", runRun, nil},
		{"theory", "exact linear-regression covariance recursion (discrete and Langevin)", runTheory, [][]string{{"linreg"}}},
		{"data", "fetch or verify data sets", runData, dataSubs},
	}
}

func main() {
	// The first signal stops the run after its current step; a second one
	// kills the process the usual way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(profiled(os.Getenv("SGDYN_CPUPROFILE"), func() int {
		return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}))
}

// profiled runs f, writing a CPU profile of it to file when file is not
// empty: SGDYN_CPUPROFILE=cpu.pprof sgdyn ... then go tool pprof cpu.pprof.
func profiled(file string, f func() int) int {
	if file == "" {
		return f()
	}
	out, err := os.Create(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sgdyn: SGDYN_CPUPROFILE: %v\n", err)
		return exitFailure
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintf(os.Stderr, "sgdyn: SGDYN_CPUPROFILE: %v\n", err)
		return exitFailure
	}
	defer pprof.StopCPUProfile()
	return f()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		if len(args) == 2 && args[0] == "help" {
			args = []string{args[1], "-h"} // sgdyn help COMMAND
		} else {
			usage(ctx, stderr)
			if len(args) == 0 {
				return exitFailure
			}
			return 0
		}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if c.subcommands != nil && wantsCommandHelp(c, args[1:]) {
			commandHelp(ctx, c, stderr)
			return 0
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, train.ErrInterrupted):
			fmt.Fprintf(stderr, "sgdyn %s: %v\n", c.name, err)
			return exitInterrupted
		default:
			fmt.Fprintf(stderr, "sgdyn %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(stderr, "sgdyn: unknown command %q (run 'sgdyn help')\n", args[0])
	return exitFailure
}

// usage lists the commands, each with its usage lines.
func usage(ctx context.Context, w io.Writer) {
	fmt.Fprintln(w, "sgdyn measures how plain SGD moves through a network's loss landscape.")
	fmt.Fprintln(w, "\nUsage: sgdyn COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		var help strings.Builder
		commandHelp(ctx, c, &help)
		var synopses []string
		for _, line := range strings.Split(help.String(), "\n") {
			u, ok := strings.CutPrefix(line, "Usage: ")
			if !ok && strings.HasPrefix(line, "       sgdyn ") {
				u, ok = strings.TrimSpace(line), true
			}
			if ok && !slices.Contains(synopses, u) {
				synopses = append(synopses, u)
				fmt.Fprintf(w, "             %s\n", u)
			}
		}
	}
	fmt.Fprintln(w, "\nA run directory is named by --run DIR or --out DIR, in every command.")
	fmt.Fprintln(w, "Run 'sgdyn COMMAND -h' (or 'sgdyn help COMMAND') for a command's flags.")
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsCommandHelp reports whether args ask for help without naming a
// whole subcommand first ("theory -h", "data fetch -h"); "theory linreg -h"
// is the subcommand's own help.
func wantsCommandHelp(c command, args []string) bool {
	i := slices.IndexFunc(args, isHelp)
	if i < 0 {
		return false
	}
	for _, sub := range c.subcommands {
		if len(sub) > 0 && slices.Equal(args[:i], sub) {
			return false
		}
	}
	return true
}

// commandHelp writes the -h text of c, or of each of its subcommands.
func commandHelp(ctx context.Context, c command, w io.Writer) {
	subs := c.subcommands
	if subs == nil {
		subs = [][]string{{}}
	}
	for i, sub := range subs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		c.run(ctx, append(slices.Clone(sub), "-h"), io.Discard, w)
	}
}

// runDirFlag defines --run and --out as two spellings of one flag naming
// a run directory, so that neither is ever "flag provided but not
// defined"; usage describes --run.
func runDirFlag(fs *flag.FlagSet, usage string) *string {
	d := &dirFlag{}
	fs.Var(dirSpelling{d, "run"}, "run", usage)
	fs.Var(dirSpelling{d, "out"}, "out", "the same as --run `directory`")
	return &d.value
}

type dirFlag struct{ value, setBy string }

// dirSpelling is one name of a dirFlag.
type dirSpelling struct {
	d    *dirFlag
	name string
}

func (s dirSpelling) String() string {
	if s.d == nil {
		return ""
	}
	return s.d.value
}

func (s dirSpelling) Set(v string) error {
	if s.d.setBy != "" && s.d.setBy != s.name && s.d.value != v {
		return fmt.Errorf("--%s %s and --%s %s name two run directories; give one", s.d.setBy, s.d.value, s.name, v)
	}
	s.d.value, s.d.setBy = v, s.name
	return nil
}

// newFlagSet returns a flag set whose errors come back to the caller
// instead of exiting, with usage text on stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sgdyn %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%v", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// reportLock is the lock file of a run's report/ directory.
const reportLock = experiment.ReportLockFile

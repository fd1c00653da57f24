// Command sgdyn trains networks with plain SGD and measures how SGD moves
// through their loss landscape.
//
// Usage:
//
//	sgdyn train [flags]                     train a model, or continue a run
//	sgdyn data fetch cifar10 --dir D        download and verify CIFAR-10
//	sgdyn data verify cifar10 --dir D       check CIFAR-10 files
//
// Every command prints a one-line error and exits with status 2 on bad
// input or failure, and with status 130 when interrupted (after writing a
// checkpoint). Run `sgdyn COMMAND -h` for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
}

func commands() []command {
	return []command{
		{"train", "train a model with plain SGD, or continue a run", runTrain},
		{"hessian", "probe the mean Hessian and the minibatch noise at a run's reference point", runHessian},
		{"ensemble", "run replicas of SGD from a reference point; merge shards", runEnsemble},
		{"report", "write the variance-growth report of a run directory", runReport},
		{"run", "the whole experiment: train, probe, ensembles, report", runRun},
		{"theory", "exact linear-regression covariance recursion (discrete and Langevin)", runTheory},
		{"data", "fetch or verify data sets", runData},
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
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitFailure
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
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

func usage(w io.Writer) {
	fmt.Fprintln(w, "sgdyn measures how plain SGD moves through a network's loss landscape.")
	fmt.Fprintln(w, "\nUsage: sgdyn COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sgdyn COMMAND -h' for a command's flags.")
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

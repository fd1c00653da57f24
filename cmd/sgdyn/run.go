package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/sgdyn/sgdyn/configs"
	"github.com/sgdyn/sgdyn/experiment"
)

// runRun is `sgdyn run`: the command line of experiment.Run.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run [--config FILE|NAME] [--out DIR]", stderr)
	cfgArg := fs.String("config", "", "experiment config: a YAML `file`, or a shipped name ("+strings.Join(configs.Names(), ", ")+"); default "+configs.Default)
	out := runDirFlag(fs, "run `directory` (default runs/<config name>)")
	dataPath := fs.String("data", "", "override data.path (e.g. the CIFAR-10 directory)")
	workers := fs.Int("workers", 0, "ensemble replicas run concurrently (default GOMAXPROCS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	name, c, err := experiment.Load(*cfgArg)
	if err != nil {
		return err
	}
	if *dataPath != "" {
		c.Data.Path = *dataPath
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("runs", name)
	}
	e, err := experiment.New(c, dir, experiment.Options{Out: stdout, Progress: stderr, Workers: *workers})
	if err != nil {
		return err
	}
	_, err = e.Run(ctx)
	return err
}

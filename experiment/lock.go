package experiment

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sgdyn/sgdyn/internal/runlock"
	"github.com/sgdyn/sgdyn/train"
)

// A stage that writes a run directory holds the directory's lock while it
// runs, so that a second writer, in this process or another, is refused at
// once: "run directory DIR is in use by pid N (COMMAND)". Training and the
// survey lock it exclusively; ensembles and the report share it with one
// another (not with training or the survey), and a report also holds the
// report lock, so that two reports never write report/ at once. Run holds
// the exclusive lock throughout.

// ReportLockFile is the lock file of a run's report/ directory, which a
// report replaces whole.
const ReportLockFile = ".report.lock"

// LockShared takes the shared lock of the existing run directory dir for
// command (named in other processes' refusals).
func LockShared(dir, command string) (release func(), err error) {
	l, err := lockRunDir(dir, command, runlock.Shared)
	if err != nil {
		return nil, err
	}
	return func() { l.Release() }, nil
}

func lockRunDir(dir, command string, mode runlock.Mode) (*runlock.Lock, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not an sgdyn run directory (no such directory)", dir)
	}
	return runlock.Acquire(dir, runlock.File, mode, command)
}

// LockNew takes the exclusive lock of dir for command, creating dir if
// needed. release removes the directories it created if they are still
// empty, so a command refused before writing anything leaves no trace.
func LockNew(dir, command string) (release func(), err error) {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	removeCreated := func() {
		for _, d := range created {
			os.Remove(d) // only an empty directory goes
		}
	}
	l, err := runlock.Acquire(dir, runlock.File, runlock.Exclusive, command)
	if err != nil {
		removeCreated()
		return nil, err
	}
	return func() { l.Release(); removeCreated() }, nil
}

// LockTraining takes the exclusive lock of the run directory dir for a
// command that trains, creating dir if needed, and makes c's data path
// absolute, so that the config the run records finds its data from any
// working directory.
func LockTraining(dir string, c *train.Config, command string) (release func(), err error) {
	if *c, err = c.WithAbsDataPath(); err != nil {
		return nil, err
	}
	unlock, err := LockNew(dir, command)
	if err != nil {
		return nil, err
	}
	// train.Train refuses a non-empty directory without a config.yaml, and
	// the lock file makes a new directory non-empty: a new run records its
	// config now, and drops it again if training wrote nothing else.
	fresh := holdsOnly(dir, runlock.File)
	if fresh {
		if err := train.WriteConfig(dir, *c); err != nil {
			unlock()
			return nil, err
		}
	}
	return func() {
		if fresh && holdsOnly(dir, runlock.File, train.ConfigFile) {
			os.Remove(filepath.Join(dir, train.ConfigFile))
		}
		unlock()
	}, nil
}

// holdsOnly reports whether every entry of dir is one of names.
func holdsOnly(dir string, names ...string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			return false
		}
	}
	return true
}

// LockReport takes the locks of a report on dir: the run directory lock
// shared, so that a report can watch ensembles that are still being
// written but never runs beside training or the survey, and the report
// lock exclusive.
func LockReport(dir, command string) (release func(), err error) {
	run, err := lockRunDir(dir, command, runlock.Shared)
	if err != nil {
		return nil, err
	}
	rep, err := runlock.Acquire(dir, ReportLockFile, runlock.Exclusive, command)
	if err != nil {
		run.Release()
		return nil, err
	}
	return func() { rep.Release(); run.Release() }, nil
}

// Package runlock keeps two processes from writing one run directory at
// once.
//
// A lock is an advisory flock(2) on a lock file in the directory (File for
// the run as a whole). Writers that must be alone take it Exclusive; writers
// that may run side by side, such as the shards of one ensemble, take it
// Shared, which keeps the exclusive writers out while they run. Nothing
// waits: a lock held by someone else is refused at once with a BusyError
// that names the holder's pid and command, read from the record each holder
// writes into the lock file.
//
// The kernel releases a flock when its process dies, so a crash or SIGKILL
// never leaves a stale lock; a left-over lock file is only a file. A clean
// Release removes the lock file when no one else holds it.
package runlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// File is the lock file of a run directory.
const File = ".lock"

// Mode is how a lock is shared.
type Mode int

const (
	// Exclusive admits one holder and no shared ones.
	Exclusive Mode = iota
	// Shared admits any number of shared holders and no exclusive one.
	Shared
)

func (m Mode) String() string {
	if m == Shared {
		return "shared"
	}
	return "exclusive"
}

// recordSize is the fixed size of the holder record, "PID COMMAND" padded
// with spaces: shared holders overwrite it in place with one write, so it
// is never a mix of two records.
const recordSize = 128

// BusyError reports a lock held by another process.
type BusyError struct {
	Dir     string // directory of the lock file
	PID     int    // holder's pid; 0 if unknown
	Command string // holder's command, e.g. "sgdyn train"; "" if unknown
}

func (e *BusyError) Error() string {
	if e.PID == 0 {
		who := "another process"
		if e.Command != "" {
			who += " (" + e.Command + ")"
		}
		return fmt.Sprintf("run directory %s is in use by %s", e.Dir, who)
	}
	return fmt.Sprintf("run directory %s is in use by pid %d (%s)", e.Dir, e.PID, e.Command)
}

// Lock is a held lock. Release it when the work is done; the process
// exiting releases it too.
type Lock struct {
	f    *os.File
	path string
	mode Mode
}

// Acquire takes the lock file name (File for the run directory lock) in
// dir, which must exist, for command. It never waits: if another process
// holds the lock in a conflicting mode it returns a *BusyError.
func Acquire(dir, name string, mode Mode, command string) (*Lock, error) {
	path := filepath.Join(dir, name)
	how := syscall.LOCK_EX
	if mode == Shared {
		how = syscall.LOCK_SH
	}
	// A clean Release unlinks the file, so the file we opened may be gone
	// by the time we hold its lock; then we try the file now at path.
	for attempt := 0; attempt < 100; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, busy(dir, path)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !samePathFile(f, path) {
			f.Close()
			continue
		}
		l := &Lock{f: f, path: path, mode: mode}
		if err := l.writeRecord(command); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps being replaced", path)
}

// Mode is how l is held.
func (l *Lock) Mode() Mode { return l.mode }

// Release drops the lock. If no other process holds it, the lock file is
// removed first, so a finished command leaves no file behind. Release is
// safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	fd := int(l.f.Fd())
	// Only a sole holder may remove the file: another holder of the same
	// file would otherwise keep a lock that newcomers no longer see. A
	// shared holder is alone if it can turn its lock exclusive.
	if l.mode == Exclusive || syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		if samePathFile(l.f, l.path) {
			os.Remove(l.path)
		}
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// writeRecord stores "PID COMMAND" at the start of the lock file.
func (l *Lock) writeRecord(command string) error {
	rec := strconv.Itoa(os.Getpid()) + " " + strings.Join(strings.Fields(command), " ")
	if len(rec) > recordSize-1 {
		rec = rec[:recordSize-1]
	}
	b := []byte(rec + strings.Repeat(" ", recordSize-1-len(rec)) + "\n")
	_, err := l.f.WriteAt(b, 0)
	return err
}

// busy describes the holder of path. A holder writes its record just after
// taking the lock, so an empty or dead record is read again briefly.
func busy(dir, path string) *BusyError {
	e := &BusyError{Dir: dir}
	for try := 0; try < 20; try++ {
		b, _ := os.ReadFile(path)
		pidStr, cmd, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		pid, err := strconv.Atoi(pidStr)
		if err == nil && pid > 0 {
			e.Command = strings.TrimSpace(cmd)
			if alive(pid) {
				e.PID = pid
				return e
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// samePathFile reports whether path still names the file f has open.
func samePathFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

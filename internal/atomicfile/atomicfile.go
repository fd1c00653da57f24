// Package atomicfile writes result files so that a crash or kill never
// leaves them half-written.
//
// WriteFile, Write and WriteJSON replace a file whole or not at all: the new
// content goes to a temporary file in the same directory, which is synced
// and then renamed over the target. Log is an append-only JSON Lines log
// whose reader never sees a partial record and whose writer drops a torn
// last line when it reopens the file.
package atomicfile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically: it writes a temporary file in
// the same directory (named "."+base+".tmp-" plus a random suffix), syncs
// it, renames it over path and syncs the directory. On any error before the
// rename the temporary file is removed and path is left untouched.
//
// The file gets mode perm exactly (the umask is not applied).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is WriteFile for a streaming producer: fn writes the content to w,
// which is buffered. If fn returns an error (or panics), nothing is
// replaced, the temporary file is removed and fn's error is returned
// wrapped with the path.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		// Runs on errors and on a panic in fn alike, so no temp file leaks.
		if !committed {
			f.Close() // may already be closed; that error is irrelevant here
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 64<<10)
	if err := fn(bw); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; set the requested mode before it
	// becomes visible under its final name.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	// Sync before rename: otherwise a power loss could leave path naming
	// a file whose data never reached the disk.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	committed = true
	// Without this the rename itself may not survive a power loss.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: write %s: sync directory: %w", path, err)
	}
	return nil
}

// WriteJSON writes v to path atomically as indented JSON with a trailing
// newline, with mode 0644.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'), 0o644)
}

// syncDir fsyncs a directory so that a rename or create in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

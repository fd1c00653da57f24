package atomicfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Log is an append-only line log, typically JSON Lines. Every Append or
// AppendLine writes one complete line, terminated by '\n', with a single
// write call, so the file always consists of complete lines plus at most
// one torn line at the end (after a kill in the middle of a write).
// Appended lines reach the operating system at once and so survive a kill
// of the process; Sync makes them survive a power loss too.
//
// A Log is safe for concurrent use.
type Log struct {
	path string

	mu   sync.Mutex
	f    *os.File // nil after Close
	size int64
	err  error // sticky: set when a failed write could not be undone
}

// OpenLog opens the log at path for appending, creating it (mode 0644) if
// needed.
//
// If keep >= 0 the file is first truncated to exactly keep bytes, which is
// how a run resumes from a checkpoint that recorded Size: records appended
// after the checkpoint are discarded. It is an error if the file is shorter
// than keep, or if keep does not end at a line boundary.
//
// If the file's last line is torn (it has no trailing newline, as after a
// kill during a write), the torn bytes are truncated away so that they are
// never read as data or glued to the next record.
func OpenLog(path string, keep int64) (*Log, error) {
	// O_APPEND: every write goes to the current end, even after Truncate.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: open log: %w", err)
	}
	l, err := openLog(f, path, keep)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func openLog(f *os.File, path string, keep int64) (*Log, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("atomicfile: open log: %w", err)
	}
	size := st.Size()
	end := size
	if keep >= 0 {
		if size < keep {
			return nil, fmt.Errorf("atomicfile: open log %s: file has %d bytes, fewer than the %d to keep", path, size, keep)
		}
		end = keep
		if keep > 0 {
			var b [1]byte
			if _, err := f.ReadAt(b[:], keep-1); err != nil {
				return nil, fmt.Errorf("atomicfile: open log %s: %w", path, err)
			}
			if b[0] != '\n' {
				return nil, fmt.Errorf("atomicfile: open log %s: keep offset %d is not at the end of a line", path, keep)
			}
		}
	} else {
		end, err = lastLineEnd(f, size)
		if err != nil {
			return nil, fmt.Errorf("atomicfile: open log %s: %w", path, err)
		}
	}
	if end != size {
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("atomicfile: open log %s: %w", path, err)
		}
		// Make the truncation durable before new records follow it, so a
		// power loss cannot resurrect the dropped bytes between them.
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("atomicfile: open log %s: %w", path, err)
		}
	}
	return &Log{path: path, f: f, size: end}, nil
}

// lastLineEnd returns the offset just past the last '\n' in the first size
// bytes of f, or 0 if there is none.
func lastLineEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 32<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		start := end - n
		if _, err := f.ReadAt(buf[:n], start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Append appends json.Marshal(v) and a newline as one line. (Marshal
// never emits a raw newline: newlines inside strings are escaped.)
func (l *Log) Append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("atomicfile: append to %s: %w", l.path, err)
	}
	return l.AppendLine(b)
}

// AppendLine appends line and a newline. The line must not contain '\n'.
func (l *Log) AppendLine(line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return fmt.Errorf("atomicfile: append to %s: line contains a newline", l.path)
	}
	buf := make([]byte, len(line)+1)
	copy(buf, line)
	buf[len(line)] = '\n'

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	n, err := l.f.Write(buf)
	if err == nil {
		l.size += int64(n)
		return nil
	}
	// A partial write would leave a torn line that the next record would be
	// glued onto; cut it off, or refuse further appends if that fails.
	if n > 0 {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.err = fmt.Errorf("atomicfile: log %s is unusable after a failed append: %w", l.path, err)
		}
	}
	return fmt.Errorf("atomicfile: append to %s: %w", l.path, err)
}

// usable reports why the log cannot be written to, if it cannot.
func (l *Log) usable() error {
	if l.f == nil {
		return fmt.Errorf("atomicfile: log %s: %w", l.path, os.ErrClosed)
	}
	return l.err
}

// Size returns the size of the log in bytes, i.e. the offset of the end of
// the last appended line. Record it in a checkpoint and pass it to OpenLog
// as keep to resume from that checkpoint.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Sync commits the appended lines to stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("atomicfile: sync log %s: %w", l.path, os.ErrClosed)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync log %s: %w", l.path, err)
	}
	return nil
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("atomicfile: close log %s: %w", l.path, os.ErrClosed)
	}
	f := l.f
	l.f = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("atomicfile: close log %s: %w", l.path, err)
	}
	return nil
}

// ReadLog calls fn for each complete line of the log at path, without the
// trailing newline. The slice passed to fn is valid only during the call.
// A torn last line (bytes after the last newline) is not passed to fn;
// ReadLog reports it with torn == true. While a writer is appending, a
// torn tail is normally just a line still being written.
//
// Because lines are passed to fn only once their newline has been read,
// ReadLog is safe to call while another process or goroutine appends: it
// never sees a partial record. An error from fn stops the reading and is
// returned with the path and line number.
func ReadLog(path string, fn func(line []byte) error) (torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("atomicfile: read log: %w", err)
	}
	defer f.Close()

	r := bufio.NewReaderSize(f, 64<<10)
	var long []byte // accumulates lines longer than the buffer
	for lineNo := 1; ; {
		chunk, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			line := chunk[:len(chunk)-1]
			if long != nil {
				long = append(long, line...)
				line, long = long, nil
			}
			if err := fn(line); err != nil {
				return false, fmt.Errorf("atomicfile: read log %s:%d: %w", path, lineNo, err)
			}
			lineNo++
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, chunk...)
		case errors.Is(err, io.EOF):
			return len(chunk) > 0 || len(long) > 0, nil
		default:
			return false, fmt.Errorf("atomicfile: read log %s: %w", path, err)
		}
	}
}

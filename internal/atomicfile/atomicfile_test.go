package atomicfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dirNames lists the names in dir, to check that no temp files are left.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := WriteFile(p, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Fatalf("ReadFile = %q, %v; want \"two\"", got, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", st.Mode().Perm())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only out.txt", names)
	}
}

// TestWriteFailureKeepsOriginal simulates a writer dying midway: the
// producer writes part of the new content, then fails.
func TestWriteFailureKeepsOriginal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	orig := []byte(`{"loss": 1.5}` + "\n")
	if err := WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		// More than the internal buffer, so part of it reaches the temp file.
		w.Write(bytes.Repeat([]byte("x"), 200<<10))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want wrapping boom", err)
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error %q does not name %s", err, p)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("after failed Write, file = %q, %v; want original %q", got, err, orig)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "results.json" {
		t.Errorf("directory holds %q, want only results.json (temp file leaked)", names)
	}
}

func TestWritePanicRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic did not propagate")
			}
		}()
		Write(p, 0o644, func(w io.Writer) error {
			w.Write([]byte("partial"))
			panic("producer crashed")
		})
	}()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after a panic, want nothing", names)
	}
}

func TestTempFileName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.bin")
	var seen []string
	err := Write(p, 0o644, func(w io.Writer) error {
		seen = dirNames(t, dir)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], ".x.bin.tmp-") {
		t.Errorf("while writing, directory holds %q, want one .x.bin.tmp-* file", seen)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "dir", "f.json")
	err := WriteFile(p, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error %q does not name the path %s", err, p)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v is not ErrNotExist", err)
	}
}

func TestWriteJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cfg.json")
	v := map[string]any{"lr": 0.1, "steps": 3}
	if err := WriteJSON(p, v); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"lr\": 0.1,\n  \"steps\": 3\n}\n"
	if string(got) != want {
		t.Errorf("WriteJSON wrote %q, want %q", got, want)
	}
	if err := WriteJSON(p, func() {}); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("WriteJSON of a func: error %v, want one naming %s", err, p)
	}
}

type rec struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

func readAll(t *testing.T, p string) ([]rec, bool) {
	t.Helper()
	var recs []rec
	torn, err := ReadLog(p, func(line []byte) error {
		var r rec
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, torn
}

func TestLogAppendRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	l, err := OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Append(rec{i, float64(i) / 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AppendLine([]byte("bad\nline")); err == nil {
		t.Error("AppendLine accepted a line with a newline")
	}
	st, _ := os.Stat(p)
	if l.Size() != st.Size() {
		t.Errorf("Size() = %d, file has %d bytes", l.Size(), st.Size())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec{}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	recs, torn := readAll(t, p)
	if torn || len(recs) != 5 || recs[4] != (rec{4, 2}) {
		t.Errorf("ReadLog = %v, torn %v", recs, torn)
	}

	// Reopening appends after the existing records.
	l, err = OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(rec{5, 9})
	l.Close()
	if recs, _ := readAll(t, p); len(recs) != 6 || recs[5] != (rec{5, 9}) {
		t.Errorf("after reopen, ReadLog = %v", recs)
	}
}

func TestOpenLogTruncatesTornLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	good := "{\"step\":0,\"loss\":1}\n{\"step\":1,\"loss\":2}\n"
	// A kill in the middle of writing the third record.
	if err := os.WriteFile(p, []byte(good+`{"step":2,"lo`), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, torn := readAll(t, p)
	if !torn || len(recs) != 2 {
		t.Errorf("ReadLog of torn file = %v, torn %v; want 2 records, torn", recs, torn)
	}
	l, err := OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != int64(len(good)) {
		t.Errorf("Size() = %d, want %d", l.Size(), len(good))
	}
	l.Append(rec{2, 3})
	l.Close()
	got, _ := os.ReadFile(p)
	if want := good + "{\"step\":2,\"loss\":3}\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}

	// A file holding only a torn line becomes empty.
	os.WriteFile(p, []byte(`{"st`), 0o644)
	l, err = OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if st, _ := os.Stat(p); st.Size() != 0 {
		t.Errorf("size = %d, want 0", st.Size())
	}
}

func TestOpenLogKeep(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	l, err := OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(rec{0, 1})
	l.Append(rec{1, 1})
	checkpoint := l.Size()
	l.Append(rec{2, 1}) // written after the checkpoint: must be dropped on resume
	l.Close()

	l, err = OpenLog(p, checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != checkpoint {
		t.Errorf("Size() = %d, want %d", l.Size(), checkpoint)
	}
	l.Append(rec{2, 7})
	l.Close()
	recs, _ := readAll(t, p)
	if len(recs) != 3 || recs[2] != (rec{2, 7}) {
		t.Errorf("after resume, records = %v", recs)
	}

	if _, err := OpenLog(p, 0); err != nil {
		t.Errorf("OpenLog(keep=0): %v", err)
	}
	if st, _ := os.Stat(p); st.Size() != 0 {
		t.Errorf("keep=0 left %d bytes", st.Size())
	}
}

func TestOpenLogKeepTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	os.WriteFile(p, []byte("{}\n{}\n"), 0o644)
	_, err := OpenLog(p, 100)
	if err == nil {
		t.Fatal("OpenLog with keep beyond the end succeeded")
	}
	for _, s := range []string{p, "6", "100"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if got, _ := os.ReadFile(p); string(got) != "{}\n{}\n" {
		t.Errorf("failed OpenLog changed the file to %q", got)
	}
	// keep in the middle of a line is a bad checkpoint, not a torn line.
	if _, err := OpenLog(p, 4); err == nil {
		t.Error("OpenLog with keep inside a line succeeded")
	}
}

func TestReadLogLongLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	l, _ := OpenLog(p, -1)
	long := strings.Repeat("a", 200<<10)
	l.Append(long)
	l.Append("short")
	l.Close()
	var got []string
	torn, err := ReadLog(p, func(line []byte) error {
		var s string
		err := json.Unmarshal(line, &s)
		got = append(got, s)
		return err
	})
	if err != nil || torn || len(got) != 2 || got[0] != long || got[1] != "short" {
		t.Errorf("ReadLog: %d lines, torn %v, err %v", len(got), torn, err)
	}
}

func TestReadLogCallbackError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	os.WriteFile(p, []byte("{}\nnot json\n"), 0o644)
	_, err := ReadLog(p, func(line []byte) error {
		var v any
		return json.Unmarshal(line, &v)
	})
	if err == nil || !strings.Contains(err.Error(), p+":2") {
		t.Errorf("error %v, want one naming %s:2", err, p)
	}
}

// TestReadLogConcurrent reads the log repeatedly while another goroutine
// appends to it: every line ReadLog returns must be a whole record, and
// records appear in order. Run with -race.
func TestReadLogConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	l, err := OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	pad := strings.Repeat("p", 300) // records span buffer and page boundaries
	type big struct {
		Step int    `json:"step"`
		Pad  string `json:"pad"`
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := l.Append(big{i, pad}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for reads := 0; ; reads++ {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		next := 0
		_, err := ReadLog(p, func(line []byte) error {
			var b big
			if err := json.Unmarshal(line, &b); err != nil {
				return err
			}
			if b.Step != next || b.Pad != pad {
				return errors.New("record out of order or damaged")
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if finished {
			if next != n {
				t.Fatalf("final read saw %d records, want %d", next, n)
			}
			break
		}
	}
	l.Close()
}

// TestLogKill kills a real writer process at an arbitrary moment: the log
// must read back as whole records in order, and reopen cleanly.
func TestLogKill(t *testing.T) {
	if p := os.Getenv("ATOMICFILE_KILL_CHILD"); p != "" {
		l, err := OpenLog(p, -1)
		if err != nil {
			os.Exit(2)
		}
		for i := 0; ; i++ {
			if l.Append(rec{i, float64(i)}) != nil {
				os.Exit(3)
			}
		}
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	p := filepath.Join(t.TempDir(), "log.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogKill$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_KILL_CHILD="+p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(p); err == nil && st.Size() > 100<<10 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child wrote too little")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()

	recs, _ := readAll(t, p)
	for i, r := range recs {
		if r != (rec{i, float64(i)}) {
			t.Fatalf("record %d = %v", i, r)
		}
	}
	l, err := OpenLog(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	n := len(recs)
	l.Append(rec{n, float64(n)})
	l.Close()
	if recs, torn := readAll(t, p); torn || len(recs) != n+1 {
		t.Errorf("after reopen: %d records, torn %v; want %d, not torn", len(recs), torn, n+1)
	}
}

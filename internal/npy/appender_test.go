package npy

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio/npy"
)

const cols = 3

// row returns the test row i: distinct values so misplaced rows show up.
func row(i int) []float64 {
	r := make([]float64, cols)
	for j := range r {
		r[j] = float64(i*cols+j) + 0.5
	}
	return r
}

// rows returns rows [from, to) concatenated.
func rows(from, to int) []float64 {
	var out []float64
	for i := from; i < to; i++ {
		out = append(out, row(i)...)
	}
	return out
}

// readRows reads an appender file with ReadNPY and checks its shape.
func readRows(t *testing.T, p string) []float64 {
	t.Helper()
	shape, data, err := ReadNPY(p)
	if err != nil {
		t.Fatal(err)
	}
	d := data.([]float64)
	if len(shape) != 2 || shape[1] != cols || shape[0]*cols != len(d) {
		t.Fatalf("shape %v with %d elements", shape, len(d))
	}
	return d
}

func appendRows(t *testing.T, a *Appender, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := a.Append(row(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppender(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, err := CreateAppender(p, cols, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, p); len(got) != 0 {
		t.Errorf("new appender file has %d elements", len(got))
	}
	hdrLen := 0
	for i := range 1000 {
		if err := a.Append(row(i)); err != nil {
			t.Fatal(err)
		}
		if a.Rows() != int64(i+1) {
			t.Fatalf("Rows() = %d after %d appends", a.Rows(), i+1)
		}
		if (i+1)%64 != 0 {
			continue
		}
		// Just flushed: the header is valid and its length never changes.
		raw, _ := os.ReadFile(p)
		n := checkHeader(t, raw, "<f8", []int{i + 1, cols})
		if hdrLen != 0 && n != hdrLen {
			t.Fatalf("header length changed from %d to %d", hdrLen, n)
		}
		hdrLen = n
		if len(raw) != n+(i+1)*cols*8 {
			t.Fatalf("file has %d bytes after %d rows", len(raw), i+1)
		}
	}
	// 1000 = 15*64 + 40: the last 40 rows are still buffered.
	if got := readRows(t, p); !slices.Equal(got, rows(0, 960)) {
		t.Errorf("before Close, file holds %d rows, want the 960 flushed", len(got)/cols)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, p); !slices.Equal(got, rows(0, 1000)) {
		t.Errorf("read back %d rows, want 1000 equal rows", len(got)/cols)
	}
	if err := a.Append(row(0)); err == nil {
		t.Error("Append after Close succeeded")
	}
	if err := a.Close(); err == nil {
		t.Error("second Close succeeded")
	}

	// An independent reader agrees.
	f, _ := os.Open(p)
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	if err := r.Read(&got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Header.Descr.Shape, []int{1000, cols}) || !slices.Equal(got, rows(0, 1000)) {
		t.Errorf("npyio read shape %v", r.Header.Descr.Shape)
	}
}

func TestAppenderRowLength(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, err := CreateAppender(p, cols, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Append([]float64{1}); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("short row: error %v", err)
	}
	if _, err := CreateAppender(p, 0, 4); err == nil {
		t.Error("CreateAppender with 0 cols succeeded")
	}
}

// TestAppenderHeaderRoom checks that the header can hold any int64 row
// count without growing.
func TestAppenderHeaderRoom(t *testing.T) {
	for _, c := range []int{1, 3, 1000, math.MaxInt64} {
		total := growableHeaderLen(c)
		if total%64 != 0 {
			t.Errorf("cols %d: header length %d not a multiple of 64", c, total)
		}
		if _, err := encodeHeader("<f8", []int{math.MaxInt64, c}, total); err != nil {
			t.Errorf("cols %d: %v", c, err)
		}
	}
}

// crash simulates a kill of the writer: the file is abandoned without
// Close, with the given bytes of a half-written row after the data.
func crash(t *testing.T, a *Appender, torn []byte) {
	t.Helper()
	if _, err := a.f.WriteAt(torn, a.dataOff+a.flushed*a.rowBytes); err != nil {
		t.Fatal(err)
	}
	a.f.Close()
}

func TestAppenderCrashResume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, err := CreateAppender(p, cols, 64)
	if err != nil {
		t.Fatal(err)
	}
	appendRows(t, a, 0, 130) // 128 flushed, 2 buffered and lost
	crash(t, a, []byte("garbage: a torn row"))

	// Readers see the 128 rows the header counts and ignore the tail.
	if got := readRows(t, p); !slices.Equal(got, rows(0, 128)) {
		t.Fatalf("after crash, ReadNPY gives %d rows, want 128", len(got)/cols)
	}

	a, err = OpenAppender(p, 64, -1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows() != 128 {
		t.Errorf("reopened Rows() = %d, want 128", a.Rows())
	}
	st, _ := os.Stat(p)
	if want := a.dataOff + 128*cols*8; st.Size() != want {
		t.Errorf("after OpenAppender, file has %d bytes, want %d (torn tail dropped)", st.Size(), want)
	}
	appendRows(t, a, 128, 200)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, p); !slices.Equal(got, rows(0, 200)) {
		t.Errorf("after resume, read %d rows, want rows 0..199", len(got)/cols)
	}
}

func TestAppenderKeepRows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, _ := CreateAppender(p, cols, 16)
	appendRows(t, a, 0, 100)
	a.Close()
	before, _ := os.ReadFile(p)

	// More rows than present: an error naming both counts, file unchanged.
	_, err := OpenAppender(p, 16, 101)
	if err == nil {
		t.Fatal("OpenAppender keeping 101 of 100 rows succeeded")
	}
	for _, s := range []string{p, "101", "100"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if after, _ := os.ReadFile(p); !slices.Equal(before, after) {
		t.Error("failed OpenAppender changed the file")
	}

	// Resume from a checkpoint at row 50 after a crash left a torn tail.
	a, err = OpenAppender(p, 16, -1)
	if err != nil {
		t.Fatal(err)
	}
	crash(t, a, []byte{1, 2, 3})
	a, err = OpenAppender(p, 16, 50)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows() != 50 {
		t.Errorf("Rows() = %d, want 50", a.Rows())
	}
	raw, _ := os.ReadFile(p)
	n := checkHeader(t, raw, "<f8", []int{50, cols})
	if len(raw) != n+50*cols*8 {
		t.Errorf("file has %d bytes, want %d", len(raw), n+50*cols*8)
	}
	appendRows(t, a, 1000, 1010)
	a.Close()
	if got := readRows(t, p); !slices.Equal(got, append(rows(0, 50), rows(1000, 1010)...)) {
		t.Errorf("after keepRows resume, read %d rows", len(got)/cols)
	}

	if a, err := OpenAppender(p, 16, 0); err != nil || a.Rows() != 0 {
		t.Errorf("keepRows=0: %v", err)
	} else {
		a.Close()
	}
}

func TestOpenAppenderRejects(t *testing.T) {
	dir := t.TempDir()
	p1 := filepath.Join(dir, "f4.npy")
	WriteNPY(p1, []int{2, 3}, seq32(6))
	p2 := filepath.Join(dir, "1d.npy")
	WriteNPY(p2, []int{6}, seq(6))
	// A valid 2-D file whose header is too tight to rewrite in place.
	p3 := filepath.Join(dir, "tight.npy")
	os.WriteFile(p3, rawNPY("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", make([]byte, 8)), 0o644)
	// A header claiming more rows than the file holds.
	p4 := filepath.Join(dir, "short.npy")
	a, _ := CreateAppender(p4, cols, 1)
	appendRows(t, a, 0, 4)
	a.Close()
	raw, _ := os.ReadFile(p4)
	os.WriteFile(p4, raw[:len(raw)-8], 0o644)

	for _, c := range []struct{ p, want string }{
		{p1, "'<f8'"},
		{p2, "2-D"},
		{p3, "no room"},
		{p4, "header counts 4 rows"},
		{filepath.Join(dir, "missing.npy"), "missing.npy"},
	} {
		_, err := OpenAppender(c.p, 4, -1)
		if err == nil || !strings.Contains(err.Error(), c.p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenAppender(%s): error %v, want %q", filepath.Base(c.p), err, c.want)
		}
	}
}

// TestAppenderConcurrentRead reads the file while it grows: every read
// sees whole flushed chunks, never a row the header counts but that is
// not written.
func TestAppenderConcurrentRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	const chunk, n = 8, 2000
	a, err := CreateAppender(p, cols, chunk)
	if err != nil {
		t.Fatal(err)
	}
	all := rows(0, n)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := a.Append(row(i)); err != nil {
				t.Error(err)
				break
			}
		}
		close(done)
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		_, data, err := ReadNPY(p)
		if err != nil {
			t.Fatal(err)
		}
		got := data.([]float64)
		if len(got)%(chunk*cols) != 0 || !slices.Equal(got, all[:len(got)]) {
			t.Fatalf("read %d elements, not a prefix of whole chunks", len(got))
		}
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAppenderBytes pins the exact header bytes, the contract with numpy.
func TestAppenderBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, _ := CreateAppender(p, 2, 1)
	a.Append([]float64{1, 2})
	a.Close()
	raw, _ := os.ReadFile(p)
	if string(raw[:8]) != "\x93NUMPY\x01\x00" || binary.LittleEndian.Uint16(raw[8:10]) != 128-10 {
		t.Errorf("prefix %q", raw[:10])
	}
	want := "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }" + strings.Repeat(" ", 58) + "\n"
	if string(raw[10:128]) != want {
		t.Errorf("header %q, want %q", raw[10:128], want)
	}
	if len(raw) != 128+16 || math.Float64frombits(binary.LittleEndian.Uint64(raw[128:])) != 1 {
		t.Errorf("data %v", raw[128:])
	}
}

func TestAppenderSync(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traj.npy")
	a, err := CreateAppender(p, cols, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	appendRows(t, a, 0, 5)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, p); !slices.Equal(got, rows(0, 5)) {
		t.Errorf("after Sync, read %d rows, want 5", len(got)/cols)
	}
}

// TestAppenderKill kills a real writer process at an arbitrary moment and
// checks that the file is a consistent prefix that can be resumed.
func TestAppenderKill(t *testing.T) {
	if p := os.Getenv("NPY_KILL_CHILD"); p != "" {
		a, err := CreateAppender(p, cols, 7)
		if err != nil {
			os.Exit(2)
		}
		for i := 0; ; i++ {
			if a.Append(row(i)) != nil {
				os.Exit(3)
			}
		}
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	p := filepath.Join(t.TempDir(), "traj.npy")
	cmd := exec.Command(os.Args[0], "-test.run=^TestAppenderKill$")
	cmd.Env = append(os.Environ(), "NPY_KILL_CHILD="+p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child has written a good number of rows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, data, err := ReadNPY(p); err == nil && len(data.([]float64)) >= 5000*cols {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child wrote too few rows")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()

	got := readRows(t, p)
	n := len(got) / cols
	if n%7 != 0 || !slices.Equal(got, rows(0, n)) {
		t.Fatalf("after kill, file holds %d rows that are not whole chunks of the right rows", n)
	}
	a, err := OpenAppender(p, 7, -1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows() != int64(n) {
		t.Errorf("OpenAppender: Rows() = %d, want %d", a.Rows(), n)
	}
	appendRows(t, a, n, n+10)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, p); !slices.Equal(got, rows(0, n+10)) {
		t.Errorf("after resume, read %d rows, want %d", len(got)/cols, n+10)
	}
}

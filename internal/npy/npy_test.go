package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npz"
)

// seq returns n float64 values, including values whose bits matter.
func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i)*1.25 - 3
	}
	if n > 2 {
		s[1] = math.Inf(-1)
		s[2] = math.Copysign(0, -1)
	}
	return s
}

func seq32(n int) []float32 {
	s := make([]float32, n)
	for i, v := range seq(n) {
		s[i] = float32(v)
	}
	return s
}

// sameBits compares float slices bit for bit (so NaN and -0 count).
func sameBits(a, b any) bool {
	switch a := a.(type) {
	case []float64:
		b, ok := b.([]float64)
		return ok && slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
	case []float32:
		b, ok := b.([]float32)
		return ok && slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
	}
	return false
}

// checkHeader checks the raw header of a file we wrote: numpy format 1.0,
// length a multiple of 64, the given dtype, C order and shape. It returns
// the header length.
func checkHeader(t *testing.T, raw []byte, descr string, shape []int) int {
	t.Helper()
	if len(raw) < 10 || string(raw[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("file starts %q, want magic and version 1.0", raw[:min(len(raw), 10)])
	}
	total := 10 + int(binary.LittleEndian.Uint16(raw[8:10]))
	if total%64 != 0 {
		t.Errorf("header length %d is not a multiple of 64", total)
	}
	if total > len(raw) {
		t.Fatalf("header length %d exceeds file size %d", total, len(raw))
	}
	text := string(raw[10:total])
	want := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeString(shape) + ", }"
	if !strings.HasPrefix(text, want) || strings.TrimLeft(text[len(want):], " ") != "\n" {
		t.Errorf("header text %q, want %q padded with spaces and a newline", text, want)
	}
	return total
}

var shapes = [][]int{{7}, {2, 3}, {2, 3, 4}, {}, {0, 5}}

func TestNPYRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range shapes {
		n, _ := numElems(shape)
		for _, data := range []any{seq(n), seq32(n)} {
			p := filepath.Join(dir, "a.npy")
			if err := WriteNPY(p, shape, data); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(p)
			descr := "<f8"
			if _, ok := data.([]float32); ok {
				descr = "<f4"
			}
			checkHeader(t, raw, descr, shape)

			gotShape, got, err := ReadNPY(p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gotShape, shape) || !sameBits(got, data) {
				t.Errorf("%s %v: read back shape %v data %v, want %v", descr, shape, gotShape, got, data)
			}
		}
	}
}

// TestNPYReadableByNpyio checks our files with an independent reader.
func TestNPYReadableByNpyio(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.npy")
	data := seq(24)
	if err := WriteNPY(p, []int{2, 3, 4}, data); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	if err := r.Read(&got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Header.Descr.Shape, []int{2, 3, 4}) || r.Header.Descr.Fortran || !sameBits(got, data) {
		t.Errorf("npyio read header %v data %v", r.Header, got)
	}
}

// TestReadNpyioWritten reads files from an independent writer, which uses
// format 2.0 and unaligned headers.
func TestReadNpyioWritten(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		v     any
		shape []int
		want  any
	}{
		{seq32(5), []int{5}, seq32(5)},
		{[2][3]float64{{1, 2, 3}, {4, 5, 6}}, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if err := npy.Write(&buf, c.v); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "n.npy")
		os.WriteFile(p, buf.Bytes(), 0o644)
		shape, data, err := ReadNPY(p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, c.shape) || !sameBits(data, c.want) {
			t.Errorf("ReadNPY(npyio %T) = %v %v, want %v %v", c.v, shape, data, c.shape, c.want)
		}
	}
}

// rawNPY builds a .npy file with an arbitrary header dictionary.
func rawNPY(dict string, data []byte) []byte {
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	b = append(b, dict...)
	b = append(b, '\n')
	return append(b, data...)
}

func TestReadBigEndian(t *testing.T) {
	p := filepath.Join(t.TempDir(), "be.npy")
	var data []byte
	for _, v := range []float64{1.5, -2} {
		data = binary.BigEndian.AppendUint64(data, math.Float64bits(v))
	}
	os.WriteFile(p, rawNPY("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", data), 0o644)
	shape, got, err := ReadNPY(p)
	if err != nil || !slices.Equal(shape, []int{2}) || !sameBits(got, []float64{1.5, -2}) {
		t.Errorf("ReadNPY = %v %v %v", shape, got, err)
	}
}

func TestReadNPYErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.npy")
	if err := WriteNPY(good, []int{10, 10}, seq(100)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	f8 := make([]byte, 16)
	cases := []struct {
		name, want string
		content    []byte
	}{
		{"truncated-data", "truncated data", raw[:len(raw)-5]},
		{"truncated-header", "truncated header", raw[:40]},
		{"empty", "truncated header", nil},
		{"bad-magic", "bad magic", append([]byte("\x93NUMPX"), raw[6:]...)},
		{"int-dtype", "unsupported dtype \"<i8\"", rawNPY("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", f8)},
		{"fortran", "Fortran", rawNPY("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 2), }", f8)},
		{"structured", "structured", rawNPY("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", f8)},
		{"bad-version", "version 9.0", append([]byte("\x93NUMPY\x09\x00"), raw[8:]...)},
		{"missing-key", "missing key \"shape\"", rawNPY("{'descr': '<f8', 'fortran_order': False, }", f8)},
		{"no-brace", "want '{'", rawNPY("'descr': '<f8'", f8)},
		{"huge-shape", "truncated data", rawNPY("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", f8)},
		{"overflow-shape", "too large", rawNPY("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", f8)},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name+".npy")
		os.WriteFile(p, c.content, 0o644)
		_, _, err := ReadNPY(p)
		if err == nil {
			t.Errorf("%s: ReadNPY succeeded", c.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "npy "+p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want prefix %q and %q", c.name, err, "npy "+p+": ", c.want)
		}
	}
	if _, _, err := ReadNPY(filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("ReadNPY(missing) error %v", err)
	}
	// A 1-D Fortran-order array is laid out like a C-order one.
	p := filepath.Join(dir, "f1.npy")
	os.WriteFile(p, rawNPY("{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }", f8), 0o644)
	if _, _, err := ReadNPY(p); err != nil {
		t.Errorf("1-D fortran_order: %v", err)
	}
}

func TestWriteNPYErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.npy")
	for _, c := range []struct {
		shape []int
		data  any
		want  string
	}{
		{[]int{2, 2}, seq(3), "needs 4 elements, data has 3"},
		{[]int{3}, []int{1, 2, 3}, "unsupported data type []int"},
		{[]int{-1}, seq(1), "negative"},
		{[]int{}, seq(2), "needs 1 elements"},
	} {
		err := WriteNPY(p, c.shape, c.data)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteNPY(%v, %T): error %v, want %q", c.shape, c.data, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed writes left %d files", len(ents))
	}
	err := WriteNPY(filepath.Join(dir, "nodir", "a.npy"), []int{1}, seq(1))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nodir", "a.npy")) {
		t.Errorf("WriteNPY into a missing directory: %v", err)
	}
}

func testArrays() []Array {
	return []Array{
		{Name: "w", Shape: []int{2, 3, 4}, F64: seq(24)},
		{Name: "loss", Shape: []int{5}, F32: seq32(5)},
		{Name: "a", Shape: []int{3, 2}, F64: seq(6)},
		{Name: "empty", Shape: []int{0}, F32: []float32{}},
	}
}

func TestNPZRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.npz")
	want := testArrays()
	if err := WriteNPZ(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadNPZ = %+v\nwant %+v", got, want)
	}
	// Same arrays, same bytes: results can be compared by checksum.
	first, _ := os.ReadFile(p)
	WriteNPZ(p, want)
	if second, _ := os.ReadFile(p); !bytes.Equal(first, second) {
		t.Error("writing the same arrays twice gave different files")
	}
}

// TestNPZReadableByNpyio checks our archive's member names, order and
// contents with an independent reader.
func TestNPZReadableByNpyio(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.npz")
	arrays := testArrays()
	if err := WriteNPZ(p, arrays); err != nil {
		t.Fatal(err)
	}
	r, err := npz.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if want := []string{"w.npy", "loss.npy", "a.npy", "empty.npy"}; !slices.Equal(r.Keys(), want) {
		t.Errorf("members %q, want %q", r.Keys(), want)
	}
	var w []float64
	if err := r.Read("w.npy", &w); err != nil {
		t.Fatal(err)
	}
	if h := r.Header("w.npy"); h == nil || !slices.Equal(h.Descr.Shape, []int{2, 3, 4}) || !sameBits(w, arrays[0].F64) {
		t.Errorf("npyio read w: header %v data %v", h, w)
	}
}

func TestReadNPZForeign(t *testing.T) {
	dir := t.TempDir()
	// npyio's writer: format 2.0 headers, members sorted by name.
	p := filepath.Join(dir, "npyio.npz")
	if err := npz.Write(p, map[string]any{"b.npy": seq32(3), "a.npy": seq(4)}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Array{{Name: "a", Shape: []int{4}, F64: seq(4)}, {Name: "b", Shape: []int{3}, F32: seq32(3)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadNPZ(npyio) = %+v, want %+v", got, want)
	}

	// Deflated members, as numpy.savez_compressed writes.
	p = filepath.Join(dir, "deflate.npz")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	mw, _ := zw.CreateHeader(&zip.FileHeader{Name: "x.npy", Method: zip.Deflate})
	encode(mw, []int{2, 2}, seq(4))
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	got, err = ReadNPZ(p)
	if err != nil || len(got) != 1 || got[0].Name != "x" || !sameBits(got[0].F64, seq(4)) {
		t.Errorf("ReadNPZ(deflate) = %+v, %v", got, err)
	}
}

func TestNPZErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.npz")
	for _, c := range []struct {
		arrays []Array
		want   string
	}{
		{[]Array{{Name: "", Shape: []int{1}, F64: seq(1)}}, "empty name"},
		{[]Array{{Name: "x", Shape: []int{1}, F64: seq(1)}, {Name: "x", Shape: []int{1}, F64: seq(1)}}, "duplicate"},
		{[]Array{{Name: "x", Shape: []int{1}}}, "exactly one"},
		{[]Array{{Name: "x", Shape: []int{1}, F64: seq(1), F32: seq32(1)}}, "exactly one"},
		{[]Array{{Name: "x", Shape: []int{2}, F64: seq(1)}}, "needs 2 elements"},
	} {
		if err := WriteNPZ(p, c.arrays); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteNPZ: error %v, want %q", err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed writes left %d files", len(ents))
	}

	// A corrupt member is reported with the path and the member name.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	mw, _ := zw.Create("bad.npy")
	mw.Write(rawNPY("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)))
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"bad.npy"`) {
		t.Errorf("ReadNPZ(bad member): %v", err)
	}
	os.WriteFile(p, []byte("not a zip"), 0o644)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadNPZ(not a zip): %v", err)
	}
}

package data

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Images per split of the small test format.
const fakeTrainImages, fakeTestImages = 7, 3

// makeIDX returns an IDX file: magic, the dimensions, then body.
func makeIDX(magic uint32, dims []int, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, body...)
}

// gzipBytes compresses b.
func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeMNIST holds the four files of a small MNIST-format data set.
type fakeMNIST struct {
	raw map[string][]byte // name without .gz -> uncompressed file
	gz  map[string][]byte // name without .gz -> gzip'd file
	f   mnistFormat       // with these files' counts and hashes
}

// fakePixel and fakeLabel give every byte a value that depends on the
// file, image and position, so misplaced data is detected.
func fakePixel(k, i, p int) byte { return byte(k*31 + i*17 + p*7) }
func fakeLabel(k, i int) byte    { return byte((3*k + i) % MNISTNumClasses) }

func newFakeMNIST(t testing.TB) *fakeMNIST {
	t.Helper()
	m := &fakeMNIST{raw: map[string][]byte{}, gz: map[string][]byte{},
		f: mnistFormat{counts: map[string]int{"train": fakeTrainImages, "test": fakeTestImages}, sums: map[string]mnistSums{}}}
	for k, split := range []string{"train", "test"} {
		n := m.f.counts[split]
		imgName, lblName, _ := mnistFiles(split)
		pixels := make([]byte, n*MNISTDim)
		labels := make([]byte, n)
		for i := range n {
			for p := range MNISTDim {
				pixels[i*MNISTDim+p] = fakePixel(k, i, p)
			}
			labels[i] = fakeLabel(k, i)
		}
		m.raw[imgName] = makeIDX(idxImagesMagic, []int{n, MNISTSide, MNISTSide}, pixels)
		m.raw[lblName] = makeIDX(idxLabelsMagic, []int{n}, labels)
	}
	for name := range m.raw {
		m.setFile(t, name, m.raw[name])
	}
	return m
}

// setFile replaces the file called name and its hashes.
func (m *fakeMNIST) setFile(t testing.TB, name string, raw []byte) {
	m.raw[name] = raw
	m.gz[name] = gzipBytes(t, raw)
	gm, gs, rs := md5.Sum(m.gz[name]), sha256.Sum256(m.gz[name]), sha256.Sum256(raw)
	m.f.sums[name] = mnistSums{hex.EncodeToString(gm[:]), hex.EncodeToString(gs[:]), hex.EncodeToString(rs[:])}
}

// write writes the files into a new directory, gzip'd (as name.gz) or not
// (as name).
func (m *fakeMNIST) write(t *testing.T, gz bool) string {
	t.Helper()
	dir := t.TempDir()
	for name := range m.raw {
		writeMNISTFile(t, dir, name, gz, m)
	}
	return dir
}

func writeMNISTFile(t *testing.T, dir, name string, gz bool, m *fakeMNIST) {
	t.Helper()
	b, file := m.raw[name], name
	if gz {
		b, file = m.gz[name], name+".gz"
	}
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkMNISTContents checks that d holds the first d.Len() images of
// split k (0 train, 1 test) of the fake data set.
func checkMNISTContents(t *testing.T, d *MNIST, k int) {
	t.Helper()
	if len(d.Pixels) != d.Len()*MNISTDim {
		t.Fatalf("len(Pixels) = %d, want %d", len(d.Pixels), d.Len()*MNISTDim)
	}
	for i := range d.Len() {
		if d.Labels[i] != fakeLabel(k, i) {
			t.Fatalf("label %d = %d, want %d", i, d.Labels[i], fakeLabel(k, i))
		}
		for p := range MNISTDim {
			if got := d.Pixels[i*MNISTDim+p]; got != fakePixel(k, i, p) {
				t.Fatalf("pixel %d of image %d = %d, want %d", p, i, got, fakePixel(k, i, p))
			}
		}
	}
}

func TestLoadMNIST(t *testing.T) {
	m := newFakeMNIST(t)
	for _, gz := range []bool{true, false} {
		dir := m.write(t, gz)
		for _, tc := range []struct {
			split string
			opts  MNISTOptions
			want  int
		}{
			{"train", MNISTOptions{}, fakeTrainImages},
			{"train", MNISTOptions{VerifyChecksums: true}, fakeTrainImages},
			{"test", MNISTOptions{VerifyChecksums: true}, fakeTestImages},
			{"train", MNISTOptions{Limit: 2}, 2},
			{"train", MNISTOptions{Limit: 2, VerifyChecksums: true}, 2},
			{"test", MNISTOptions{Limit: fakeTestImages, VerifyChecksums: true}, fakeTestImages},
		} {
			d, err := m.f.load(dir, tc.split, tc.opts)
			if err != nil {
				t.Fatalf("gz %v: load(%q, %+v): %v", gz, tc.split, tc.opts, err)
			}
			if d.Len() != tc.want || d.Dim() != MNISTDim || d.Side() != MNISTSide {
				t.Fatalf("gz %v: load(%q, %+v): Len %d, Dim %d, want %d, %d", gz, tc.split, tc.opts, d.Len(), d.Dim(), tc.want, MNISTDim)
			}
			checkMNISTContents(t, d, map[string]int{"train": 0, "test": 1}[tc.split])
		}
		if err := m.f.verify(dir); err != nil {
			t.Errorf("gz %v: verify of valid files: %v", gz, err)
		}
	}

	// A gzip'd file under the uncompressed name is detected by its content,
	// and name.gz wins when both exist.
	dir := m.write(t, false)
	if err := os.WriteFile(filepath.Join(dir, mnistTestImages), m.gz[mnistTestImages], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.f.load(dir, "test", MNISTOptions{VerifyChecksums: true}); err != nil {
		t.Errorf("gzip'd content without .gz: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, mnistTestLabels+".gz"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := m.f.load(dir, "test", MNISTOptions{})
	wantErr(t, err, mnistTestLabels+".gz", "magic number 0x6a756e6b")
}

// TestMNISTFeatures checks the values Fill writes: byte/255 by default,
// standardised with the training-set statistics with Normalize.
func TestMNISTFeatures(t *testing.T) {
	m := newFakeMNIST(t)
	dir := m.write(t, true)
	for _, normalize := range []bool{false, true} {
		d, err := m.f.load(dir, "train", MNISTOptions{Normalize: normalize})
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		idx := []int{4, 0}
		d.Fill(&b, idx)
		if b.N != 2 || len(b.X) != 2*MNISTDim || len(b.Tokens) != 0 || len(b.Targets) != 0 {
			t.Fatalf("N %d, %d features, %d tokens, %d targets", b.N, len(b.X), len(b.Tokens), len(b.Targets))
		}
		for k, i := range idx {
			if b.Labels[k] != int(fakeLabel(0, i)) {
				t.Errorf("label of image %d = %d, want %d", i, b.Labels[k], fakeLabel(0, i))
			}
			for p := range MNISTDim {
				v := float64(fakePixel(0, i, p))
				want := v / 255
				if normalize {
					want = (v - 33.318421449829934) / 78.56748998339799
				}
				if got := b.X[k*MNISTDim+p]; got != want {
					t.Fatalf("normalize %v: feature %d of image %d = %v, want %v", normalize, p, i, got, want)
				}
			}
		}
		checkFillAllocs(t, d)
		// A Range view (validation splits use them) fills the same examples.
		var v Batch
		Range(d, 4, 5).Fill(&v, []int{0})
		if !slices.Equal(v.X, b.X[:MNISTDim]) {
			t.Error("Range view fills other features than the data set")
		}
	}
	if mnistMean/255 < 0.13066 || mnistMean/255 > 0.13067 || mnistStd/255 < 0.30810 || mnistStd/255 > 0.30811 {
		t.Errorf("mean %v, std %v are not the MNIST training-set values 0.1307, 0.3081 (x 255)", mnistMean, mnistStd)
	}
}

func TestAdaptiveWindows(t *testing.T) {
	// The issue's list for 28 -> 6, inclusive: 0-4, 4-9, 9-13, 14-18, 18-23, 23-27.
	want := [][2]int{{0, 5}, {4, 10}, {9, 14}, {14, 19}, {18, 24}, {23, 28}}
	if got := AdaptiveWindows(28, 6); !slices.Equal(got, want) {
		t.Errorf("AdaptiveWindows(28, 6) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		in, out int
		want    [][2]int
	}{
		{5, 3, [][2]int{{0, 2}, {1, 4}, {3, 5}}}, // floor(0)=0..ceil(5/3)=2, floor(5/3)=1..ceil(10/3)=4, floor(10/3)=3..5
		{4, 2, [][2]int{{0, 2}, {2, 4}}},         // divisible: plain 2x2 pooling
		{3, 3, [][2]int{{0, 1}, {1, 2}, {2, 3}}}, // identity
		{3, 1, [][2]int{{0, 3}}},                 // global average
	} {
		if got := AdaptiveWindows(tc.in, tc.out); !slices.Equal(got, tc.want) {
			t.Errorf("AdaptiveWindows(%d, %d) = %v, want %v", tc.in, tc.out, got, tc.want)
		}
	}

	// 5x5 -> 3x3 by hand: src[y][x] = 10y + x. Window rows {0,1}, {1,2,3},
	// {3,4}; the mean of 10y + x over a window is 10 mean(y) + mean(x).
	src := make([]float64, 25)
	for y := range 5 {
		for x := range 5 {
			src[y*5+x] = float64(10*y + x)
		}
	}
	mean := []float64{0.5, 2, 3.5}
	dst := make([]float64, 9)
	adaptiveAvgPool(dst, src, 5, 3, AdaptiveWindows(5, 3))
	for i := range 3 {
		for j := range 3 {
			if want := 10*mean[i] + mean[j]; math.Abs(dst[i*3+j]-want) > 1e-12 {
				t.Errorf("pooled[%d][%d] = %v, want %v", i, j, dst[i*3+j], want)
			}
		}
	}
}

// TestMNISTPool checks the paper's 6x6 pooling on images with values worked
// out by hand.
func TestMNISTPool(t *testing.T) {
	m := newFakeMNIST(t)
	pixels := make([]byte, fakeTrainImages*MNISTDim)
	// Image 0: a single 255 at row 4, column 4, which lies in the
	// overlapping windows 0 (rows 0-4, 5 rows) and 1 (rows 4-9, 6 rows) of
	// both axes.
	pixels[4*MNISTSide+4] = 255
	// Image 1: pixel = 3 * row, so pooled (i, j) = 3 * (mean row of window i) / 255.
	for y := range MNISTSide {
		for x := range MNISTSide {
			pixels[MNISTDim+y*MNISTSide+x] = byte(3 * y)
		}
	}
	raw := m.raw[mnistTrainImages]
	m.setFile(t, mnistTrainImages, append(raw[:16:16], pixels...))
	dir := m.write(t, true)

	d, err := m.f.load(dir, "train", MNISTOptions{Pool: 6, VerifyChecksums: true, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d.Dim() != 36 || d.Side() != 6 {
		t.Fatalf("Dim %d, Side %d; want 36, 6", d.Dim(), d.Side())
	}
	var b Batch
	d.Fill(&b, []int{0, 1})
	if len(b.X) != 72 {
		t.Fatalf("%d features for 2 images, want 72", len(b.X))
	}
	want0 := make([]float64, 36)
	want0[0*6+0], want0[0*6+1], want0[1*6+0], want0[1*6+1] = 1.0/25, 1.0/30, 1.0/30, 1.0/36
	meanRow := []float64{2, 6.5, 11, 16, 20.5, 25} // (lo + hi_inclusive) / 2 of 0-4, 4-9, 9-13, 14-18, 18-23, 23-27
	for k, got := range b.X[:36] {
		if math.Abs(got-want0[k]) > 1e-15 {
			t.Errorf("image 0: pooled[%d][%d] = %v, want %v", k/6, k%6, got, want0[k])
		}
	}
	for k, got := range b.X[36:] {
		if want := 3 * meanRow[k/6] / 255; math.Abs(got-want) > 1e-14 {
			t.Errorf("image 1: pooled[%d][%d] = %v, want %v", k/6, k%6, got, want)
		}
	}
	checkFillAllocs(t, d)

	// Pooling after normalising: the average of the standardised pixels.
	dn, err := m.f.load(dir, "train", MNISTOptions{Pool: 6, Normalize: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	dn.Fill(&b, []int{0})
	if want := (255.0/25 - mnistMean) / mnistStd; math.Abs(b.X[0]-want) > 1e-12 {
		t.Errorf("normalised pooled[0][0] = %v, want %v", b.X[0], want)
	}
	if want := -mnistMean / mnistStd; math.Abs(b.X[35]-want) > 1e-12 {
		t.Errorf("normalised pooled[5][5] = %v, want %v", b.X[35], want)
	}

	// Pool 28 is the identity.
	d28, err := m.f.load(dir, "train", MNISTOptions{Pool: 28, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	d28.Fill(&b, []int{1})
	for p, got := range b.X {
		if want := float64(pixels[MNISTDim+p]) / 255; got != want {
			t.Fatalf("pool 28: feature %d = %v, want %v", p, got, want)
		}
	}
}

func TestLoadMNISTBadArguments(t *testing.T) {
	m := newFakeMNIST(t)
	dir := m.write(t, true)
	for _, tc := range []struct {
		split string
		opts  MNISTOptions
		want  string
	}{
		{"val", MNISTOptions{}, `unknown split "val"`},
		{"train", MNISTOptions{Limit: -1}, "negative limit"},
		{"test", MNISTOptions{Limit: fakeTestImages + 1}, "limit 4 exceeds the 3 images of the test split"},
		{"train", MNISTOptions{Pool: 29}, "pool 29"},
		{"train", MNISTOptions{Pool: -1}, "pool -1"},
	} {
		_, err := m.f.load(dir, tc.split, tc.opts)
		wantErr(t, err, tc.want)
	}
}

// corruption is a damaged MNIST file and the problem its error must name.
type corruption struct {
	name  string
	file  string // which file, without .gz
	gz    bool   // write the damaged file gzip'd
	raw   func(raw []byte) []byte
	onGz  func(gz []byte) []byte // applied to the gzip'd bytes instead of raw
	opts  MNISTOptions
	want  string
	split string
}

func mnistCorruptions() []corruption {
	header := func(b []byte, word int, v uint32) []byte {
		b = slices.Clone(b)
		binary.BigEndian.PutUint32(b[4*word:], v)
		return b
	}
	flip := func(b []byte, at int) []byte {
		b = slices.Clone(b)
		b[at] ^= 0xff
		return b
	}
	noSums := MNISTOptions{}
	return []corruption{
		{name: "truncated gz", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return b[:len(b)/2] },
			opts: noSums, want: "truncated"},
		{name: "truncated gz, limit", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return b[:len(b)-20] },
			opts: MNISTOptions{Limit: 1}, want: "gzip trailer gives"},
		{name: "truncated gz, checksums", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return b[:len(b)/2] },
			opts: MNISTOptions{VerifyChecksums: true}, want: "truncated"},
		{name: "truncated raw", file: mnistTrainImages, raw: func(b []byte) []byte { return b[:len(b)-100] },
			opts: MNISTOptions{Limit: 1}, want: "size 5404 bytes, want 5504 for 7 records"},
		{name: "truncated raw labels", file: mnistTrainLabels, raw: func(b []byte) []byte { return b[:len(b)-1] },
			opts: noSums, want: "file ended at record 6 of the 7 the header announces (truncated)"},
		{name: "truncated gz labels", file: mnistTestLabels, gz: true, split: "test",
			raw: func(b []byte) []byte { return b[:len(b)-1] }, opts: noSums, want: "file ended at record 2 of the 3"},
		{name: "truncated in header", file: mnistTestImages, gz: true, split: "test",
			raw: func(b []byte) []byte { return b[:10] }, opts: noSums, want: "file ended in the IDX header"},
		{name: "empty", file: mnistTestImages, split: "test", raw: func([]byte) []byte { return nil }, opts: noSums,
			want: "file ended in the IDX header (empty or truncated)"},
		{name: "trailing data", file: mnistTrainImages, gz: true, raw: func(b []byte) []byte { return append(slices.Clone(b), 1) },
			opts: noSums, want: "data continues after the 7 records"},
		{name: "bytes after gzip", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return append(slices.Clone(b), 0) },
			opts: noSums, want: "bytes after the end of the gzip stream"},
		{name: "corrupt deflate", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return flip(b, 12) },
			opts: noSums, want: "corrupt gzip data"},
		{name: "gzip crc", file: mnistTrainImages, gz: true, onGz: func(b []byte) []byte { return flip(b, len(b)-6) },
			opts: noSums, want: "gzip checksum mismatch"},
		{name: "labels magic on images", file: mnistTrainImages, gz: true, raw: func(b []byte) []byte { return header(b, 0, idxLabelsMagic) },
			opts: noSums, want: "magic number 0x00000801, want 0x00000803 (IDX images): an IDX labels file under the wrong name"},
		{name: "wrong magic", file: mnistTrainLabels, gz: true, raw: func(b []byte) []byte { return header(b, 0, 0x12345678) },
			opts: noSums, want: "magic number 0x12345678, want 0x00000801 (IDX labels): not an MNIST IDX file"},
		{name: "html instead", file: mnistTrainLabels, raw: func([]byte) []byte { return []byte("<html>moved</html>") },
			opts: noSums, want: "magic number 0x3c68746d"},
		{name: "count mismatch", file: mnistTrainLabels, gz: true, raw: func(b []byte) []byte { return header(b, 1, 6)[:14] },
			opts: noSums, want: "header announces 6 records, want 7 (the official train split)"},
		{name: "wrong count", file: mnistTestImages, split: "test", gz: true,
			raw: func(b []byte) []byte { return header(b, 1, 2)[:16+2*MNISTDim] }, opts: noSums, want: "header announces 2 records, want 3"},
		{name: "wrong rows", file: mnistTrainImages, gz: true, raw: func(b []byte) []byte { return header(b, 2, 27) },
			opts: noSums, want: "images of 27x28 pixels, want 28x28"},
		{name: "label out of range", file: mnistTrainLabels, gz: true, raw: func(b []byte) []byte {
			b = slices.Clone(b)
			b[8+5] = 10
			return b
		}, opts: noSums, want: "record 5: label 10 out of range 0-9"},
		{name: "checksum gz", file: mnistTrainImages, gz: true, raw: func(b []byte) []byte { return flip(b, 100) },
			opts: MNISTOptions{VerifyChecksums: true, Limit: 1}, want: "sha256 "},
		{name: "checksum raw", file: mnistTrainImages, raw: func(b []byte) []byte { return flip(b, 100) },
			opts: MNISTOptions{VerifyChecksums: true}, want: "that of the official file uncompressed"},
		{name: "checksum hides bad label", file: mnistTestLabels, split: "test", gz: true, raw: func(b []byte) []byte {
			b = slices.Clone(b)
			b[8] = 200
			return b
		}, opts: MNISTOptions{VerifyChecksums: true}, want: "corrupt, modified or recompressed"},
	}
}

// TestLoadMNISTBadFiles damages one file at a time: loading and verifying
// must each fail with one line naming the damaged file and the problem.
func TestLoadMNISTBadFiles(t *testing.T) {
	m := newFakeMNIST(t)
	for _, tc := range mnistCorruptions() {
		t.Run(tc.name, func(t *testing.T) {
			dir := m.write(t, false)
			raw, gz := m.raw[tc.file], m.gz[tc.file]
			if tc.raw != nil {
				raw = tc.raw(raw)
				gz = gzipBytes(t, raw)
			}
			if tc.onGz != nil {
				gz = tc.onGz(gz)
			}
			b, path := raw, filepath.Join(dir, tc.file)
			if tc.gz {
				b, path = gz, path+".gz"
				if err := os.Remove(filepath.Join(dir, tc.file)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			split := tc.split
			if split == "" {
				split = "train"
			}
			_, err := m.f.load(dir, split, tc.opts)
			wantErr(t, err, "mnist: "+path+": ", tc.want)
			err = m.f.verify(dir)
			wantErr(t, err, "mnist: "+path+": ")
			if n := strings.Count(err.Error(), "mnist: "); n != 1 {
				t.Errorf("verify reports %d problems, want 1: %v", n, err)
			}
		})
	}
}

func TestMNISTMissingFiles(t *testing.T) {
	m := newFakeMNIST(t)
	dir := m.write(t, true)
	gone := filepath.Join(dir, mnistTestLabels+".gz")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	_, err := m.f.load(dir, "test", MNISTOptions{})
	wantErr(t, err, "mnist: "+gone+": missing (run 'sgdyn data fetch mnist --dir "+dir+"')")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not match fs.ErrNotExist", err)
	}
	if _, err := m.f.load(dir, "train", MNISTOptions{VerifyChecksums: true}); err != nil {
		t.Errorf("train split with only a test file missing: %v", err)
	}

	// Two problems are reported together, on one line.
	if err := os.WriteFile(filepath.Join(dir, mnistTrainImages+".gz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = m.f.verify(dir)
	wantErr(t, err, mnistTrainImages+".gz: file ended in the IDX header", gone+": missing")

	empty := t.TempDir()
	err = m.f.verify(empty)
	wantErr(t, err, "mnist: "+empty+": no MNIST files (run 'sgdyn data fetch mnist --dir "+empty+"')")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not match fs.ErrNotExist", err)
	}
	if err := os.Mkdir(filepath.Join(empty, mnistTestImages+".gz"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = m.f.load(empty, "test", MNISTOptions{})
	wantErr(t, err, mnistTestImages+".gz: not a regular file")
}

// The exported functions use the official format: its table must hold the
// published hashes of all four files, and a file of the small test format
// must be refused for its count.
func TestMNISTOfficialFormat(t *testing.T) {
	f := officialMNIST()
	hexRE := regexp.MustCompile(`^[0-9a-f]+$`)
	for _, name := range allMNISTFiles() {
		s, ok := f.sums[name]
		if !ok {
			t.Fatalf("no hashes for %s", name)
		}
		for _, h := range []struct {
			v string
			n int
		}{{s.md5Gz, 32}, {s.sha256Gz, 64}, {s.sha256, 64}} {
			if len(h.v) != h.n || !hexRE.MatchString(h.v) {
				t.Errorf("%s: hash %q is not %d hex digits", name, h.v, h.n)
			}
		}
	}
	if s := f.sums[mnistTrainImages]; s.md5Gz != "f68b3c2dcbeaaa9fbdd348bbdeb94873" {
		t.Errorf("train images MD5 %s, want the published f68b3c2dcbeaaa9fbdd348bbdeb94873", s.md5Gz)
	}
	if f.counts["train"] != 60000 || f.counts["test"] != 10000 {
		t.Errorf("official counts %v", f.counts)
	}
	m := newFakeMNIST(t)
	dir := m.write(t, true)
	_, err := LoadMNIST(dir, "test", MNISTOptions{})
	wantErr(t, err, mnistTestImages+".gz: header announces 3 records, want 10000 (the official test split)")
	err = VerifyMNIST(dir)
	wantErr(t, err, "want 60000", "want 10000")
	// Valid structure at the official count, wrong content: only the hashes tell.
	labels := makeIDX(idxLabelsMagic, []int{10000}, make([]byte, 10000))
	path := filepath.Join(dir, mnistTestLabels+".gz")
	if err := os.WriteFile(path, gzipBytes(t, labels), 0o644); err != nil {
		t.Fatal(err)
	}
	err = VerifyMNIST(dir)
	wantErr(t, err, path+": sha256 ", "want "+sha256TestLabelsGz)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, mnistTestLabels)
	if err := os.WriteFile(path, labels, 0o644); err != nil {
		t.Fatal(err)
	}
	err = VerifyMNIST(dir)
	wantErr(t, err, path+": sha256 ", "want "+sha256TestLabels)
}

// Example of the error text, for the record.
func ExampleLoadMNIST() {
	_, err := LoadMNIST("/nonexistent", "train", MNISTOptions{})
	fmt.Println(err)
	// Output: mnist: /nonexistent/train-images-idx3-ubyte.gz: missing (run 'sgdyn data fetch mnist --dir /nonexistent')
}

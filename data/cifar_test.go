package data

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRecords is the number of records per file of the small test format.
const fakeRecords = 20

// fakeCIFARFiles generates the six files of a CIFAR-10 data set with
// records records each and returns their contents and a format whose
// checksum table matches them. Every byte depends on the file, record,
// channel and position, so misplaced data is detected.
func fakeCIFARFiles(records int) (map[string][]byte, cifarFormat) {
	files := make(map[string][]byte)
	f := cifarFormat{recordsPerFile: records, sums: make(map[string]string)}
	for k, name := range allCIFARFiles() {
		b := make([]byte, records*cifarRecord)
		for i := range records {
			rec := b[i*cifarRecord : (i+1)*cifarRecord]
			rec[0] = byte((3*k + i) % CIFAR10NumClasses)
			for p := range CIFAR10Dim {
				rec[1+p] = byte(k*31 + i*17 + p*7 + p/cifarPlane*101)
			}
		}
		files[name] = b
		sum := sha1.Sum(b)
		f.sums[name] = hex.EncodeToString(sum[:])
	}
	return files, f
}

// writeFakeCIFAR writes the fake files into a new directory.
func writeFakeCIFAR(t *testing.T) (string, map[string][]byte, cifarFormat) {
	t.Helper()
	dir := t.TempDir()
	files, f := fakeCIFARFiles(fakeRecords)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files, f
}

// checkCIFARContents checks that d holds records [first, first+d.Len()) of
// the concatenated files names.
func checkCIFARContents(t *testing.T, d *CIFAR10, files map[string][]byte, names []string, first int) {
	t.Helper()
	var all []byte
	for _, name := range names {
		all = append(all, files[name]...)
	}
	if len(d.Pixels) != d.Len()*CIFAR10Dim {
		t.Fatalf("len(Pixels) = %d, want %d", len(d.Pixels), d.Len()*CIFAR10Dim)
	}
	for i := range d.Len() {
		rec := all[(first+i)*cifarRecord : (first+i+1)*cifarRecord]
		if d.Labels[i] != rec[0] {
			t.Fatalf("label %d = %d, want %d", i, d.Labels[i], rec[0])
		}
		if string(d.Pixels[i*CIFAR10Dim:(i+1)*CIFAR10Dim]) != string(rec[1:]) {
			t.Fatalf("pixels of image %d differ from the file", i)
		}
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir, files, f := writeFakeCIFAR(t)
	train, _ := cifarFiles("train")
	for _, tc := range []struct {
		split string
		opts  CIFAROptions
		names []string
		want  int
	}{
		{"train", CIFAROptions{}, train, 5 * fakeRecords},
		{"train", CIFAROptions{VerifyChecksums: true}, train, 5 * fakeRecords},
		{"test", CIFAROptions{VerifyChecksums: true}, []string{"test_batch.bin"}, fakeRecords},
		// A limit spanning two files, with and without verification.
		{"train", CIFAROptions{Limit: fakeRecords + 3}, train, fakeRecords + 3},
		{"train", CIFAROptions{Limit: fakeRecords + 3, VerifyChecksums: true}, train, fakeRecords + 3},
		{"test", CIFAROptions{Limit: 1}, []string{"test_batch.bin"}, 1},
	} {
		d, err := f.load(dir, tc.split, tc.opts)
		if err != nil {
			t.Fatalf("load(%q, %+v): %v", tc.split, tc.opts, err)
		}
		if d.Len() != tc.want {
			t.Fatalf("load(%q, %+v): Len = %d, want %d", tc.split, tc.opts, d.Len(), tc.want)
		}
		checkCIFARContents(t, d, files, tc.names, 0)
	}
	if err := f.verify(dir); err != nil {
		t.Errorf("verify of valid files: %v", err)
	}
}

func TestLoadCIFAR10BadArguments(t *testing.T) {
	dir, _, f := writeFakeCIFAR(t)
	for _, tc := range []struct {
		split string
		limit int
		want  string
	}{
		{"val", 0, `unknown split "val"`},
		{"train", -1, "negative limit"},
		{"test", fakeRecords + 1, "limit 21 exceeds the 20 examples of the test split"},
	} {
		_, err := f.load(dir, tc.split, CIFAROptions{Limit: tc.limit})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("load(%q, limit %d) error = %v, want it to contain %q", tc.split, tc.limit, err, tc.want)
		}
	}
}

// modify rewrites dir/name with change applied to its contents.
func modify(t *testing.T, dir, name string, change func([]byte) []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, change(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans several lines", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

func TestLoadCIFAR10Errors(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir, _, f := writeFakeCIFAR(t)
		path := filepath.Join(dir, "data_batch_4.bin")
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		_, err := f.load(dir, "train", CIFAROptions{})
		wantErr(t, err, "cifar10: "+path+": missing (run 'sgdyn data fetch cifar10 --dir "+dir+"')")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
		// The test split does not need the file.
		if _, err := f.load(dir, "test", CIFAROptions{}); err != nil {
			t.Errorf("test split: %v", err)
		}
		// Even a limit that needs no record of it reports the file.
		_, err = f.load(dir, "train", CIFAROptions{Limit: 1})
		wantErr(t, err, path, "missing")
	})
	t.Run("truncated", func(t *testing.T) {
		dir, _, f := writeFakeCIFAR(t)
		path := modify(t, dir, "data_batch_3.bin", func(b []byte) []byte { return b[:len(b)-1] })
		_, err := f.load(dir, "train", CIFAROptions{})
		wantErr(t, err, "cifar10: "+path+": size 61459 bytes, want 61460 (truncated or not a CIFAR-10 batch file)")
	})
	t.Run("corrupt label", func(t *testing.T) {
		dir, _, f := writeFakeCIFAR(t)
		path := modify(t, dir, "data_batch_2.bin", func(b []byte) []byte {
			b[17*cifarRecord] = 200
			return b
		})
		_, err := f.load(dir, "train", CIFAROptions{})
		wantErr(t, err, "cifar10: "+path+": record 17: label 200 out of range 0-9")
		// With verification the checksum, which says more, is reported.
		_, err = f.load(dir, "train", CIFAROptions{VerifyChecksums: true})
		wantErr(t, err, path, "sha1", "corrupt or modified file")
		// 10 is the first invalid class.
		modify(t, dir, "data_batch_2.bin", func(b []byte) []byte {
			b[17*cifarRecord] = 10
			return b
		})
		_, err = f.load(dir, "train", CIFAROptions{})
		wantErr(t, err, path+": record 17: label 10 out of range 0-9")
		// A limit that stops before the bad record does not see it.
		if _, err := f.load(dir, "train", CIFAROptions{Limit: fakeRecords + 17}); err != nil {
			t.Errorf("limit before the bad record: %v", err)
		}
	})
	t.Run("checksum", func(t *testing.T) {
		dir, _, f := writeFakeCIFAR(t)
		path := modify(t, dir, "test_batch.bin", func(b []byte) []byte {
			b[len(b)-1]++ // the last byte: a limit must not skip the check
			return b
		})
		got := sha1.Sum(mustRead(t, path))
		_, err := f.load(dir, "test", CIFAROptions{VerifyChecksums: true, Limit: 1})
		wantErr(t, err, "cifar10: "+path+": sha1 "+hex.EncodeToString(got[:])+", want "+f.sums["test_batch.bin"]+" (corrupt or modified file)")
		if _, err := f.load(dir, "test", CIFAROptions{}); err != nil {
			t.Errorf("without verification: %v", err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The exported functions use the official format: check that they ask for
// the official file sizes and that verification reports every problem.
func TestCIFAR10OfficialFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "test_batch.bin")
	if err := os.WriteFile(path, make([]byte, 1234), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCIFAR10(dir, "test", CIFAROptions{})
	wantErr(t, err, "cifar10: "+path+": size 1234 bytes, want 30730000 (truncated or not a CIFAR-10 batch file)")

	err = VerifyCIFAR10(dir)
	wantErr(t, err, path+": size 1234",
		filepath.Join(dir, "data_batch_1.bin")+": missing",
		filepath.Join(dir, "data_batch_5.bin")+": missing")
	if n := strings.Count(err.Error(), "cifar10: "); n != 6 {
		t.Errorf("VerifyCIFAR10 reported %d problems, want 6: %v", n, err)
	}

	empty := t.TempDir()
	err = VerifyCIFAR10(empty)
	wantErr(t, err, "cifar10: "+empty+": no CIFAR-10 files (run 'sgdyn data fetch cifar10 --dir "+empty+"')")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}

	f := officialCIFAR()
	if f.fileSize() != 30730000 || len(f.sums) != 6 {
		t.Errorf("official format: size %d, %d sums", f.fileSize(), len(f.sums))
	}
	if got := f.sums["data_batch_1.bin"]; got != "aadd24acce27caa71bf4b10992e9e7b2d74c2540" {
		t.Errorf("sha1 of data_batch_1.bin = %s", got)
	}
}

func TestVerifyCIFAR10Fake(t *testing.T) {
	dir, _, f := writeFakeCIFAR(t)
	p1 := modify(t, dir, "data_batch_1.bin", func(b []byte) []byte { b[100]++; return b })
	p5 := modify(t, dir, "data_batch_5.bin", func(b []byte) []byte { return append(b, 0) })
	err := f.verify(dir)
	wantErr(t, err, p1+": sha1", p5+": size 61461 bytes")
	if strings.Contains(err.Error(), "data_batch_2.bin") {
		t.Errorf("error %q names a valid file", err)
	}
}

// cifarNorm is the documented normalisation, computed independently of the
// package's table.
func cifarNorm(c int, v byte) float64 {
	mean := []float64{125.307, 122.950, 113.865}
	std := []float64{62.993, 62.089, 66.705}
	return (float64(v) - mean[c]) / std[c]
}

func TestCIFAR10Fill(t *testing.T) {
	// Two images whose every pixel is distinct within a plane and whose
	// planes differ, so a transposed or HWC layout fails.
	d := &CIFAR10{Pixels: make([]byte, 2*CIFAR10Dim), Labels: []byte{3, 9}}
	for i := range 2 {
		for c := range CIFAR10Channels {
			for y := range CIFAR10Height {
				for x := range CIFAR10Width {
					d.Pixels[i*CIFAR10Dim+c*1024+y*32+x] = byte(i*50 + c*70 + y*3 + x)
				}
			}
		}
	}
	// Known pixels of image 1: R=200, G=0, B=255 at row 2, column 5.
	d.Pixels[CIFAR10Dim+0*1024+2*32+5] = 200
	d.Pixels[CIFAR10Dim+1*1024+2*32+5] = 0
	d.Pixels[CIFAR10Dim+2*1024+2*32+5] = 255

	b := &Batch{Tokens: []int{1}, Targets: []float64{1}}
	idx := []int{1, 0, 1}
	d.Fill(b, idx)
	if b.N != 3 || len(b.X) != 3*3072 || len(b.Labels) != 3 || len(b.Tokens) != 0 || len(b.Targets) != 0 {
		t.Fatalf("Fill: N=%d len(X)=%d len(Labels)=%d len(Tokens)=%d len(Targets)=%d",
			b.N, len(b.X), len(b.Labels), len(b.Tokens), len(b.Targets))
	}
	for k, i := range idx {
		if b.Labels[k] != int(d.Labels[i]) {
			t.Errorf("Labels[%d] = %d, want %d", k, b.Labels[k], d.Labels[i])
		}
		for c := range 3 {
			for y := range 32 {
				for x := range 32 {
					v := d.Pixels[i*CIFAR10Dim+c*1024+y*32+x]
					got := b.X[k*3072+c*1024+y*32+x]
					if want := cifarNorm(c, v); got != want {
						t.Fatalf("X of example %d channel %d (%d,%d) = %v, want %v", k, c, y, x, got, want)
					}
				}
			}
		}
	}
	// Exact values, computed in float64 arithmetic outside Go.
	for c, want := range []float64{1.1857349229279444, -1.980221939473981, 2.1158084101641554} {
		if got := b.X[0*3072+c*1024+2*32+5]; got != want {
			t.Errorf("normalised channel %d = %v, want %v", c, got, want)
		}
	}
}

func TestCIFAR10FillAllocs(t *testing.T) {
	files, f := fakeCIFARFiles(fakeRecords)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), files["test_batch.bin"], 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := f.load(dir, "test", CIFAROptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFillAllocs(t, d)
}

// checkFillAllocs checks that Fill does not allocate once the batch is
// large enough.
func checkFillAllocs(t *testing.T, ds Dataset) {
	t.Helper()
	idx := []int{ds.Len() - 1, 0, ds.Len() / 2}
	var b Batch
	ds.Fill(&b, idx)
	if n := testing.AllocsPerRun(20, func() { ds.Fill(&b, idx) }); n != 0 {
		t.Errorf("%T.Fill: %v allocations per call, want 0", ds, n)
	}
	if b.N != len(idx) {
		t.Errorf("%T.Fill: N = %d, want %d", ds, b.N, len(idx))
	}
}

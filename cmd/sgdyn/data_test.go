package main

import (
	"bytes"
	"compress/gzip"
	endian "encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxFile returns an IDX file with the given magic and dimensions and
// body, gzip'd if gz.
func idxFile(t *testing.T, magic uint32, dims []int, body []byte, gz bool) []byte {
	t.Helper()
	b := endian.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = endian.BigEndian.AppendUint32(b, uint32(d))
	}
	b = append(b, body...)
	if !gz {
		return b
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestMNISTBadFiles: a truncated, a corrupt, a wrong-magic and a wrong-hash
// MNIST file each make `sgdyn data verify mnist` and training on the
// directory exit 2 with one line naming the file and the problem.
func TestMNISTBadFiles(t *testing.T) {
	work := t.TempDir()
	write := func(dir, name string, b []byte) {
		os.MkdirAll(filepath.Join(work, dir), 0o755)
		if err := os.WriteFile(filepath.Join(work, dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The official header and the first 100 images, then the gzip stream stops.
	full := idxFile(t, 0x803, []int{60000, 28, 28}, make([]byte, 100*784), true)
	write("truncated", "train-images-idx3-ubyte.gz", full[:len(full)-10])
	write("truncated", "train-labels-idx1-ubyte.gz", idxFile(t, 0x801, []int{60000}, make([]byte, 60000), true))
	// A damaged deflate stream.
	corrupt := bytes.Clone(full)
	for i := 20; i < 40; i++ {
		corrupt[i] ^= 0x55
	}
	write("corrupt", "train-images-idx3-ubyte.gz", corrupt)
	// A label file where the images should be.
	write("magic", "train-images-idx3-ubyte.gz", idxFile(t, 0x801, []int{10000}, make([]byte, 10000), true))
	// A valid label file of the official size, but not the official one.
	write("wrongsum", "t10k-labels-idx1-ubyte.gz", idxFile(t, 0x801, []int{10000}, make([]byte, 10000), true))
	write("wrongsumraw", "train-labels-idx1-ubyte", idxFile(t, 0x801, []int{60000}, make([]byte, 60000), false))

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"truncated", []string{"data", "verify", "mnist", "--dir", "truncated"}, []string{"train-images-idx3-ubyte.gz", "truncated"}},
		{"corrupt", []string{"data", "verify", "mnist", "--dir", "corrupt"}, []string{"train-images-idx3-ubyte.gz", "corrupt gzip data"}},
		{"magic", []string{"data", "verify", "mnist", "--dir", "magic"}, []string{"train-images-idx3-ubyte.gz", "magic number 0x00000801, want 0x00000803"}},
		{"wrong sha256", []string{"data", "verify", "mnist", "--dir", "wrongsum"}, []string{"t10k-labels-idx1-ubyte.gz: sha256 ", "want f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}},
		{"wrong sha256 uncompressed", []string{"data", "verify", "mnist", "--dir", "wrongsumraw"}, []string{"train-labels-idx1-ubyte: sha256 ", "uncompressed"}},
		{"train on truncated", []string{"train", "--run", "r1", "--model", "mlp", "--data-kind", "mnist", "--data", "truncated", "--limit", "10"}, []string{"train-images-idx3-ubyte.gz", "truncated"}},
		{"train on wrong magic", []string{"train", "--run", "r2", "--model", "mlp", "--data-kind", "mnist", "--data", "magic"}, []string{"train-images-idx3-ubyte.gz", "magic number 0x00000801"}},
		{"verify empty", []string{"data", "verify", "mnist", "--dir", "."}, []string{"no MNIST files", "sgdyn data fetch mnist"}},
		{"fetch unreachable", []string{"data", "fetch", "mnist", "--dir", "fetched", "--url", "http://127.0.0.1:1/"}, []string{"mnist fetch: http://127.0.0.1:1/train-images-idx3-ubyte.gz"}},
		{"unknown set", []string{"data", "verify", "imagenet", "--dir", "."}, []string{"cifar10 and mnist"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sgdyn(t, work, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.HasPrefix(r.stderr, "sgdyn ") {
				t.Errorf("stderr is not one error line: %q", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error %q does not contain %q", r.stderr, w)
				}
			}
		})
	}
}

package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// fuzzMNISTImages is the number of images of the format FuzzIDX reads.
const fuzzMNISTImages = 2

// fuzzLoad writes content as the test images (or labels) file of a
// two-image data set in dir, whose other file is valid, and loads the test
// split.
func fuzzLoad(t *testing.T, dir string, content []byte, asLabels bool, limit int) (*MNIST, error) {
	t.Helper()
	n := fuzzMNISTImages
	images := makeIDX(idxImagesMagic, []int{n, MNISTSide, MNISTSide}, make([]byte, n*MNISTDim))
	labels := makeIDX(idxLabelsMagic, []int{n}, []byte{3, 9})
	if asLabels {
		labels = content
	} else {
		images = content
	}
	for name, b := range map[string][]byte{mnistTestImages: images, mnistTestLabels: labels} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := mnistFormat{counts: map[string]int{"train": 0, "test": n}, sums: map[string]mnistSums{}}
	return f.load(dir, "test", MNISTOptions{Limit: limit, Pool: 6})
}

// FuzzIDX: an IDX file of any content, gzip'd or not, as the images or the
// labels of a split, either fails to load with a one-line error or loads
// with the right number of images, every label in 0-9 and finite features
// in [0, 1]. Compressing a file that loads (or not) changes nothing.
func FuzzIDX(f *testing.F) {
	images := makeIDX(idxImagesMagic, []int{fuzzMNISTImages, MNISTSide, MNISTSide}, bytes.Repeat([]byte{0, 128, 255, 7}, fuzzMNISTImages*MNISTDim/4))
	labels := makeIDX(idxLabelsMagic, []int{fuzzMNISTImages}, []byte{0, 9})
	badLabel := makeIDX(idxLabelsMagic, []int{fuzzMNISTImages}, []byte{0, 10})
	wrongRows := bytes.Clone(images)
	binary.BigEndian.PutUint32(wrongRows[8:], 27)
	for _, seed := range [][]byte{
		images, labels, badLabel, wrongRows,
		images[:len(images)-1], labels[:5], append(bytes.Clone(labels), 0),
		gzipBytes(f, images), gzipBytes(f, labels), gzipBytes(f, images)[:40],
		{0x1f, 0x8b}, {0, 0, 8, 3}, nil,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, content []byte, asLabels bool) {
		dir := t.TempDir()
		d, err := fuzzLoad(t, dir, content, asLabels, 0)
		if err != nil {
			if bytes.Contains([]byte(err.Error()), []byte("\n")) {
				t.Fatalf("error spans lines: %q", err)
			}
		} else {
			if d.Len() != fuzzMNISTImages || len(d.Pixels) != fuzzMNISTImages*MNISTDim || d.Dim() != 36 {
				t.Fatalf("loaded %d images, %d pixels, dim %d from %d bytes", d.Len(), len(d.Pixels), d.Dim(), len(content))
			}
			var b Batch
			d.Fill(&b, []int{0, 1})
			for _, l := range b.Labels {
				if l < 0 || l > 9 {
					t.Fatalf("accepted label %d", l)
				}
			}
			for _, x := range b.X {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("feature %v outside [0, 1]", x)
				}
			}
		}
		// A limit reads less of the file but must not accept a file that
		// fails in full, except for what lies beyond the kept images.
		if asLabels && err != nil {
			if _, errLimit := fuzzLoad(t, dir, content, asLabels, 1); errLimit == nil {
				t.Fatalf("labels file refused in full (%v) but accepted with a limit", err)
			}
		}
		if len(content) >= 2 && content[0] == 0x1f && content[1] == 0x8b {
			return // already gzip'd: compressing it again is another file
		}
		dz, errz := fuzzLoad(t, dir, gzipBytes(t, content), asLabels, 0)
		if (err == nil) != (errz == nil) {
			t.Fatalf("uncompressed: %v; gzip'd: %v", err, errz)
		}
		if err == nil && (!bytes.Equal(d.Pixels, dz.Pixels) || !bytes.Equal(d.Labels, dz.Labels)) {
			t.Fatal("gzip'd file loads other data")
		}
	})
}

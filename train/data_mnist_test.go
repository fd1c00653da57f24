package train

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// writeOfficialSizeMNIST writes uncompressed MNIST files of the official
// counts into a new directory: image i of each split has the single pixel
// (i, i) set to 255 and digit i mod 10; the rest of each file is zero (and
// sparse on disk). Their hashes are not the official ones.
func writeOfficialSizeMNIST(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range []struct {
		images, labels string
		n              int
	}{{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000}, {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000}} {
		img := binary.BigEndian.AppendUint32(nil, 0x803)
		for _, d := range []int{s.n, 28, 28} {
			img = binary.BigEndian.AppendUint32(img, uint32(d))
		}
		lbl := binary.BigEndian.AppendUint32(nil, 0x801)
		lbl = binary.BigEndian.AppendUint32(lbl, uint32(s.n))
		for i := range 28 {
			px := make([]byte, 784)
			px[i*28+i] = 255
			img = append(img, px...)
		}
		for i := range s.n {
			lbl = append(lbl, byte(i%10))
		}
		for name, b := range map[string][]byte{s.images: img, s.labels: lbl} {
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
			size := int64(16 + s.n*784)
			if name == s.labels {
				size = int64(8 + s.n)
			}
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestLoadDataMNIST(t *testing.T) {
	dir := writeOfficialSizeMNIST(t)
	parse := func(yaml string) Config {
		t.Helper()
		c, err := ParseConfig([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The paper's MLP data: 2,048 training images pooled to 6x6, pixels
	// byte/255. Checksums are on by default, and these files are not the
	// official ones.
	c := parse("model: {kind: mlp}\ndata: {kind: mnist, path: " + dir + ", limit: 20, pool: 6}\n")
	_, err := LoadData(c)
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte: sha256 ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("LoadData with checksums on: %v, want a one-line sha256 mismatch", err)
	}
	c.Data.SkipChecksums = true
	d, err := LoadData(c)
	if err != nil {
		t.Fatal(err)
	}
	if d.Train.Len() != 20 || d.Val.Len() != 10000 {
		t.Errorf("%d training and %d validation images, want 20 and the 10,000 of the test set", d.Train.Len(), d.Val.Len())
	}
	if d.Shape.Inputs != 36 || !slices.Equal(d.Shape.Image, []int{1, 6, 6}) || d.Shape.Classes != 10 {
		t.Errorf("shape %+v, want 36 inputs, image 1x6x6, 10 classes", d.Shape)
	}
	var b data.Batch
	d.Train.Fill(&b, []int{0, 13})
	// Pixel (0, 0) lies only in window 0 of each axis (rows 0-4): 1/25.
	// Pixel (13, 13) lies only in window 2 (rows 9-13): 1/25 at (2, 2).
	if b.X[0] != 1.0/25 || b.X[36+2*6+2] != 1.0/25 || b.X[1] != 0 || b.Labels[1] != 3 {
		t.Errorf("pooled features %v, %v, label %d; want 0.04, 0.04, 3", b.X[0], b.X[36+2*6+2], b.Labels[1])
	}

	// Without pooling, normalised: 784 inputs.
	c = parse("model: {kind: mlp}\ndata: {kind: mnist, path: " + dir + ", skip_checksums: true, normalize: true}\n")
	if d, err = LoadData(c); err != nil {
		t.Fatal(err)
	}
	if d.Train.Len() != 60000 || d.Shape.Inputs != 784 || !slices.Equal(d.Shape.Image, []int{1, 28, 28}) {
		t.Errorf("%d images of shape %+v, want 60000 of 784", d.Train.Len(), d.Shape)
	}
	d.Train.Fill(&b, []int{1})
	if want := (255 - 33.318421449829934) / 78.56748998339799; math.Abs(b.X[29]-want) > 1e-12 {
		t.Errorf("normalised pixel (1, 1) = %v, want %v", b.X[29], want)
	}
}

func TestLoadDataPaperText(t *testing.T) {
	c, err := ParseConfig([]byte(`model: {kind: transformer, transformer: {layers: 1, width: 8, heads: 1, context: 16}}
data: {val_fraction: 0.2, limit: 2048, text: {preprocess: paper, limit_chars: 6000, split: windows}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := LoadData(c)
	if err != nil {
		t.Fatal(err)
	}
	// 5,984 windows of 16; the first 4,787 train, of which the first 2,048 are kept.
	if d.Train.Len() != 2048 || d.Val.Len() != 1197 || d.Shape.Vocab != 25 || d.Vocab.Size() != 25 {
		t.Errorf("%d training and %d validation windows over %d symbols, want 2048, 1197, 25", d.Train.Len(), d.Val.Len(), d.Shape.Vocab)
	}

	// The default split cuts the text, then windows each part.
	c.Data.Text.Split = ""
	c = c.WithDefaults()
	if c.Data.Text.Split != TextSplitChars || c.Data.Text.Preprocess != "paper" {
		t.Errorf("resolved text config %+v", c.Data.Text)
	}
	if d, err = LoadData(c); err != nil {
		t.Fatal(err)
	}
	if d.Val.Len() != 1200-16 {
		t.Errorf("%d validation windows with split chars, want %d", d.Val.Len(), 1200-16)
	}
}

func TestDataKeysOfOtherKinds(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"model: {kind: mlp}\ndata: {kind: classification, path: x.csv, pool: 6}\n", "data pool is for kind mnist, not classification"},
		{"model: {kind: cnn}\ndata: {path: d, normalize: true}\n", "data normalize is for kind mnist, not cifar10"},
		{"model: {kind: mlp}\ndata: {kind: mnist, path: d, pool: 29}\n", "data pool 29"},
		{"model: {kind: mlp}\ndata: {kind: mnist, path: d, text: {preprocess: paper}}\n", "data text keys are for kind text, not mnist"},
		{"model: {kind: transformer}\ndata: {text: {preprocess: lower}}\n", `data text.preprocess "lower"`},
		{"model: {kind: transformer}\ndata: {text: {split: random}}\n", `data text.split "random"`},
		{"model: {kind: transformer}\ndata: {text: {limit_chars: -1}}\n", "data text.limit_chars -1"},
		{"model: {kind: mlp}\ndata: {kind: mnist}\n", "data path not set: mnist"},
	} {
		c, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			err = c.WithDefaults().Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

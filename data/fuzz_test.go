package data

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParseCorpus: any bytes either fail with an error or give a corpus
// whose tokens decode back to the text.
func FuzzParseCorpus(f *testing.F) {
	for _, s := range []string{"to be or not to be\n", "", "a", "héllo wörld ✓", "\xff\xfe", "ab\x00cd"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseCorpus("fuzz", text)
		if err != nil {
			return
		}
		if !utf8.Valid(text) {
			t.Fatal("accepted invalid UTF-8")
		}
		if got := c.Vocab.Decode(c.Tokens); got != string(text) {
			t.Fatalf("decode(encode(%q)) = %q", text, got)
		}
		if w, err := NewTextWindows(c.Tokens, 2); err == nil {
			var b Batch
			w.Fill(&b, []int{0, w.Len() - 1})
		}
	})
}

// FuzzReadCSV: any bytes either fail or give a table of finite values with
// consistent dimensions.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("x1,x2,y\n1,2,3\n4,5,6\n"))
	f.Add([]byte("x1,label\n0.5,1\n-2,0\n"))
	f.Add([]byte("x1,x2,y\n1,2\n"))
	f.Add([]byte("x1,y\nNaN,1\n"))
	f.Add([]byte("x1,label\n1,-3\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, last := range []string{"y", "label"} {
			tab, err := readCSV(bytes.NewReader(in), "fuzz.csv", last)
			if err != nil {
				continue
			}
			n := tab.Len()
			if tab.Dim < 1 || len(tab.X) != n*tab.Dim {
				t.Fatalf("dim %d, %d values for %d rows", tab.Dim, len(tab.X), n)
			}
			for _, x := range append(append([]float64(nil), tab.X...), tab.Targets...) {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("accepted non-finite value %g", x)
				}
			}
			for _, l := range tab.Labels {
				if l < 0 || l >= tab.Classes {
					t.Fatalf("label %d outside [0, %d)", l, tab.Classes)
				}
			}
		}
	})
}

// FuzzCIFARFile: a file of any content either fails to load or loads with
// every label in range and the right number of examples.
func FuzzCIFARFile(f *testing.F) {
	good := make([]byte, 2*cifarRecord)
	good[0], good[cifarRecord] = 3, 9
	f.Add(good)
	f.Add(good[:100])
	bad := append([]byte(nil), good...)
	bad[cifarRecord] = 200
	f.Add(bad)
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, cifarTestFileName), content, 0o644); err != nil {
			t.Fatal(err)
		}
		format := cifarFormat{recordsPerFile: 2, sums: map[string]string{}}
		d, err := format.load(dir, "test", CIFAROptions{})
		if err != nil {
			return
		}
		if d.Len() != 2 || len(d.Pixels) != 2*CIFAR10Dim {
			t.Fatalf("loaded %d examples from %d bytes", d.Len(), len(content))
		}
		for _, l := range d.Labels {
			if l > 9 {
				t.Fatalf("accepted label %d", l)
			}
		}
	})
}

package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/internal/npy"
)

// FuzzReadDirections: a direction file of any content either fails with an
// error or gives k vectors of exactly P entries.
func FuzzReadDirections(f *testing.F) {
	const params = 6
	p := filepath.Join(f.TempDir(), "d.npy")
	npy.WriteNPY(p, []int{2, params}, make([]float64, 2*params))
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	npy.WriteNPY(p, []int{params}, make([]float32, params))
	seed1, _ := os.ReadFile(p)
	f.Add(seed1)
	npy.WriteNPY(p, []int{3, params + 1}, make([]float64, 3*(params+1)))
	seed2, _ := os.ReadFile(p)
	f.Add(seed2)
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "x.npy")
		os.WriteFile(path, content, 0o644)
		dirs, err := ReadDirections(path, params)
		if err != nil {
			return
		}
		for i, d := range dirs {
			if len(d) != params {
				t.Fatalf("direction %d has %d entries", i, len(d))
			}
		}
	})
}

// FuzzParse: any YAML either fails with a one-line error or gives a valid
// experiment whose ensembles all have names and positive sizes.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"quick", "linreg-oracle", "lr-scan"} {
		_, raw, err := read(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("ensemble: {lr: [0.1, -1]}\n"))
	f.Add([]byte("hessian: {top: x}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(in)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, n := range []int{0, 1, 1 << 20} {
			for _, e := range c.Ensembles(n) {
				if e.Name == "" || e.Batch < 1 {
					t.Fatalf("ensemble %+v from a valid experiment", e)
				}
			}
		}
	})
}

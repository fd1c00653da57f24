package npy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadNPY: any bytes either fail with an error or give data whose
// length matches the shape.
func FuzzReadNPY(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.npy")
	if err := WriteNPY(p, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add(seed[:20])
	f.Add([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<i8'}"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "x.npy")
		os.WriteFile(path, content, 0o644)
		shape, data, err := ReadNPY(path)
		if err != nil {
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		switch v := data.(type) {
		case []float64:
			if len(v) != n {
				t.Fatalf("shape %v, %d values", shape, len(v))
			}
		case []float32:
			if len(v) != n {
				t.Fatalf("shape %v, %d values", shape, len(v))
			}
		default:
			t.Fatalf("data of type %T", data)
		}
	})
}

// FuzzReadNPZ: any bytes either fail or give named arrays consistent with
// their shapes.
func FuzzReadNPZ(f *testing.F) {
	p := filepath.Join(f.TempDir(), "seed.npz")
	if err := WriteNPZ(p, []Array{{Name: "w", Shape: []int{2}, F32: []float32{1, 2}}, {Name: "b", Shape: []int{1}, F64: []float64{3}}}); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "x.npz")
		os.WriteFile(path, content, 0o644)
		arrs, err := ReadNPZ(path)
		if err != nil {
			return
		}
		for _, a := range arrs {
			n := 1
			for _, d := range a.Shape {
				n *= d
			}
			if len(a.F32)+len(a.F64) != n || a.Name == "" {
				t.Fatalf("array %q shape %v with %d+%d values", a.Name, a.Shape, len(a.F32), len(a.F64))
			}
		}
	})
}

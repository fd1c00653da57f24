package data

import (
	"slices"
	"testing"
)

// seqDataset is a Dataset from outside the package's own types: example i
// has the single feature i.
type seqDataset int

func (s seqDataset) Len() int { return int(s) }

func (s seqDataset) Fill(b *Batch, idx []int) {
	b.N = len(idx)
	b.X = grow(b.X, len(idx))
	for k, i := range idx {
		if i < 0 || i >= int(s) {
			panic("index out of range")
		}
		b.X[k] = float64(i)
	}
}

func TestRange(t *testing.T) {
	tab := &Table{Dim: 1, X: []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Targets: []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}}
	for _, ds := range []Dataset{tab, seqDataset(10)} {
		r := Range(ds, 3, 8)
		if r.Len() != 5 {
			t.Errorf("%T: Len = %d, want 5", ds, r.Len())
		}
		var b Batch
		r.Fill(&b, []int{4, 0, 2})
		if b.N != 3 || !slices.Equal(b.X, []float64{7, 3, 5}) {
			t.Errorf("%T: Range(3, 8) examples [4 0 2] = %v, want [7 3 5]", ds, b.X)
		}
		// A view of a view.
		rr := Range(r, 1, 4)
		rr.Fill(&b, []int{0, 2})
		if rr.Len() != 3 || !slices.Equal(b.X, []float64{4, 6}) {
			t.Errorf("%T: nested view: Len %d, examples [0 2] = %v, want 3, [4 6]", ds, rr.Len(), b.X)
		}
		checkFillAllocs(t, rr)

		// Reading past the view must panic even though ds has the example.
		for _, i := range []int{5, -1} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%T: Fill of example %d of a 5-example view did not panic", ds, i)
					}
				}()
				r.Fill(&b, []int{i})
			}()
		}
	}
	if got := Range(tab, 10, 10).Len(); got != 0 {
		t.Errorf("empty view: Len = %d", got)
	}
	for _, bounds := range [][2]int{{-1, 2}, {3, 2}, {0, 11}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Range(%d, %d) of 10 examples did not panic", bounds[0], bounds[1])
				}
			}()
			Range(tab, bounds[0], bounds[1])
		}()
	}
}

func TestEvenlySpaced(t *testing.T) {
	got := EvenlySpaced(10, 4)
	want := []int{0, 2, 5, 7}
	if len(got) != len(want) {
		t.Fatalf("EvenlySpaced(10, 4) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("EvenlySpaced(10, 4) = %v, want %v", got, want)
		}
	}
	if all := EvenlySpaced(3, 8); len(all) != 3 || all[0] != 0 || all[2] != 2 {
		t.Errorf("EvenlySpaced(3, 8) = %v, want [0 1 2]", all)
	}
}

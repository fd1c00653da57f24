package probe

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
)

func randomVectors(k, dim int, seed uint64) [][]float64 {
	rng := newRand(seed)
	vs := make([][]float64, k)
	for i := range vs {
		vs[i] = make([]float64, dim)
		for j := range vs[i] {
			vs[i][j] = rng.NormFloat64()
		}
	}
	return vs
}

// checkOrthonormal fails unless vs are orthonormal to tol.
func checkOrthonormal(t *testing.T, vs [][]float64, tol float64) {
	t.Helper()
	for i := range vs {
		for j := range i + 1 {
			want := 0.0
			if i == j {
				want = 1
			}
			if x := floats.Dot(vs[i], vs[j]); math.Abs(x-want) > tol {
				t.Errorf("<v%d, v%d> = %v", i, j, x)
			}
		}
	}
}

func TestBulkDirections(t *testing.T) {
	const dim, k = 60, 20
	// Not orthonormal, and with a dependent member, which must be allowed.
	against := randomVectors(3, dim, 51)
	dep := slices.Clone(against[0])
	floats.Add(dep, against[1])
	against = append(against, dep)
	saved := make([][]float64, len(against))
	for i := range against {
		saved[i] = slices.Clone(against[i])
	}
	vs, err := BulkDirections(dim, k, against, 52)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != k {
		t.Fatalf("got %d directions, want %d", len(vs), k)
	}
	checkOrthonormal(t, vs, 1e-12)
	for i, v := range vs {
		for j, a := range against {
			if x := floats.Dot(v, a) / floats.Norm(a, 2); math.Abs(x) > 1e-12 {
				t.Errorf("direction %d has cosine %v with against[%d]", i, x, j)
			}
		}
	}
	for i := range against {
		if !slices.Equal(against[i], saved[i]) {
			t.Errorf("against[%d] was modified", i)
		}
	}
	again, _ := BulkDirections(dim, k, against, 52)
	other, _ := BulkDirections(dim, k, against, 53)
	for i := range vs {
		if !slices.Equal(vs[i], again[i]) {
			t.Errorf("direction %d differs for the same seed", i)
		}
	}
	if slices.Equal(vs[0], other[0]) {
		t.Error("different seeds give the same directions")
	}
	// 3 independent against vectors leave room for exactly 57.
	if _, err := BulkDirections(dim, 57, against, 1); err != nil {
		t.Errorf("57 directions: %v", err)
	}
	if _, err := BulkDirections(dim, 58, against, 1); err == nil {
		t.Error("no error for 58 directions orthogonal to a 3-dimensional span in dimension 60")
	}
	if _, err := BulkDirections(dim, 1, [][]float64{make([]float64, 5)}, 1); err == nil {
		t.Error("no error for a short against vector")
	}
}

func TestOrthonormalize(t *testing.T) {
	vs := randomVectors(5, 10, 54)
	first := slices.Clone(vs[0])
	if err := Orthonormalize(vs); err != nil {
		t.Fatal(err)
	}
	checkOrthonormal(t, vs, 1e-14)
	// Gram-Schmidt keeps the first direction.
	if c := floats.Dot(vs[0], first) / floats.Norm(first, 2); math.Abs(c-1) > 1e-14 {
		t.Errorf("first vector turned: cosine %v", c)
	}

	vs = randomVectors(4, 10, 55)
	vs[2] = slices.Clone(vs[0])
	floats.AddScaled(vs[2], -3, vs[1])
	err := Orthonormalize(vs)
	if err == nil || !strings.Contains(err.Error(), "vector 2") {
		t.Errorf("rank-deficient set: got %v", err)
	}
	if err := Orthonormalize([][]float64{make([]float64, 3)}); err == nil {
		t.Error("no error for a zero vector")
	}
}

func TestFlagNulls(t *testing.T) {
	null, med := FlagNulls([]float64{1, 2, 0.5, 1e-20, 3}, 0)
	if want := []bool{false, false, false, true, false}; !slices.Equal(null, want) || med != 1 {
		t.Errorf("null %v, median %v; want %v, 1", null, med, want)
	}
	null, med = FlagNulls([]float64{0.3, 2, 0.5, 1.7}, 0)
	if slices.Contains(null, true) || med != 1.1 {
		t.Errorf("clean set: null %v, median %v", null, med)
	}
	// The threshold is relative to the median, so the scale of c is
	// irrelevant.
	null, _ = FlagNulls([]float64{1e-12, 2e-12, 0.5e-12, 1e-32, 3e-12}, 0)
	if want := []bool{false, false, false, true, false}; !slices.Equal(null, want) {
		t.Errorf("small-scale set: null %v, want %v", null, want)
	}
	// relTol is honoured.
	null, _ = FlagNulls([]float64{1, 1, 1e-3}, 1e-2)
	if !null[2] {
		t.Error("relTol 1e-2 did not flag 1e-3 against median 1")
	}
}

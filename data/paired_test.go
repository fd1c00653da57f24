package data

import (
	"fmt"
	"slices"
	"testing"
)

func mustPaired(t *testing.T, n, batch int, mode Sampling, seed, stream uint64) *Sampler {
	t.Helper()
	s, err := NewPairedSampler(n, batch, mode, seed, stream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPairedWithIsUnpaired: pairing never changes with-replacement batches,
// so a paired "with" ensemble is the ordinary one.
func TestPairedWithIsUnpaired(t *testing.T) {
	p, u := mustPaired(t, 100, 5, WithReplacement, 2024, 3), mustSampler(t, 100, 5, WithReplacement, 2024, 3)
	for step := range int64(50) {
		if a, b := p.Indices(step, nil), u.Indices(step, nil); !slices.Equal(a, b) {
			t.Fatalf("step %d: paired %v, unpaired %v", step, a, b)
		}
	}
}

// TestPairedWithoutIsAShuffle checks that the paired permutation is a
// permutation walk (disjoint batches within an epoch), a pure function of
// the step, and uniform over orderings; and that it shares the expected
// share of indices with the with-replacement draws of the same stream.
func TestPairedWithoutIsAShuffle(t *testing.T) {
	const n, batch = 11, 3 // 3 steps per epoch, 2 examples left out
	seq := mustPaired(t, n, batch, WithoutReplacement, 9, 4)
	var want [][]int
	for step := range int64(30) {
		want = append(want, seq.Indices(step, nil))
	}
	for e := 0; e < 10; e++ {
		seen := map[int]bool{}
		for _, b := range want[3*e : 3*e+3] {
			for _, i := range b {
				if i < 0 || i >= n || seen[i] {
					t.Fatalf("epoch %d: batches %v are not disjoint slices of a permutation", e, want[3*e:3*e+3])
				}
				seen[i] = true
			}
		}
	}
	jump := mustPaired(t, n, batch, WithoutReplacement, 9, 4)
	for step := int64(29); step >= 0; step -= 4 {
		if got := jump.Indices(step, nil); !slices.Equal(got, want[step]) {
			t.Errorf("step %d out of order: %v, in order %v", step, got, want[step])
		}
	}
	if slices.Equal(want[0], mustSampler(t, n, batch, WithoutReplacement, 9, 4).Indices(0, nil)) &&
		slices.Equal(want[1], mustSampler(t, n, batch, WithoutReplacement, 9, 4).Indices(1, nil)) {
		t.Error("paired permutation equals the unpaired one: the construction is not in use")
	}

	// Uniform over the 4! orderings at n = 4, b = 2 (one epoch = 2 steps).
	const epochs = 48000
	s := mustPaired(t, 4, 2, WithoutReplacement, 1, 1)
	counts := map[string]int{}
	var dst []int
	for e := range int64(epochs) {
		dst = s.Indices(2*e, dst)
		key := fmt.Sprint(dst)
		dst = s.Indices(2*e+1, dst)
		counts[key+fmt.Sprint(dst)]++
	}
	if len(counts) != 24 {
		t.Fatalf("%d distinct orderings of 4, want 24", len(counts))
	}
	var c []int
	for _, v := range counts {
		c = append(c, v)
	}
	// 23 degrees of freedom: mean 23, sd 6.8.
	if x := chiSquare(c); x > 70 {
		t.Errorf("chi-square %.1f over the 24 orderings: %v", x, counts)
	}

	// Common random numbers: position j of an epoch takes the
	// with-replacement draw with probability (n - j)/n, about one half
	// over an epoch of n = 100 (mean (n+1)/2n = 0.505); unpaired, 1/n.
	const big, b2, steps = 100, 10, 2000
	w := mustSampler(t, big, b2, WithReplacement, 5, 6)
	agree := func(o *Sampler) (first, all float64) {
		var wd, od []int
		for step := range int64(steps) {
			wd, od = w.Indices(step, wd), o.Indices(step, od)
			for i := range wd {
				if wd[i] == od[i] {
					all++
					if step%10 == 0 {
						first++
					}
				}
			}
		}
		return first / (steps / 10 * b2), all / (steps * b2)
	}
	first, all := agree(mustPaired(t, big, b2, WithoutReplacement, 5, 6))
	if first < 0.93 || first > 0.98 || all < 0.48 || all > 0.53 {
		t.Errorf("paired: %.3f of first-batch and %.3f of all positions agree with the with-replacement draws, want 0.955 and 0.505", first, all)
	}
	if _, all := agree(mustSampler(t, big, b2, WithoutReplacement, 5, 6)); all > 0.03 {
		t.Errorf("unpaired: %.3f of positions agree, want about 0.01", all)
	}
}

func TestPairedAllocs(t *testing.T) {
	s := mustPaired(t, 1000, 32, WithoutReplacement, 1, 2)
	dst := s.Indices(0, nil)
	step := int64(0)
	if n := testing.AllocsPerRun(100, func() { step++; dst = s.Indices(step, dst) }); n != 0 {
		t.Errorf("%v allocations per Indices call, want 0", n)
	}
}

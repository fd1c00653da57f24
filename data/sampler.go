package data

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Sampling says how a Sampler draws the examples of a minibatch.
type Sampling string

const (
	// WithReplacement draws every index of every batch independently and
	// uniformly: the textbook model of SGD noise.
	WithReplacement Sampling = "with"
	// WithoutReplacement shuffles the data set once per epoch and walks
	// through the permutation, dropping the last partial batch.
	WithoutReplacement Sampling = "without"
)

// ParseSampling parses "with" or "without".
func ParseSampling(s string) (Sampling, error) {
	switch m := Sampling(s); m {
	case WithReplacement, WithoutReplacement:
		return m, nil
	}
	return "", fmt.Errorf("sampler: unknown sampling %q (want %q or %q)", s, WithReplacement, WithoutReplacement)
}

// epochDomain is set in the second PCG seed word of the epoch permutations.
// Steps are non-negative int64s, so the seeds (key, step) of
// with-replacement batches never have this bit set and no permutation can
// share its random stream with a batch.
const epochDomain = 1 << 63

// Sampler draws minibatch indices in [0, n). The batch at a step is a pure
// function of (n, batch, mode, seed, stream, step): it does not depend on
// which steps were drawn before or in what order. Any replica's sequence can
// therefore be regenerated exactly, and a resumed run needs only its step
// number.
//
// The random numbers come from math/rand/v2's PCG, whose output is fixed by
// its specification; the bounded draws and the shuffle are implemented here
// rather than taken from rand.Rand so that the batches stay the same
// whatever Go release builds the program.
//
// A Sampler caches the permutation of the current epoch and is not safe for
// concurrent use; give each goroutine its own.
type Sampler struct {
	n, batch int
	mode     Sampling
	key      uint64 // mix(seed, stream)

	pcg       rand.PCG
	perm      []int // permutation of epoch permEpoch (without replacement)
	permEpoch int64 // -1 before the first permutation

	// paired builds each epoch's permutation from the with-replacement
	// draws of the same key (see NewPairedSampler); pos is its inverse.
	paired bool
	pos    []int
	fall   rand.PCG
}

// NewSampler returns a sampler of batches of batch indices in [0, n). Seed
// selects the experiment and stream the replica: samplers that differ in
// either draw unrelated sequences.
func NewSampler(n, batch int, mode Sampling, seed, stream uint64) (*Sampler, error) {
	switch {
	case n <= 0:
		return nil, fmt.Errorf("sampler: empty data set")
	case batch <= 0:
		return nil, fmt.Errorf("sampler: batch size %d, want at least 1", batch)
	case batch > n:
		return nil, fmt.Errorf("sampler: batch %d larger than the data set (%d examples)", batch, n)
	}
	if _, err := ParseSampling(string(mode)); err != nil {
		return nil, err
	}
	return &Sampler{n: n, batch: batch, mode: mode, key: mix(seed, stream), permEpoch: -1}, nil
}

// NewPairedSampler is NewSampler for ensembles run under both schemes with
// common random numbers. With replacement it is NewSampler: the draws of
// step s come from the PCG stream (key, s). Without replacement the epoch's
// permutation is built from those same draws: position j of epoch e takes
// the j-th draw of the epoch's steps (draw j mod batch of step e S + j div
// batch, S steps per epoch) when that index is not yet used in the epoch,
// and otherwise an unused index uniformly from the epoch's own stream. Each
// position is then uniform over the unused indices, so the batches are
// exactly those of a uniform shuffle, and a replica's batch at a step
// shares on average half its examples with the with-replacement batch of
// the same (seed, stream) and step (all of them early in an epoch, few at
// its end). NewSampler's permutations are left as they were, so existing
// runs resume bit-identically.
func NewPairedSampler(n, batch int, mode Sampling, seed, stream uint64) (*Sampler, error) {
	s, err := NewSampler(n, batch, mode, seed, stream)
	if err != nil {
		return nil, err
	}
	s.paired = true
	return s, nil
}

// StepsPerEpoch returns floor(n/batch), the number of steps of one pass
// over the data set. Without replacement, step s belongs to epoch
// s/StepsPerEpoch().
func (s *Sampler) StepsPerEpoch() int { return s.n / s.batch }

// Indices writes the indices of the batch of the given step into dst,
// resized to the batch size, and returns it. It panics if step < 0. Once dst
// is large enough, Indices does not allocate.
func (s *Sampler) Indices(step int64, dst []int) []int {
	if step < 0 {
		panic(fmt.Sprintf("data: Sampler.Indices: negative step %d", step))
	}
	dst = grow(dst, s.batch)
	if s.mode == WithReplacement {
		s.pcg.Seed(s.key, uint64(step))
		for i := range dst {
			dst[i] = int(bounded(&s.pcg, uint64(s.n)))
		}
		return dst
	}
	spe := int64(s.StepsPerEpoch())
	epoch, pos := step/spe, int(step%spe)
	if epoch != s.permEpoch {
		s.permute(epoch)
	}
	copy(dst, s.perm[pos*s.batch:(pos+1)*s.batch])
	return dst
}

// permute replaces the cached permutation with that of the given epoch. It
// always starts from the identity, so the result does not depend on the
// epoch cached before.
func (s *Sampler) permute(epoch int64) {
	s.perm = grow(s.perm, s.n)
	for i := range s.perm {
		s.perm[i] = i
	}
	if s.paired {
		s.permutePaired(epoch)
		return
	}
	s.pcg.Seed(s.key, uint64(epoch)|epochDomain)
	for i := s.n - 1; i > 0; i-- { // Fisher–Yates
		j := int(bounded(&s.pcg, uint64(i+1)))
		s.perm[i], s.perm[j] = s.perm[j], s.perm[i]
	}
	s.permEpoch = epoch
}

// permutePaired fills the first StepsPerEpoch()*batch positions of s.perm,
// starting from the identity, as NewPairedSampler describes: a partial
// Fisher–Yates shuffle in which each swap partner is the with-replacement
// draw when it is still unused.
func (s *Sampler) permutePaired(epoch int64) {
	s.pos = grow(s.pos, s.n)
	for i := range s.pos {
		s.pos[i] = i
	}
	spe := int64(s.StepsPerEpoch())
	s.fall.Seed(s.key, uint64(epoch)|epochDomain)
	j := 0
	for step := epoch * spe; step < (epoch+1)*spe; step++ {
		s.pcg.Seed(s.key, uint64(step))
		for range s.batch {
			pick := int(bounded(&s.pcg, uint64(s.n)))
			if s.pos[pick] < j { // used already in this epoch
				pick = s.perm[j+int(bounded(&s.fall, uint64(s.n-j)))]
			}
			// Swap pick into position j.
			pj, other := s.pos[pick], s.perm[j]
			s.perm[j], s.perm[pj] = pick, other
			s.pos[pick], s.pos[other] = j, pj
			j++
		}
	}
	s.permEpoch = epoch
}

// bounded returns a uniform integer in [0, n) using Lemire's
// multiply-and-reject method, which is exact (no modulo bias) and rarely
// needs a second draw.
func bounded(p *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(p.Uint64(), n)
	if lo < n {
		thresh := -n % n // 2^64 mod n
		for lo < thresh {
			hi, lo = bits.Mul64(p.Uint64(), n)
		}
	}
	return hi
}

// mix combines seed and stream into one PCG key. splitmix64 is a bijection
// with good avalanche, so for a fixed seed distinct streams get distinct
// keys (and vice versa), and nearby inputs get unrelated keys.
func mix(seed, stream uint64) uint64 {
	return splitmix64(splitmix64(seed) ^ stream)
}

// splitmix64 is the output function of Steele, Lea and Flood's SplitMix64
// generator.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

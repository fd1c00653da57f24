package kern

import "reflect"

// addVecMin is the shortest slice Add hands to addLong: at 8 the inlined
// scalar loop is ~1.5x faster than the call (the NanoGPT-960's per-token
// adds of 8 to its embedding gradients, BenchmarkAddMin), at 16 they tie,
// and the kernel is 7x faster at 8,192 (BenchmarkAddLenMin).
const addVecMin = 16

// addLong is Add for slices of at least addVecMin, in AVX2 for []float32
// and []float64. It takes interfaces rather than being generic: the call
// to a generic function, with its dictionary, would cost Add its
// inlining.
func addLong(dst, src any) {
	switch d := dst.(type) {
	case []float32:
		s := src.([]float32)[:len(d)]
		if haveAVX2 {
			addAVX2(d, s)
			return
		}
		for i, v := range s {
			d[i] += v
		}
	case []float64:
		s := src.([]float64)[:len(d)]
		if haveAVX2 {
			add64AVX2(d, s)
			return
		}
		for i, v := range s {
			d[i] += v
		}
	default: // a named float type: slow, but no call of kern makes one
		dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
		for i := range dv.Len() {
			e := dv.Index(i)
			e.SetFloat(e.Float() + sv.Index(i).Float())
		}
	}
}

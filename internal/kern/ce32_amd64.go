package kern

// softmaxCEAVX2 is SoftmaxCrossEntropy's float32 path for m rows (m a
// multiple of 8) of k >= 8, labels in [0, k), eight rows at a time
// transposed into buf (8k+8 floats): it leaves in sums[i] row i's sum of
// exponentials and in lvs[i] its label's logit less the row's max,
// overwrites the row by its exponentials or, with grad not 0, by the
// gradient, and returns the number of rows whose first argmax is the
// label (ce32_amd64.s).
//
//go:noescape
func softmaxCEAVX2(x []float32, labels []int32, sums, lvs, buf []float32, m, k, grad int, scale float32) (correct int)

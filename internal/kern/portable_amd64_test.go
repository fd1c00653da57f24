package kern

import "testing"

// TestPortableAddEmbed runs the Add, EmbedGrad and EmbedSum tests once
// more on the loops that machines without AVX2 run (as
// TestPortableFallback does for the older kernels).
func TestPortableAddEmbed(t *testing.T) {
	if !haveAVX2 {
		t.Skip("this machine already uses the portable paths")
	}
	haveAVX2 = false
	defer func() { haveAVX2 = true }()
	t.Run("add", TestAdd)
	t.Run("add-short-src", TestAddShortSrc)
	t.Run("embed-grad", TestEmbedGrad)
	t.Run("embed-grad-bad", TestEmbedGradBadToken)
	t.Run("embed-sum", TestEmbedSum)
}

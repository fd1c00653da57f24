package models

import (
	"strings"
	"testing"
)

// TestKindCustom: a custom model's config resolves and validates (a name,
// no impl), New refuses to build it, and a name on a built-in kind is
// refused rather than recorded.
func TestKindCustom(t *testing.T) {
	c := Config{Kind: KindCustom, Name: "mine"}.WithDefaults()
	if c.DType != "float32" || c.Chunk != 256 || c.Impl != "" {
		t.Errorf("custom defaults: dtype %q, chunk %d, impl %q; want float32, 256 and none", c.DType, c.Chunk, c.Impl)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("custom config: %v", err)
	}
	if _, err := New(c, Shape{Inputs: 3}, 1); err == nil || !strings.Contains(err.Error(), `"mine" is a custom model`) {
		t.Errorf("New of a custom model: %v", err)
	}
	for _, bad := range []struct {
		c    Config
		want string
	}{
		{Config{Kind: KindCustom}, "needs a name"},
		{Config{Kind: KindCustom, Name: "mine", Impl: "fused"}, "leave impl out"},
		{Config{Kind: KindCustom, Name: "mine", DType: "float16"}, "float16"},
		{Config{Kind: "mlp", Name: "mine"}, "for kind custom"},
	} {
		if err := bad.c.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error containing %q", bad.c, err, bad.want)
		}
	}
}

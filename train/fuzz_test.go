package train

import (
	"reflect"
	"testing"
)

// FuzzParseConfig: any YAML either fails with a one-line error or gives a
// config that survives validation and an encode/decode round trip.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("model: {kind: cnn}\nsgd: {lr: 0.1, batch: 64, steps: 10}\n"))
	f.Add([]byte("model:\n  kind: transformer\n  transformer: {width: 32, heads: 4}\n"))
	f.Add([]byte("sgd: {lr: fast}\n"))
	f.Add([]byte("model: {kind: mlp, mlp: {hidden: [3, -1]}}\n"))
	f.Add([]byte("unknown: 1\n"))
	f.Add([]byte("seed: 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConfig(in)
		if err != nil {
			return
		}
		c = c.WithDefaults()
		if c.Validate() != nil {
			return
		}
		y, err := encodeConfig(c)
		if err != nil {
			t.Fatalf("encoding a valid config: %v", err)
		}
		back, err := ParseConfig(y)
		if err != nil {
			t.Fatalf("re-reading %q: %v", y, err)
		}
		if back = back.WithDefaults(); !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}

package data

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestVocab(t *testing.T) {
	v := Vocab{Runes: []rune("\n !abcé世")}
	if v.Size() != 8 {
		t.Errorf("Size = %d, want 8", v.Size())
	}
	ids, err := v.Encode("ab c\né世!")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 4, 1, 5, 0, 6, 7, 2}; !slices.Equal(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	if got := v.Decode(ids); got != "ab c\né世!" {
		t.Errorf("Decode = %q", got)
	}
	if got := v.Decode([]int{3, -1, 8}); got != "a\uFFFD\uFFFD" {
		t.Errorf("Decode of out-of-range ids = %q, want replacement characters", got)
	}
	_, err = v.Encode("abz")
	wantErr(t, err, `'z' (U+007A) at byte 2 not in the vocabulary`)
	_, err = v.Encode("a\xffb")
	wantErr(t, err, "invalid UTF-8 at byte 1")

	// An unsorted vocabulary works too (the binary search must not be used).
	u := Vocab{Runes: []rune("cab")}
	if ids, err := u.Encode("abc"); err != nil || !slices.Equal(ids, []int{1, 2, 0}) {
		t.Errorf("unsorted Encode = %v, %v; want [1 2 0]", ids, err)
	}
}

func TestVocabJSON(t *testing.T) {
	v := Vocab{Runes: []rune("\n \"ab世")}
	b, err := json.Marshal(struct{ Vocab Vocab }{v})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Vocab":"\n \"ab世"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var w struct{ Vocab Vocab }
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Vocab.Runes, v.Runes) {
		t.Errorf("round trip = %q, want %q", string(w.Vocab.Runes), string(v.Runes))
	}
	var x Vocab
	wantErr(t, json.Unmarshal([]byte(`"abca"`), &x), `'a' (U+0061) appears twice`)
	if err := json.Unmarshal([]byte(`[1,2]`), &x); err == nil {
		t.Error("Unmarshal of an array succeeded")
	}
}

func TestParseCorpus(t *testing.T) {
	const text = "hello, wörld € ñandú 世界\n"
	c, err := ParseCorpus("x.txt", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Vocab.Runes), "\n ,adehlnorw\u00f1\u00f6\u00fa\u20ac\u4e16\u754c"; got != want {
		t.Errorf("vocab = %q, want %q (sorted distinct runes)", got, want)
	}
	if len(c.Tokens) != 24 || c.Source != "x.txt" {
		t.Errorf("%d tokens from %q, want 24 from x.txt", len(c.Tokens), c.Source)
	}
	if got := c.Vocab.Decode(c.Tokens); got != text {
		t.Errorf("decoded corpus = %q", got)
	}
	for _, tc := range []struct {
		text, want string
	}{
		{"", "corpus x.txt: empty file"},
		{"ab\xc3(cd", "corpus x.txt: invalid UTF-8 at byte 2"},
		{"aaaa", "corpus x.txt: only 1 distinct character, need at least 2"},
	} {
		_, err := ParseCorpus("x.txt", []byte(tc.text))
		wantErr(t, err, tc.want)
	}
}

func TestLoadCorpus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.txt")
	if err := os.WriteFile(path, []byte("abba"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCorpus(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Tokens, []int{0, 1, 1, 0}) || c.Source != path {
		t.Errorf("LoadCorpus = %v from %q", c.Tokens, c.Source)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCorpus(empty)
	wantErr(t, err, "corpus "+empty+": empty file")
	_, err = LoadCorpus(path + ".missing")
	wantErr(t, err, path+".missing")
}

func TestDefaultCorpus(t *testing.T) {
	c, err := DefaultCorpus()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tokens) != 1115394 || c.Vocab.Size() != 65 || c.Source != "embedded:tinyshakespeare" {
		t.Errorf("default corpus: %d characters, %d distinct, source %q; want 1115394, 65, embedded:tinyshakespeare",
			len(c.Tokens), c.Vocab.Size(), c.Source)
	}
	if got := c.Vocab.Decode(c.Tokens[:14]); got != "First Citizen:" {
		t.Errorf("corpus starts %q, want %q", got, "First Citizen:")
	}
	// Each call returns a private copy.
	c.Tokens[0] = 1
	d, err := DefaultCorpus()
	if err != nil {
		t.Fatal(err)
	}
	if d.Tokens[0] == 1 {
		t.Error("DefaultCorpus shares its tokens between calls")
	}
}

func TestSplit(t *testing.T) {
	c := &Corpus{Tokens: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Source: "s"}
	train, val, err := c.Split(0.3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train, []int{0, 1, 2, 3, 4, 5, 6}) || !slices.Equal(val, []int{7, 8, 9}) {
		t.Errorf("Split(0.3) = %v, %v", train, val)
	}
	// Appending to the training part must not overwrite the validation part.
	_ = append(train, -1)
	if val[0] != 7 {
		t.Error("appending to train overwrote val")
	}
	for _, frac := range []float64{0, 1, -0.1, 0.05, 0.9} {
		if _, _, err := c.Split(frac); err == nil {
			t.Errorf("Split(%v) of 10 tokens succeeded", frac)
		}
	}
}

func TestTextWindows(t *testing.T) {
	tok := []int{10, 11, 12, 13, 14, 15}
	w, err := NewTextWindows(tok, 3)
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 3 {
		t.Errorf("Len = %d, want 3", w.Len())
	}
	b := &Batch{X: []float64{1}, Targets: []float64{1}}
	w.Fill(b, []int{2, 0})
	if b.N != 2 || len(b.X) != 0 || len(b.Targets) != 0 {
		t.Errorf("N = %d, len(X) = %d, len(Targets) = %d", b.N, len(b.X), len(b.Targets))
	}
	if want := []int{12, 13, 14, 10, 11, 12}; !slices.Equal(b.Tokens, want) {
		t.Errorf("Tokens = %v, want %v", b.Tokens, want)
	}
	if want := []int{13, 14, 15, 11, 12, 13}; !slices.Equal(b.Labels, want) {
		t.Errorf("Labels = %v, want %v", b.Labels, want)
	}
	checkFillAllocs(t, w)

	func() {
		defer func() {
			if recover() == nil {
				t.Error("Fill of window 3 of 3 did not panic")
			}
		}()
		w.Fill(b, []int{3})
	}()

	for _, tc := range []struct {
		n, context int
		want       string
	}{
		{3, 3, "3 tokens too few for context 3 (need at least 4)"},
		{0, 1, "0 tokens too few"},
		{5, 0, "context 0"},
	} {
		_, err := NewTextWindows(make([]int, tc.n), tc.context)
		wantErr(t, err, tc.want)
	}
	if _, err := NewTextWindows(make([]int, 4), 3); err != nil {
		t.Errorf("one window: %v", err)
	}
}

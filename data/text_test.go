package data

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
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

func TestPrepareText(t *testing.T) {
	const text = "Hello, World!\nZebra xylophone: Élan 42 ñ世y"
	got, err := PrepareText("x", []byte(text), TextOptions{Preprocess: PreprocessPaper})
	if err != nil {
		t.Fatal(err)
	}
	// Lower-cased; ',', '!', '\n', 'z', ':', the digits and every non-ASCII
	// character (one space per character, not per byte) become spaces; 'x'
	// and 'y' stay.
	if want := "hello  world   ebra xylophone   lan      y"; string(got) != want {
		t.Errorf("paper preprocessing = %q, want %q", got, want)
	}
	if n := utf8.RuneCountInString(text); len(got) != n {
		t.Errorf("%d characters out of %d in", len(got), n)
	}
	for _, tc := range []struct {
		opts TextOptions
		want string
	}{
		{TextOptions{}, text},
		{TextOptions{Preprocess: PreprocessNone}, text},
		{TextOptions{LimitChars: 5}, "Hello"},
		{TextOptions{LimitChars: 5, Preprocess: PreprocessPaper}, "hello"},
		{TextOptions{LimitChars: 40}, "Hello, World!\nZebra xylophone: Élan 42 ñ"}, // counts characters, not bytes
		{TextOptions{LimitChars: utf8.RuneCountInString(text)}, text},
	} {
		got, err := PrepareText("x", []byte(text), tc.opts)
		if err != nil || string(got) != tc.want {
			t.Errorf("PrepareText(%+v) = %q, %v; want %q", tc.opts, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		text string
		opts TextOptions
		want string
	}{
		{"abc", TextOptions{LimitChars: 4}, "corpus x: limit_chars 4 exceeds its 3 characters"},
		{"abc", TextOptions{LimitChars: -1}, "negative limit_chars"},
		{"abc", TextOptions{Preprocess: "lower"}, `unknown preprocessing "lower"`},
		{"ab\xffc", TextOptions{Preprocess: PreprocessPaper}, "corpus x: invalid UTF-8 at byte 2"},
	} {
		_, err := PrepareText("x", []byte(tc.text), tc.opts)
		wantErr(t, err, tc.want)
	}
}

// TestPaperText checks the paper's text data on the embedded corpus: the
// first 6,000 characters preprocessed ("citizen" loses its z) hold 25
// symbols, give 5,984 windows of 16, and the first 80% of them, 4,787, are
// the training set.
func TestPaperText(t *testing.T) {
	c, err := LoadCorpusWith("", TextOptions{LimitChars: 6000, Preprocess: PreprocessPaper})
	if err != nil {
		t.Fatal(err)
	}
	if want := " abcdefghijklmnopqrstuvwy"; string(c.Vocab.Runes) != want || len(c.Tokens) != 6000 {
		t.Fatalf("vocabulary %q (%d) over %d tokens, want %q (25) over 6000", string(c.Vocab.Runes), c.Vocab.Size(), len(c.Tokens), want)
	}
	if got := c.Vocab.Decode(c.Tokens[:28]); got != "first citi en  before we pro" {
		t.Errorf("text starts %q", got)
	}
	all, err := NewTextWindows(c.Tokens, 16)
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := SplitWindows(all, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if all.Len() != 5984 || train.Len() != 4787 || val.Len() != 1197 {
		t.Fatalf("%d windows, %d training, %d validation; want 5984, 4787, 1197", all.Len(), train.Len(), val.Len())
	}
	var b Batch
	val.Fill(&b, []int{0})
	if !slices.Equal(b.Tokens, c.Tokens[4787:4803]) || !slices.Equal(b.Labels, c.Tokens[4788:4804]) {
		t.Error("the first validation window does not start at character 4787")
	}
	limited := Range(train, 0, 2048)
	limited.Fill(&b, []int{2047})
	if !slices.Equal(b.Tokens, c.Tokens[2047:2063]) {
		t.Error("training window 2047 does not start at character 2047")
	}

	// Without options LoadCorpusWith is DefaultCorpus; with a path, LoadCorpus.
	d, err := LoadCorpusWith("", TextOptions{})
	if err != nil || len(d.Tokens) != 1115394 || d.Vocab.Size() != 65 || d.Source != "embedded:tinyshakespeare" {
		t.Errorf("LoadCorpusWith(\"\") = %d tokens, %d symbols, %v", len(d.Tokens), d.Vocab.Size(), err)
	}
	path := filepath.Join(t.TempDir(), "c.txt")
	if err := os.WriteFile(path, []byte("Zab, BA!"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := LoadCorpusWith(path, TextOptions{Preprocess: PreprocessPaper, LimitChars: 7})
	if err != nil || e.Vocab.Decode(e.Tokens) != " ab  ba" || e.Source != path {
		t.Errorf("LoadCorpusWith(%s) = %q from %q, %v", path, e.Vocab.Decode(e.Tokens), e.Source, err)
	}
	_, err = LoadCorpusWith(path+".missing", TextOptions{})
	wantErr(t, err, path+".missing")
}

func TestSplitWindows(t *testing.T) {
	w, err := NewTextWindows([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1) // 10 windows
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := SplitWindows(w, 0.25) // round(2.5) = 3 validation windows
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 7 || val.Len() != 3 {
		t.Errorf("split 0.25 of 10: %d and %d, want 7 and 3", train.Len(), val.Len())
	}
	var b Batch
	val.Fill(&b, []int{0, 2})
	if !slices.Equal(b.Tokens, []int{7, 9}) {
		t.Errorf("validation windows start at %v, want [7 9]", b.Tokens)
	}
	for _, frac := range []float64{0, 1, 0.01, 0.99, math.NaN()} {
		_, _, err := SplitWindows(w, frac)
		if err == nil {
			t.Errorf("SplitWindows(%v) of 10 succeeded", frac)
		}
	}
}

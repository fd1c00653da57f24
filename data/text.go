package data

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Vocab maps characters to token ids: Runes[id] is the character of token id.
// Vocabularies built by ParseCorpus are sorted, which makes Encode a binary
// search; any order of distinct runes works.
//
// A Vocab marshals to JSON as a single string of its characters in id
// order, so that a saved vocabulary can be read by eye.
type Vocab struct {
	Runes []rune
}

// Size returns the number of tokens.
func (v Vocab) Size() int { return len(v.Runes) }

// Encode returns the token ids of the characters of s. It fails on invalid
// UTF-8 and on characters that are not in the vocabulary.
func (v Vocab) Encode(s string) ([]int, error) {
	sorted := slices.IsSorted(v.Runes)
	ids := make([]int, 0, utf8.RuneCountInString(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("vocab: invalid UTF-8 at byte %d", i)
		}
		var id int
		var ok bool
		if sorted {
			id, ok = slices.BinarySearch(v.Runes, r)
		} else {
			id = slices.Index(v.Runes, r)
			ok = id >= 0
		}
		if !ok {
			return nil, fmt.Errorf("vocab: character %q (%U) at byte %d not in the vocabulary", r, r, i)
		}
		ids = append(ids, id)
		i += size
	}
	return ids, nil
}

// Decode returns the text of ids. An id outside the vocabulary decodes to
// U+FFFD, the Unicode replacement character, so that generated text from a
// model with a mismatched vocabulary is visibly wrong rather than a panic.
func (v Vocab) Decode(ids []int) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		r := utf8.RuneError
		if id >= 0 && id < len(v.Runes) {
			r = v.Runes[id]
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// MarshalJSON encodes v as a JSON string of its characters in id order.
func (v Vocab) MarshalJSON() ([]byte, error) {
	for _, r := range v.Runes {
		if !utf8.ValidRune(r) {
			return nil, fmt.Errorf("vocab: %U is not a valid character", r)
		}
	}
	return json.Marshal(string(v.Runes))
}

// UnmarshalJSON decodes a JSON string written by MarshalJSON. It rejects
// strings that repeat a character, since they would not be a one-to-one
// mapping.
func (v *Vocab) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("vocab: %w", err)
	}
	runes := []rune(s)
	seen := make(map[rune]bool, len(runes))
	for _, r := range runes {
		if seen[r] {
			return fmt.Errorf("vocab: character %q (%U) appears twice", r, r)
		}
		seen[r] = true
	}
	v.Runes = runes
	return nil
}

// Corpus is a text encoded character by character.
type Corpus struct {
	// Vocab holds the distinct characters of the text in sorted order.
	Vocab Vocab
	// Tokens is the text as token ids of Vocab.
	Tokens []int
	// Source says where the text came from: a file path or
	// "embedded:<name>".
	Source string
}

// LoadCorpus reads a UTF-8 text file as a character-level corpus. The file
// must be non-empty valid UTF-8 with at least two distinct characters.
func LoadCorpus(path string) (*Corpus, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	return ParseCorpus(path, text)
}

// ParseCorpus is like LoadCorpus for text already in memory; name is used in
// errors and as the Source of the corpus.
func ParseCorpus(name string, text []byte) (*Corpus, error) {
	if len(text) == 0 {
		return nil, fmt.Errorf("corpus %s: empty file", name)
	}
	// First pass: validate and collect the distinct characters. ASCII, the
	// bulk of most corpora, goes through a table instead of the map.
	var ascii [utf8.RuneSelf]bool
	other := make(map[rune]bool)
	count := 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("corpus %s: invalid UTF-8 at byte %d", name, i)
		}
		if r < utf8.RuneSelf {
			ascii[r] = true
		} else {
			other[r] = true
		}
		count++
		i += size
	}
	var runes []rune
	for r, ok := range ascii {
		if ok {
			runes = append(runes, rune(r))
		}
	}
	for r := range other {
		runes = append(runes, r)
	}
	slices.Sort(runes)
	if len(runes) < 2 {
		return nil, fmt.Errorf("corpus %s: only %d distinct character, need at least 2", name, len(runes))
	}

	// Second pass: encode.
	var asciiID [utf8.RuneSelf]int
	otherID := make(map[rune]int, len(other))
	for id, r := range runes {
		if r < utf8.RuneSelf {
			asciiID[r] = id
		} else {
			otherID[r] = id
		}
	}
	tokens := make([]int, 0, count)
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if r < utf8.RuneSelf {
			tokens = append(tokens, asciiID[r])
		} else {
			tokens = append(tokens, otherID[r])
		}
		i += size
	}
	return &Corpus{Vocab: Vocab{Runes: runes}, Tokens: tokens, Source: name}, nil
}

// tinyShakespeare is the gzip-compressed tiny-shakespeare corpus (Karpathy's
// 1 MB selection of Shakespeare's plays, public domain).
//
//go:embed corpus/tinyshakespeare.txt.gz
var tinyShakespeare []byte

// DefaultCorpus returns the embedded tiny-shakespeare corpus: 1,115,394
// characters over 65 distinct ones. Each call decodes a fresh copy, so the
// caller may modify it.
func DefaultCorpus() (*Corpus, error) {
	text, err := defaultCorpusText()
	if err != nil {
		return nil, err
	}
	return ParseCorpus(defaultCorpusName, text)
}

// defaultCorpusName is the Source of the embedded corpus.
const defaultCorpusName = "embedded:tinyshakespeare"

// defaultCorpusText decompresses the embedded corpus.
func defaultCorpusText() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tinyShakespeare))
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", defaultCorpusName, err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", defaultCorpusName, err)
	}
	return text, nil
}

// minSplitTokens is the shortest usable part of a split: one input token and
// the token that follows it.
const minSplitTokens = 2

// Split divides the corpus by position into a training part and, from the
// last valFraction of the text, a validation part. Splitting by position
// rather than at random keeps the validation text unseen: random windows
// would overlap the training windows. valFraction must be in (0, 1) and each
// part must keep at least 2 tokens (one input and its target). Both parts
// share storage with
// c.Tokens and have their capacity clipped, so appending to one cannot
// overwrite the other.
func (c *Corpus) Split(valFraction float64) (train, val []int, err error) {
	if !(valFraction > 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("corpus %s: validation fraction %v not in (0, 1)", c.Source, valFraction)
	}
	n := len(c.Tokens)
	nVal := int(math.Round(valFraction * float64(n)))
	nTrain := n - nVal
	if nTrain < minSplitTokens || nVal < minSplitTokens {
		return nil, nil, fmt.Errorf("corpus %s: split of %d tokens at fraction %v gives %d training and %d validation tokens, need at least %d each",
			c.Source, n, valFraction, nTrain, nVal, minSplitTokens)
	}
	return c.Tokens[:nTrain:nTrain], c.Tokens[nTrain:n:n], nil
}

// TextWindows is the set of all windows of Context consecutive tokens of a
// token sequence, each paired with the tokens that follow: example i is the
// input Tokens[i:i+Context] with next-token targets Tokens[i+1:i+Context+1].
//
// TextWindows implements Dataset. Fill writes N*Context ids to both
// Batch.Tokens and Batch.Labels, example-major.
type TextWindows struct {
	Tokens  []int
	Context int
}

// NewTextWindows returns the windows of length context over tokens. It fails
// unless there is at least one window, that is len(tokens) > context.
func NewTextWindows(tokens []int, context int) (*TextWindows, error) {
	if context <= 0 {
		return nil, fmt.Errorf("text windows: context %d, want at least 1", context)
	}
	if len(tokens) <= context {
		return nil, fmt.Errorf("text windows: %d tokens too few for context %d (need at least %d)", len(tokens), context, context+1)
	}
	return &TextWindows{Tokens: tokens, Context: context}, nil
}

// Len returns the number of windows, len(Tokens) - Context.
func (w *TextWindows) Len() int { return max(len(w.Tokens)-w.Context, 0) }

// Fill writes the windows starting at positions idx into b.
func (w *TextWindows) Fill(b *Batch, idx []int) { w.fillOffset(b, idx, 0) }

func (w *TextWindows) fillOffset(b *Batch, idx []int, off int) {
	t := w.Context
	b.N = len(idx)
	b.Tokens = grow(b.Tokens, len(idx)*t)
	b.Labels = grow(b.Labels, len(idx)*t)
	b.X = b.X[:0]
	b.Targets = b.Targets[:0]
	for i, s := range idx {
		s += off
		copy(b.Tokens[i*t:(i+1)*t], w.Tokens[s:s+t])
		copy(b.Labels[i*t:(i+1)*t], w.Tokens[s+1:s+t+1])
	}
}

// Text preprocessing modes of TextOptions.Preprocess.
const (
	PreprocessNone  = "none"  // the text as it is (also the empty string)
	PreprocessPaper = "paper" // lower-case; other than a-y and space, a space
)

// TextOptions says how a text is prepared before it is encoded.
type TextOptions struct {
	// LimitChars, if positive, keeps only the first LimitChars characters of
	// the text. Zero keeps all of them.
	LimitChars int

	// Preprocess is PreprocessNone (or "") or PreprocessPaper: every
	// character is lower-cased, and every character other than the letters
	// a-y and the space becomes a space. That is the paper's rule, 'z'
	// included; the first 6,000 characters of tinyshakespeare then hold
	// exactly 25 distinct symbols (space, a-w, y).
	Preprocess string
}

// PrepareText returns text cut to opts.LimitChars characters and
// preprocessed as opts says; name is used in errors. The text must be valid
// UTF-8. Preprocessing maps each character to one character, so the limit
// counts the same characters before and after it.
func PrepareText(name string, text []byte, opts TextOptions) ([]byte, error) {
	if opts.LimitChars < 0 {
		return nil, fmt.Errorf("corpus %s: negative limit_chars %d", name, opts.LimitChars)
	}
	switch opts.Preprocess {
	case "", PreprocessNone, PreprocessPaper:
	default:
		return nil, fmt.Errorf("corpus %s: unknown preprocessing %q (want %q or %q)", name, opts.Preprocess, PreprocessNone, PreprocessPaper)
	}
	if !utf8.Valid(text) {
		// ParseCorpus would say where; find it the same way.
		_, err := ParseCorpus(name, text)
		return nil, err
	}
	if opts.LimitChars > 0 {
		end, count := 0, 0
		for end < len(text) && count < opts.LimitChars {
			_, size := utf8.DecodeRune(text[end:])
			end += size
			count++
		}
		if count < opts.LimitChars {
			return nil, fmt.Errorf("corpus %s: limit_chars %d exceeds its %d characters", name, opts.LimitChars, count)
		}
		text = text[:end]
	}
	if opts.Preprocess != PreprocessPaper {
		return text, nil
	}
	out := make([]byte, 0, len(text))
	for _, r := range string(text) {
		r = unicode.ToLower(r)
		if (r < 'a' || r > 'y') && r != ' ' {
			r = ' '
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// LoadCorpusWith reads a UTF-8 text file, or the embedded tinyshakespeare
// corpus if path is empty, prepares it with PrepareText and encodes it
// character by character.
func LoadCorpusWith(path string, opts TextOptions) (*Corpus, error) {
	name := path
	var text []byte
	var err error
	if path == "" {
		name = defaultCorpusName
		text, err = defaultCorpusText()
	} else {
		text, err = os.ReadFile(path)
		if err != nil {
			err = fmt.Errorf("corpus: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	if text, err = PrepareText(name, text, opts); err != nil {
		return nil, err
	}
	return ParseCorpus(name, text)
}

// SplitWindows divides the examples of ds by position: the last
// round(valFraction * ds.Len()) are the validation part, the others the
// training part. On text windows this is the paper's split: all stride-1
// windows of the whole text, the first 80% for training (4,787 of the 5,984
// windows of 16 of a 6,000-character text). Unlike Corpus.Split, the first
// validation windows then share characters with the last training ones.
func SplitWindows(ds Dataset, valFraction float64) (train, val Dataset, err error) {
	if !(valFraction > 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("validation fraction %v not in (0, 1)", valFraction)
	}
	n := ds.Len()
	nVal := int(math.Round(valFraction * float64(n)))
	nTrain := n - nVal
	if nTrain < 1 || nVal < 1 {
		return nil, nil, fmt.Errorf("split of %d examples at fraction %v gives %d training and %d validation examples, need at least 1 each", n, valFraction, nTrain, nVal)
	}
	return Range(ds, 0, nTrain), Range(ds, nTrain, n), nil
}

package data

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRegressionCSVRoundTrip(t *testing.T) {
	tab := &Table{
		Dim:     2,
		X:       []float64{0.1, -2, 1e-300, 3.141592653589793, math.MaxFloat64, -0.0},
		Targets: []float64{1.0 / 3, -7, 5e20},
	}
	var buf bytes.Buffer
	if err := WriteRegressionCSV(&buf, tab); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String()[:9], "x1,x2,y\n0"; got != want {
		t.Errorf("output starts %q, want %q", got, want)
	}
	path := writeFile(t, "r.csv", buf.String())
	got, err := LoadRegressionCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dim != 2 || got.Len() != 3 || got.Labels != nil || got.Classes != 0 ||
		!slices.Equal(got.X, tab.X) || !slices.Equal(got.Targets, tab.Targets) {
		t.Errorf("read back %+v, want %+v", got, tab)
	}

	b := &Batch{Tokens: []int{1}, Labels: []int{1}}
	got.Fill(b, []int{2, 0})
	if b.N != 2 || !slices.Equal(b.X, []float64{math.MaxFloat64, 0, 0.1, -2}) ||
		!slices.Equal(b.Targets, []float64{5e20, 1.0 / 3}) || len(b.Labels) != 0 || len(b.Tokens) != 0 {
		t.Errorf("Fill = %+v", b)
	}
	checkFillAllocs(t, got)
}

func TestClassificationCSVRoundTrip(t *testing.T) {
	tab := &Table{Dim: 1, X: []float64{0.5, 1.5, 2.5, 3.5}, Labels: []int{2, 0, 4, 2}, Classes: 5}
	var buf bytes.Buffer
	if err := WriteClassificationCSV(&buf, tab); err != nil {
		t.Fatal(err)
	}
	if want := "x1,label\n0.5,2\n1.5,0\n2.5,4\n3.5,2\n"; buf.String() != want {
		t.Errorf("output %q, want %q", buf.String(), want)
	}
	got, err := LoadClassificationCSV(writeFile(t, "c.csv", buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Classes != 5 || got.Targets != nil || !slices.Equal(got.Labels, tab.Labels) || !slices.Equal(got.X, tab.X) {
		t.Errorf("read back %+v, want %+v", got, tab)
	}
	b := &Batch{Targets: []float64{1}}
	got.Fill(b, []int{3, 2})
	if !slices.Equal(b.X, []float64{3.5, 2.5}) || !slices.Equal(b.Labels, []int{2, 4}) || len(b.Targets) != 0 {
		t.Errorf("Fill = %+v", b)
	}
	checkFillAllocs(t, got)
}

func TestCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		classify      bool
		want          string
	}{
		{"empty file", "", false, "empty file, want header x1,...,xd,y"},
		{"header only", "x1,y\n", false, "no data rows"},
		{"one column", "y\n1\n", false, "line 1: header has 1 columns"},
		{"bad header", "x1,x3,y\n1,2,3\n", false, `line 1, column 2: header "x3", want "x2"`},
		{"label header for regression", "x1,label\n1,2\n", false, `line 1, column 2: header "label", want "y"`},
		{"ragged", "x1,x2,y\n1,2,3\n4,5\n", false, "line 3: 2 fields, want 3"},
		{"long row", "x1,y\n1,2\n3,4,5\n", false, "line 3: 3 fields, want 2"},
		{"not a number", "x1,x2,y\n1,2,3\n4,five,6\n", false, `line 3, column 2 (x2): "five" is not a number`},
		{"NaN", "x1,y\n1,2\nNaN,3\n", false, `line 3, column 1 (x1): "NaN" is not a finite number`},
		{"Inf target", "x1,y\n1,+Inf\n", false, `line 2, column 2 (y): "+Inf" is not a finite number`},
		{"overflow", "x1,y\n1e999,1\n", false, `line 2, column 1 (x1): "1e999"`},
		{"bare quote", "x1,y\n1,2\"\n", false, "line 2:"},
		{"negative label", "x1,label\n1,0\n2,-1\n", true, `line 3, column 2 (label): "-1" is not an integer`},
		{"fractional label", "x1,label\n1,1.5\n", true, `line 2, column 2 (label): "1.5" is not an integer`},
		{"huge label", "x1,label\n1,99999999999\n", true, `"99999999999" is not an integer in [0, 1048576]`},
		{"y header for classification", "x1,y\n1,1\n", true, `header "y", want "label"`},
	} {
		path := writeFile(t, "t.csv", tc.content)
		var err error
		if tc.classify {
			_, err = LoadClassificationCSV(path)
		} else {
			_, err = LoadRegressionCSV(path)
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		wantErr(t, err, "csv "+path+": ", tc.want)
	}

	_, err := LoadRegressionCSV(filepath.Join(t.TempDir(), "missing.csv"))
	wantErr(t, err, "missing.csv")
}

func TestCSVTolerance(t *testing.T) {
	// Spaces around values and a blank line are accepted.
	got, err := LoadRegressionCSV(writeFile(t, "s.csv", "x1, x2 ,y\n 1 ,2, 3\n\n4,5,6\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.X, []float64{1, 2, 4, 5}) || !slices.Equal(got.Targets, []float64{3, 6}) {
		t.Errorf("got %+v", got)
	}
}

func TestWriteCSVErrors(t *testing.T) {
	var buf bytes.Buffer
	for _, tc := range []struct {
		name  string
		tab   *Table
		write func(*bytes.Buffer, *Table) error
		want  string
	}{
		{"dim 0", &Table{X: []float64{1}, Targets: []float64{1}}, wr, "dimension 0"},
		{"ragged X", &Table{Dim: 2, X: []float64{1, 2, 3}, Targets: []float64{1}}, wr, "not a multiple"},
		{"targets", &Table{Dim: 1, X: []float64{1, 2}, Targets: []float64{1}}, wr, "1 targets for 2 examples"},
		{"NaN", &Table{Dim: 1, X: []float64{math.NaN()}, Targets: []float64{1}}, wr, "feature x1: NaN is not finite"},
		{"Inf target", &Table{Dim: 1, X: []float64{1}, Targets: []float64{math.Inf(1)}}, wr, "target +Inf is not finite"},
		{"labels", &Table{Dim: 1, X: []float64{1}}, wc, "0 labels for 1 examples"},
		{"negative label", &Table{Dim: 1, X: []float64{1}, Labels: []int{-3}}, wc, "label -3 not in"},
	} {
		buf.Reset()
		err := tc.write(&buf, tc.tab)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		wantErr(t, err, tc.want)
	}
}

func wr(b *bytes.Buffer, t *Table) error { return WriteRegressionCSV(b, t) }
func wc(b *bytes.Buffer, t *Table) error { return WriteClassificationCSV(b, t) }

package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Table is a table of numeric examples read from CSV: Dim features per
// example and either a regression target or a class label.
//
// Table implements Dataset. Fill writes N*Dim features to Batch.X and the
// targets to Batch.Targets or the labels to Batch.Labels, whichever the
// table has.
type Table struct {
	Dim int
	// X holds Len()*Dim features, example-major.
	X []float64
	// Targets holds one regression target per example, or is nil.
	Targets []float64
	// Labels holds one class in [0, Classes) per example, or is nil.
	Labels []int
	// Classes is the number of classes of a classification table.
	Classes int
}

// Len returns the number of examples.
func (t *Table) Len() int {
	if t.Dim <= 0 {
		return 0
	}
	return len(t.X) / t.Dim
}

// Fill writes examples idx into b.
func (t *Table) Fill(b *Batch, idx []int) { t.fillOffset(b, idx, 0) }

func (t *Table) fillOffset(b *Batch, idx []int, off int) {
	d := t.Dim
	n := len(idx)
	b.N = n
	b.X = grow(b.X, n*d)
	b.Tokens = b.Tokens[:0]
	for i, j := range idx {
		j += off
		copy(b.X[i*d:(i+1)*d], t.X[j*d:(j+1)*d])
	}
	if t.Targets != nil {
		b.Targets = grow(b.Targets, n)
		for i, j := range idx {
			b.Targets[i] = t.Targets[j+off]
		}
	} else {
		b.Targets = b.Targets[:0]
	}
	if t.Labels != nil {
		b.Labels = grow(b.Labels, n)
		for i, j := range idx {
			b.Labels[i] = t.Labels[j+off]
		}
	} else {
		b.Labels = b.Labels[:0]
	}
}

// LoadRegressionCSV reads a regression table from a CSV file with header
// x1,...,xd,y and one example per line. Every value must be a finite
// number. Errors name the file, line and column.
func LoadRegressionCSV(path string) (*Table, error) {
	return loadCSV(path, "y")
}

// LoadClassificationCSV reads a classification table from a CSV file with
// header x1,...,xd,label. Features must be finite numbers and labels
// non-negative integers; Classes is one more than the largest label.
func LoadClassificationCSV(path string) (*Table, error) {
	return loadCSV(path, "label")
}

func loadCSV(path, last string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	defer f.Close()
	return readCSV(f, path, last)
}

// maxLabel bounds class labels so that a stray large number in a label
// column is reported instead of making a model with billions of outputs.
const maxLabel = 1 << 20

// readCSV reads a table whose last column is called last ("y" or "label").
func readCSV(r io.Reader, name, last string) (*Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	cr.ReuseRecord = true

	header, err := cr.Read()
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	if err == io.EOF {
		return nil, fmt.Errorf("csv %s: empty file, want header x1,...,xd,%s", name, last)
	}
	if err != nil {
		return nil, fmt.Errorf("csv %s: %w", name, err)
	}
	if len(header) < 2 {
		return nil, fmt.Errorf("csv %s: line 1: header has %d columns, want x1,...,xd,%s with d >= 1", name, len(header), last)
	}
	cols := len(header)
	dim := cols - 1
	for j, h := range header {
		h = strings.TrimSpace(h)
		want := last
		if j < dim {
			want = "x" + strconv.Itoa(j+1)
		}
		if h != want {
			return nil, fmt.Errorf("csv %s: line 1, column %d: header %q, want %q (header must be x1,...,x%d,%s)", name, j+1, h, want, dim, last)
		}
	}

	t := &Table{Dim: dim}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("csv %s: line %d: %w (at character %d)", name, pe.Line, pe.Err, pe.Column)
			}
			return nil, fmt.Errorf("csv %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != cols {
			return nil, fmt.Errorf("csv %s: line %d: %d fields, want %d as in the header", name, line, len(rec), cols)
		}
		for j, s := range rec[:dim] {
			v, err := parseFinite(s)
			if err != nil {
				return nil, fmt.Errorf("csv %s: line %d, column %d (%s): %v", name, line, j+1, header[j], err)
			}
			t.X = append(t.X, v)
		}
		s := strings.TrimSpace(rec[dim])
		if last == "y" {
			v, err := parseFinite(s)
			if err != nil {
				return nil, fmt.Errorf("csv %s: line %d, column %d (y): %v", name, line, cols, err)
			}
			t.Targets = append(t.Targets, v)
		} else {
			l, err := strconv.Atoi(s)
			if err != nil || l < 0 || l > maxLabel {
				return nil, fmt.Errorf("csv %s: line %d, column %d (label): %q is not an integer in [0, %d]", name, line, cols, s, maxLabel)
			}
			t.Labels = append(t.Labels, l)
			t.Classes = max(t.Classes, l+1)
		}
	}
	if len(t.X) == 0 {
		return nil, fmt.Errorf("csv %s: no data rows after the header", name)
	}
	return t, nil
}

// parseFinite parses a finite float64.
func parseFinite(s string) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is outside the float64 range", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// WriteRegressionCSV writes t in the format LoadRegressionCSV reads. Values
// are written with the fewest digits that read back exactly.
func WriteRegressionCSV(w io.Writer, t *Table) error {
	n, err := checkTable(t)
	if err != nil {
		return err
	}
	if len(t.Targets) != n {
		return fmt.Errorf("csv: table has %d targets for %d examples", len(t.Targets), n)
	}
	return writeCSV(w, t, "y", func(i int) string { return strconv.FormatFloat(t.Targets[i], 'g', -1, 64) })
}

// WriteClassificationCSV writes t in the format LoadClassificationCSV reads.
func WriteClassificationCSV(w io.Writer, t *Table) error {
	n, err := checkTable(t)
	if err != nil {
		return err
	}
	if len(t.Labels) != n {
		return fmt.Errorf("csv: table has %d labels for %d examples", len(t.Labels), n)
	}
	for i, l := range t.Labels {
		if l < 0 || l > maxLabel {
			return fmt.Errorf("csv: example %d: label %d not in [0, %d]", i, l, maxLabel)
		}
	}
	return writeCSV(w, t, "label", func(i int) string { return strconv.Itoa(t.Labels[i]) })
}

// checkTable checks the shape of t and returns its number of examples.
func checkTable(t *Table) (int, error) {
	if t.Dim <= 0 {
		return 0, fmt.Errorf("csv: table dimension %d, want at least 1", t.Dim)
	}
	if len(t.X)%t.Dim != 0 {
		return 0, fmt.Errorf("csv: %d features is not a multiple of dimension %d", len(t.X), t.Dim)
	}
	// Refuse what the loaders would refuse, so that a written file always
	// reads back.
	for i, v := range t.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("csv: example %d, feature x%d: %v is not finite", i/t.Dim, i%t.Dim+1, v)
		}
	}
	for i, v := range t.Targets {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("csv: example %d: target %v is not finite", i, v)
		}
	}
	return len(t.X) / t.Dim, nil
}

func writeCSV(w io.Writer, t *Table, last string, target func(int) string) error {
	cw := csv.NewWriter(w)
	rec := make([]string, t.Dim+1)
	for j := range t.Dim {
		rec[j] = "x" + strconv.Itoa(j+1)
	}
	rec[t.Dim] = last
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	for i := range t.Len() {
		for j, v := range t.X[i*t.Dim : (i+1)*t.Dim] {
			rec[j] = strconv.FormatFloat(v, 'g', -1, 64)
		}
		rec[t.Dim] = target(i)
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

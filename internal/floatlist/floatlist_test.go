package floatlist

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse("0.025, 0.05,1e-1")
	if err != nil || !slices.Equal(got, []float64{0.025, 0.05, 0.1}) {
		t.Fatalf("Parse: %v, %v", got, err)
	}
	for _, s := range []string{"", "0.1,", "0.1,x"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) gave no error", s)
		}
	}
	if _, err := Positive("1e-4,0"); err == nil || err.Error() != "0 is not a positive number" {
		t.Errorf("Positive(1e-4,0): %v", err)
	}
	if _, err := Positive("1e-4,NaN"); err == nil {
		t.Error("Positive accepted NaN")
	}
	if got, err := Positive("1e-4,1e-6"); err != nil || !slices.Equal(got, []float64{1e-4, 1e-6}) {
		t.Errorf("Positive: %v, %v", got, err)
	}
}

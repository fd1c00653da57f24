// Package floatlist parses the comma-separated number lists that sgdyn's
// command and scripts take as flags (learning rates, finite-difference
// steps).
package floatlist

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse returns the numbers of a comma-separated list, spaces around each
// allowed; it names the first entry that is not a number.
func Parse(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Positive is Parse for lists whose every entry must be above zero.
func Positive(s string) ([]float64, error) {
	vs, err := Parse(s)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if !(v > 0) {
			return nil, fmt.Errorf("%v is not a positive number", v)
		}
	}
	return vs, nil
}

package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
)

// maxLogLabels is the most labelled ticks a log axis gets: at the report's
// figure size, more than about eight labels of the form "1e-12" touch.
const maxLogLabels = 7

// logTicks labels a log axis with at most maxLogLabels powers of ten
// (every k-th decade over a wide range), short labels ("0.01", "1e-05",
// "1e+66"), and unlabelled minor ticks. plot.LogTicks labels every
// decade, which over the 60 decades of an unstable theory curve is a
// solid block of overlapping text.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	if !(min > 0) || !(max > min) || math.IsInf(max, 0) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	lo, hi := math.Log10(min), math.Log10(max)
	first, last := int(math.Ceil(lo-1e-9)), int(math.Floor(hi+1e-9))
	if last-first < 1 {
		// Less than two powers of ten in range: label 1, 2 and 5 times
		// them, or every digit when that gives fewer than three labels.
		for _, ms := range [][]float64{{1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}} {
			var ticks []plot.Tick
			labels := 0
			for e := first - 1; e <= last+1; e++ {
				for m := 1.0; m < 10; m++ {
					v := m * math.Pow10(e)
					if v < min*(1-1e-9) || v > max*(1+1e-9) {
						continue
					}
					t := plot.Tick{Value: v}
					if slices.Contains(ms, m) {
						t.Label = tickLabel(v)
						labels++
					}
					ticks = append(ticks, t)
				}
			}
			if labels >= 3 && labels <= maxLogLabels {
				return ticks
			}
		}
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	step := (last - first + maxLogLabels) / maxLogLabels // ceil((n decades) / max)
	// Two powers of ten alone leave most of the axis unlabelled: label 2
	// and 5 times them as well.
	also := map[float64]bool{}
	if last-first == 1 {
		also[2], also[5] = true, true
	}
	var ticks []plot.Tick
	for e := first - 1; e <= last+1; e++ {
		v := math.Pow10(e)
		if e >= first && e <= last && mod(e, step) == 0 {
			ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v)})
		}
		if step > 1 {
			if e >= first && e <= last && mod(e, step) != 0 && last-first <= 100 {
				ticks = append(ticks, plot.Tick{Value: v})
			}
			continue
		}
		for m := 1.0; m < 10; m++ { // 1 is the unlabelled decade below first
			w := m * v
			if w >= min && w <= max && !(m == 1 && e >= first && e <= last) {
				t := plot.Tick{Value: w}
				if also[m] {
					t.Label = tickLabel(w)
				}
				ticks = append(ticks, t)
			}
		}
	}
	return ticks
}

func mod(a, b int) int { return ((a % b) + b) % b }

// tickLabel writes a power of ten, or 2 or 5 times one, briefly.
func tickLabel(v float64) string {
	e := int(math.Floor(math.Log10(v) + 1e-9))
	if e >= -2 && e <= 3 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	m := v / math.Pow10(e)
	if math.Abs(m-1) < 1e-6 {
		return fmt.Sprintf("1e%d", e)
	}
	return fmt.Sprintf("%se%d", strconv.FormatFloat(math.Round(m*10)/10, 'f', -1, 64), e)
}

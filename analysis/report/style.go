package report

import (
	"image/color"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot/vg"
)

// classColors are the colours of the dynamical classes in every figure and
// in the page's CSS (classCSS), so a class looks the same everywhere.
var classColors = map[string]color.NRGBA{
	"confined":     {0x11, 0x99, 0x55, 0xff},
	"diffusive":    {0xcc, 0x66, 0x00, 0xff},
	"unstable":     {0xcc, 0x11, 0x11, 0xff},
	"null":         {0x77, 0x77, 0x77, 0xff},
	"undetermined": {0x44, 0x55, 0xbb, 0xff},
}

// classColor is the colour of class c; an unknown class (one a later
// classifier adds) is black until it is given a colour here.
func classColor(c string) color.NRGBA {
	if col, ok := classColors[c]; ok {
		return col
	}
	return color.NRGBA{0, 0, 0, 0xff}
}

// classCSS is the page's stylesheet fragment for the class colours.
func classCSS() string {
	var b strings.Builder
	for _, c := range classOrder {
		col := classColor(c)
		b.WriteString("." + c + "{color:#" + hex2(col.R) + hex2(col.G) + hex2(col.B) + "}")
	}
	return b.String()
}

func hex2(x uint8) string {
	s := strconv.FormatUint(uint64(x), 16)
	if len(s) == 1 {
		s = "0" + s
	}
	return s
}

// shade is the i-th of n shades of col, from col itself towards a lighter
// tint, so that several directions of one class stay that class's colour
// and remain distinguishable.
func shade(col color.NRGBA, i, n int) color.NRGBA {
	if n <= 1 {
		return col
	}
	f := 0.6 * float64(i) / float64(n-1) // up to 60% towards white
	mix := func(c uint8) uint8 { return uint8(float64(c) + f*(255-float64(c))) }
	return color.NRGBA{mix(col.R), mix(col.G), mix(col.B), col.A}
}

// Theory names, in the order tables and figures show them. A direction
// carries a curve for each theory that has a prediction for it.
const (
	TheoryDiscrete = "discrete"
	TheoryLangevin = "Langevin"
	TheorySubspace = "subspace"
)

// theoryStyle is a theory's name and its line dashes in the figures.
type theoryStyle struct {
	Name   string
	Dashes []vg.Length
}

// theories lists the theories the table has columns for, in display
// order, with their line dashes in the growth figures.
var theories = []theoryStyle{
	{TheoryDiscrete, []vg.Length{vg.Points(6), vg.Points(3)}},
	{TheoryLangevin, []vg.Length{vg.Points(1.5), vg.Points(2.5)}},
	{TheorySubspace, []vg.Length{vg.Points(7), vg.Points(2), vg.Points(1.5), vg.Points(2)}},
}

// extraDashes are the dashes of theories added later (any other key of
// Direction.Curves), in the sorted order of their names.
var extraDashes = [][]vg.Length{
	{vg.Points(3), vg.Points(1.5)},
	{vg.Points(8), vg.Points(2), vg.Points(1.5), vg.Points(2), vg.Points(1.5), vg.Points(2)},
	{vg.Points(1), vg.Points(1)},
}

// curveStyles lists the theories that have a curve in any of curves: the
// known ones first, in their order, then the others by name.
func curveStyles(curves ...map[string]Curve) []theoryStyle {
	have := map[string]bool{}
	for _, c := range curves {
		for name, f := range c {
			if f != nil {
				have[name] = true
			}
		}
	}
	var out []theoryStyle
	for _, th := range theories {
		if have[th.Name] {
			out = append(out, th)
			delete(have, th.Name)
		}
	}
	var rest []string
	for name := range have {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	for i, name := range rest {
		out = append(out, theoryStyle{name, extraDashes[i%len(extraDashes)]})
	}
	return out
}

// sourceFamily splits a direction source such as "top-3" into its family
// ("top") and index (3); a source without an index has index -1. Families
// (top, bottom, flat, null, bulk, user, and any later one) are treated
// alike everywhere.
func sourceFamily(src string) (string, int) {
	i := strings.LastIndexByte(src, '-')
	if i < 0 {
		return src, -1
	}
	n, err := strconv.Atoi(src[i+1:])
	if err != nil {
		return src, -1
	}
	return src[:i], n
}

package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// missing is what a table shows for a number that is not available.
const missing = "—"

// sig3 writes x with 3 significant digits, exponents without padding
// ("1.23e-5", "0.0123", "123", "1.23e3").
func sig3(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return missing
	}
	s := strconv.FormatFloat(x, 'g', 3, 64)
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		exp, _ := strconv.Atoi(s[i+1:])
		s = s[:i] + "e" + strconv.Itoa(exp)
	}
	return s
}

func sig3p(p *float64) string {
	if p == nil {
		return missing
	}
	return sig3(*p)
}

// cell is one table cell: its text, the number it sorts by (NaN: sorts by
// text, after every number), and an optional CSS class and expandable
// detail.
type cell struct {
	Text    string
	Sort    float64
	Class   string
	Details string
	Title   string
}

// SortKey is the cell's data-v attribute: the number, or empty.
func (c cell) SortKey() string {
	if math.IsNaN(c.Sort) || math.IsInf(c.Sort, 0) {
		return ""
	}
	return strconv.FormatFloat(c.Sort, 'g', -1, 64)
}

func numCell(p *float64) cell {
	if p == nil {
		return cell{Text: missing, Sort: math.NaN()}
	}
	return cell{Text: sig3(*p), Sort: *p}
}

// ciCell writes an estimate and its interval, "0.98 [0.91, 1.05]".
func ciCell(est *float64, ci []*float64) cell {
	c := numCell(est)
	if est != nil && len(ci) == 2 && ci[0] != nil && ci[1] != nil {
		c.Text += " [" + sig3(*ci[0]) + ", " + sig3(*ci[1]) + "]"
	}
	return c
}

// table is a sortable HTML table.
type table struct {
	ID   string
	Head []string
	// Tips are the header cells' hover texts (may be shorter than Head).
	Tips []string
	Rows []row
}

type row struct {
	Title string // hover text of the whole row
	Cells []cell
}

// HeadClass is the CSS class of column i's head: "l" (left-aligned) for
// a column of text, the class's own for a column of class counts.
func (t table) HeadClass(i int) string {
	if len(t.Rows) == 0 || i >= len(t.Rows[0].Cells) {
		return ""
	}
	c := t.Rows[0].Cells[i].Class
	if _, ok := classColors[c]; ok {
		return c
	}
	if strings.HasPrefix(c, "l") {
		return "l"
	}
	return ""
}

// Tip is the hover text of column i.
func (t table) Tip(i int) string {
	if i < len(t.Tips) {
		return t.Tips[i]
	}
	return ""
}

// directionTable is the compact per-direction table of an ensemble. A
// theory column is always there; a direction it has no prediction for
// shows missing.
func directionTable(e *Ensemble) table {
	t := table{ID: "dirs-" + e.Name,
		Head: []string{"#", "source", "λ", "ηλ", "‖Hu‖ηT", "c", "class", "log-log slope [CI]", "var(T) [CI]", "discrete", "Langevin", "subspace"},
		Tips: []string{"direction index", "where the direction comes from (top-i, bottom-i, flat-i, null-i, bulk-i, user-i)",
			"curvature u·Hu at the reference point", "η λ at the ensemble's learning rate",
			"the certified ||H u|| times η T: below the survey's threshold (marked flat) the direction is window-flat for this ensemble's window",
			"gradient-noise variance along u at the ensemble's batch", "dynamical class; click for the reason",
			"slope of ln V against ln t over the last decade, with its bootstrap interval",
			"measured variance at the last usable step T, with its bootstrap interval",
			"discrete theory at T", "Langevin (standard Fokker-Planck) at T", "subspace theory at T"}}
	for _, d := range e.Directions {
		src := cell{Text: d.Source, Sort: math.NaN(), Class: "l", Title: sourceTitle(d.Source)}
		why := d.Reason
		if d.HeavyTail {
			why += " Heavy-tailed projections: the variance interval may be too narrow."
		}
		cls := cell{Text: d.Class, Sort: math.NaN(), Class: "l " + d.Class, Details: why}
		if d.HeavyTail {
			cls.Title = "heavy tail"
		}
		r := row{Title: d.Reason, Cells: []cell{
			{Text: strconv.Itoa(d.Index), Sort: float64(d.Index)},
			src,
			numCell(d.Lambda),
			numCell(d.EtaLambda),
			curvatureWindowCell(d),
			numCell(d.C),
			cls,
			ciCell(d.LogLogSlope, d.LogLogSlopeCI),
			ciCell(d.VarFinal, d.VarFinalCI),
		}}
		for _, th := range theories {
			r.Cells = append(r.Cells, numCell(d.Pred(th.Name)))
		}
		t.Rows = append(t.Rows, r)
	}
	return t
}

// curvatureWindowCell shows ||H u|| eta T, marked "flat" when it makes the
// direction window-flat for this ensemble.
func curvatureWindowCell(d Direction) cell {
	c := numCell(d.CurvatureWindow)
	if d.WindowFlat {
		c.Text += " flat"
		c.Title = "window-flat for this ensemble's window"
	}
	return c
}

// sortScript makes every table.sortable sortable by a click on a column
// head: numbers by their data-v value, other cells by text, missing
// values last in both orders. Inline, so the page works from file://.
const sortScript = `(function(){
function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){var x=parseFloat(v);if(!isNaN(x))return x;}var s=td.textContent.trim();return s==='—'||s===''?null:s;}
function cmp(a,b){if(a===null||b===null)return 0;if(typeof a==='number'&&typeof b==='number')return a-b;if(typeof a==='number')return -1;if(typeof b==='number')return 1;return a.localeCompare(b,undefined,{numeric:true});}
var tables=document.querySelectorAll('table.sortable');
for(var n=0;n<tables.length;n++)(function(t){var ths=t.tHead.rows[0].cells;
for(var i=0;i<ths.length;i++)(function(th,i){th.addEventListener('click',function(){
var asc=th.getAttribute('aria-sort')!=='ascending';
for(var j=0;j<ths.length;j++)ths[j].removeAttribute('aria-sort');
th.setAttribute('aria-sort',asc?'ascending':'descending');
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),idx=rows.map(function(r,k){return k;});
var keys=rows.map(function(r){return key(r.cells[i]);});
idx.sort(function(p,q){var a=keys[p],c=keys[q];if(a===null&&c===null)return p-q;if(a===null)return 1;if(c===null)return -1;var d=cmp(a,c);return (asc?d:-d)||p-q;});
for(var k=0;k<idx.length;k++)b.appendChild(rows[idx[k]]);});})(ths[i],i);})(tables[n]);
})();`

var tableTemplate = template.Must(template.New("table").Parse(`<div class="scroll"><table class="sortable" id="{{.ID}}"><thead><tr>{{range $i, $h := .Head}}<th{{with $.HeadClass $i}} class="{{.}}"{{end}} title="{{$.Tip $i}}">{{$h}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr{{with .Title}} title="{{.}}"{{end}}>{{range .Cells}}<td{{with .SortKey}} data-v="{{.}}"{{end}}{{with .Class}} class="{{.}}"{{end}}{{with .Title}} title="{{.}}"{{end}}>{{if .Details}}<details><summary>{{.Text}}</summary><div class="why">{{.Details}}</div></details>{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{end}}</tbody></table></div>`))

func renderTable(t table) (template.HTML, error) {
	var b strings.Builder
	if err := tableTemplate.Execute(&b, t); err != nil {
		return "", fmt.Errorf("table %s: %w", t.ID, err)
	}
	return template.HTML(b.String()), nil
}

// classSentence is the headline's one sentence about a class of an
// ensemble: how many directions, what their variance does, and how often
// each theory's prediction at T falls inside the measured interval.
func classSentence(e *Ensemble, class string) string {
	n := e.Counts[class]
	if n == 0 {
		return ""
	}
	what := map[string]string{
		"confined":     "the variance saturates (log-log slope well below 1)",
		"diffusive":    "the variance grows linearly in t (log-log slope near 1)",
		"unstable":     "the variance grows geometrically, faster than any power of t",
		"null":         "exact symmetries of the loss: the gradient noise is at round-off level",
		"undetermined": "no class fits within the intervals (each row of the table says why)",
	}[class]
	if what == "" {
		what = "see the table"
	}
	s := fmt.Sprintf("%d of %d: %s.", n, len(e.Directions), what)
	if class == "null" {
		return s
	}
	var parts []string
	for _, th := range theories {
		in, have := theoryAgreement(e, class, th.Name)
		if have > 0 {
			parts = append(parts, fmt.Sprintf("%s %d of %d", th.Name, in, have))
		}
	}
	if len(parts) > 0 {
		s += " Prediction at T inside the measured interval: " + strings.Join(parts, ", ") + "."
	}
	return s
}

// theoryAgreement counts the directions of class whose measured var(T)
// interval contains the theory's prediction at T, out of those that have
// both.
func theoryAgreement(e *Ensemble, class, theory string) (in, have int) {
	return agreement(e.Directions, theory, func(d *Direction) bool { return d.Class == class })
}

// sourceTitle says in words where a direction comes from.
func sourceTitle(src string) string {
	fam, i := sourceFamily(src)
	what, ok := map[string]string{
		"top":    "Lanczos eigenvector of the %s largest eigenvalue",
		"bottom": "Lanczos eigenvector of the %s smallest eigenvalue",
		"flat":   "nearly flat direction %s",
		"null":   "null-space direction %s",
		"bulk":   "random unit direction %s (a bulk direction)",
		"user":   "user-supplied direction %s",
	}[fam]
	if !ok || i < 0 {
		return src
	}
	ord := strconv.Itoa(i)
	if fam == "top" || fam == "bottom" {
		ord = ordinal(i + 1)
	}
	return fmt.Sprintf(what, ord)
}

func ordinal(n int) string {
	suf := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suf = "st"
		case 2:
			suf = "nd"
		case 3:
			suf = "rd"
		}
	}
	return strconv.Itoa(n) + suf
}

// ciText3 writes an interval with 3 significant digits.
func ciText3(lo, hi float64) string { return "[" + sig3(lo) + ", " + sig3(hi) + "]" }

// classesOfEnsemble lists the classes present in e: classOrder's first, in
// that order, then any other.
func classesOfEnsemble(e *Ensemble) []string {
	var pts []classPoint
	for _, d := range e.Directions {
		pts = append(pts, classPoint{class: d.Class})
	}
	return classesOf(pts)
}

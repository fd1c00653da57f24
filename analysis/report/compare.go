package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sgdyn/sgdyn/probe"
)

// CompareRow is the headline of one run: its primary ensemble's classes
// and the numbers that say how the theories did.
type CompareRow struct {
	Run      string // the run directory as given
	Model    string
	Params   int
	Ensemble string
	Eta      float64
	Batch    int
	Replicas int
	Steps    int64
	// EtaLambdaMax is eta times the largest Lanczos eigenvalue (nil
	// without a survey).
	EtaLambdaMax *float64
	Directions   int
	Classes      map[string]int
	// Agree[theory] is {inside, with a prediction}: how many non-null
	// directions have the theory's prediction at T inside the measured
	// var(T) interval.
	Agree map[string][2]int
	// ScanSlope is the learning-rate scan's fitted exponent of the growth
	// rate per step against eta (theory 2), with its interval.
	ScanSlope   *float64
	ScanSlopeCI []*float64
	ValLoss     *float64
	ValAcc      *float64
	// From says where the numbers come from: the run's report/summary.json,
	// or a report built in memory because the run has none yet.
	From string
}

// summaryFile is the part of summary.json a comparison reads.
type summaryFile struct {
	Model      string         `json:"model"`
	Ensemble   string         `json:"ensemble"`
	Eta        float64        `json:"eta"`
	Batch      int            `json:"batch"`
	Replicas   int            `json:"replicas"`
	Steps      int64          `json:"steps"`
	Params     int            `json:"params"`
	Classes    map[string]int `json:"classes"`
	Directions []Direction    `json:"directions"`
	Training   *struct {
		ValLoss *float64 `json:"final_val_loss"`
		ValAcc  *float64 `json:"final_val_acc"`
	} `json:"training"`
	Spectrum *struct {
		Top []probe.Eigenvalue `json:"top"`
	} `json:"spectrum"`
	Scan *struct {
		Slope   *float64   `json:"per_step_slope"`
		SlopeCI []*float64 `json:"per_step_slope_ci"`
	} `json:"lr_scan"`
}

// CompareRuns reads the headline of each run directory: from its
// report/summary.json when there is one (the numbers the run's report
// shows), else from a report built in memory with o (nothing is written).
func CompareRuns(dirs []string, o Options) ([]CompareRow, error) {
	if len(dirs) == 0 {
		return nil, errors.New("compare: no run directories")
	}
	var rows []CompareRow
	for _, dir := range dirs {
		row, err := compareRow(dir, o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func compareRow(dir string, o Options) (CompareRow, error) {
	path := filepath.Join(dir, "report", "summary.json")
	b, err := os.ReadFile(path)
	from := path
	switch {
	case errors.Is(err, os.ErrNotExist):
		r, err := Build(dir, o)
		if err != nil {
			return CompareRow{}, fmt.Errorf("compare %s: %w", dir, err)
		}
		if b, err = json.Marshal(summary(r, r.Primary)); err != nil {
			return CompareRow{}, fmt.Errorf("compare %s: %w", dir, err)
		}
		from = "built in memory (no report yet)"
	case err != nil:
		return CompareRow{}, fmt.Errorf("compare %s: %w", dir, err)
	}
	var s summaryFile
	if err := json.Unmarshal(b, &s); err != nil {
		return CompareRow{}, fmt.Errorf("compare %s: %s: %w", dir, from, err)
	}
	row := CompareRow{Run: dir, Model: s.Model, Params: s.Params, Ensemble: s.Ensemble, Eta: s.Eta, Batch: s.Batch, Replicas: s.Replicas,
		Steps: s.Steps, Directions: len(s.Directions), Classes: s.Classes, Agree: map[string][2]int{}, From: from}
	if row.Classes == nil {
		row.Classes = map[string]int{}
	}
	if s.Spectrum != nil && len(s.Spectrum.Top) > 0 && s.Eta > 0 {
		row.EtaLambdaMax = num(s.Eta * s.Spectrum.Top[0].Value)
	}
	for _, th := range theories {
		in, have := agreement(s.Directions, th.Name, func(d *Direction) bool { return d.Class != "null" })
		if have > 0 {
			row.Agree[th.Name] = [2]int{in, have}
		}
	}
	if s.Scan != nil {
		row.ScanSlope, row.ScanSlopeCI = s.Scan.Slope, s.Scan.SlopeCI
	}
	if s.Training != nil {
		row.ValLoss, row.ValAcc = s.Training.ValLoss, s.Training.ValAcc
	}
	return row, nil
}

// agreement counts the directions with use(d) whose measured var(T)
// interval contains the theory's prediction at T, out of those that have
// both.
func agreement(dirs []Direction, theory string, use func(*Direction) bool) (in, have int) {
	for i := range dirs {
		d := &dirs[i]
		p := d.Pred(theory)
		if !use(d) || p == nil || len(d.VarFinalCI) != 2 || d.VarFinalCI[0] == nil || d.VarFinalCI[1] == nil {
			continue
		}
		have++
		if *p >= *d.VarFinalCI[0] && *p <= *d.VarFinalCI[1] {
			in++
		}
	}
	return in, have
}

// compareTable lays the rows out as one table: a run per row; the classes
// as counts; for each theory, how many predictions fall inside the
// measured intervals.
func compareTable(rows []CompareRow) table {
	t := table{ID: "compare", Head: []string{"run", "model", "params", "ensemble", "η", "batch", "replicas", "steps", "ηλmax", "directions"},
		Tips: []string{"run directory", "model kind", "parameters", "the run's primary ensemble", "learning rate", "batch size", "replicas",
			"steps", "η times the largest Hessian eigenvalue (2 is the edge of stability)", "directions followed"}}
	for _, c := range classOrder {
		t.Head = append(t.Head, c)
		t.Tips = append(t.Tips, "directions classified "+c)
	}
	for _, th := range theories {
		t.Head = append(t.Head, th.Name+" in CI")
		t.Tips = append(t.Tips, "non-null directions whose measured var(T) interval contains the "+th.Name+" prediction, of those with one")
	}
	t.Head = append(t.Head, "lr-scan slope [CI]", "val loss")
	t.Tips = append(t.Tips, "fitted exponent of the growth rate per step against η (theory 2)", "final validation loss of the training run")
	for _, r := range rows {
		cells := []cell{
			{Text: r.Run, Sort: math.NaN(), Class: "l", Title: r.From},
			{Text: r.Model, Sort: math.NaN(), Class: "l"},
			intCell(r.Params),
			{Text: orMissing(r.Ensemble), Sort: math.NaN(), Class: "l"},
			numCell(num(r.Eta)),
			intCell(r.Batch),
			intCell(r.Replicas),
			intCell(int(r.Steps)),
			numCell(r.EtaLambdaMax),
			intCell(r.Directions),
		}
		for _, c := range classOrder {
			n := r.Classes[c]
			cell := intCell(n)
			cell.Class = c
			cells = append(cells, cell)
		}
		for _, th := range theories {
			a, ok := r.Agree[th.Name]
			if !ok {
				cells = append(cells, cell{Text: missing, Sort: math.NaN()})
				continue
			}
			cells = append(cells, cell{Text: fmt.Sprintf("%d/%d", a[0], a[1]), Sort: float64(a[0]) / float64(a[1])})
		}
		cells = append(cells, ciCell(r.ScanSlope, r.ScanSlopeCI), numCell(r.ValLoss))
		t.Rows = append(t.Rows, row{Cells: cells})
	}
	return t
}

func intCell(n int) cell { return cell{Text: strconv.Itoa(n), Sort: float64(n)} }

func orMissing(s string) string {
	if s == "" {
		return missing
	}
	return s
}

// CompareMarkdown is the comparison as a Markdown table.
func CompareMarkdown(rows []CompareRow) string {
	t := compareTable(rows)
	var b strings.Builder
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	b.WriteString("| " + strings.Join(t.Head, " | ") + " |\n|")
	for i := range t.Head {
		if i == 0 || i == 1 || i == 3 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("|")
		for _, c := range r.Cells {
			b.WriteString(" " + esc.Replace(c.Text) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

var compareHTML = template.Must(template.New("compare").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sgdyn: {{len .Rows}} runs compared</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1400px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" \25b2"}th[aria-sort=descending]::after{content:" \25bc"}
td.l{text-align:left}.scroll{overflow-x:auto}
{{.CSS}}
</style></head><body>
<h1>Runs compared</h1>
<p>One row per run: its primary ensemble (the one at the run's own learning rate and batch), from each run's <code>report/summary.json</code> (hover a run for the source). Class columns count directions; "in CI" columns count the non-null directions whose measured variance interval at the last step contains the theory's prediction. Click a column head to sort.</p>
{{.Table}}
<script>{{.Script}}</script>
</body></html>
`))

// CompareHTML is the comparison as a self-contained HTML page.
func CompareHTML(rows []CompareRow) ([]byte, error) {
	tab, err := renderTable(compareTable(rows))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = compareHTML.Execute(&b, struct {
		Rows   []CompareRow
		Table  template.HTML
		Script template.JS
		CSS    template.CSS
	}{rows, tab, template.JS(sortScript), template.CSS(classCSS())})
	if err != nil {
		return nil, fmt.Errorf("compare html: %w", err)
	}
	return b.Bytes(), nil
}

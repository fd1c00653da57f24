package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

// Classes in the order reports list them.
var classOrder = []string{"confined", "diffusive", "unstable", "null", "undetermined"}

// page is what the HTML and Markdown templates see.
type page struct {
	*Report
	Figures   map[string][]*Figure // "headline", "training", "spectrum", ensemble name, "scan", "msd"
	ModelDesc string
	// Tables are the per-direction tables by ensemble name.
	Tables map[string]template.HTML
	// Headline is one sentence per class of the primary ensemble.
	Headline   []classLine
	ScanRows   []scanRow
	SortScript template.JS
	ClassCSS   template.CSS
}

type classLine struct{ Class, Text string }

// scanRow is one learning rate of the scan: the growth rate per step and
// the diffusion coefficient D = rate / (2 eta) per unit tau = eta t.
type scanRow struct {
	Name            string
	Eta             float64
	Rate, RateCI, D string
	DCI             string
}

// Write renders r into dir (normally RUN/report): figures as PNG and SVG,
// index.html, report.md, summary.json and figure_data.csv. The new report
// is assembled beside the old one and swapped in, so a reader never sees a
// half-written report.
func Write(r *Report, dir string) error {
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, ".report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	figDir := filepath.Join(tmp, "figures")
	if err := os.Mkdir(figDir, 0o755); err != nil {
		return err
	}
	pg := &page{Report: r, Figures: map[string][]*Figure{}, Tables: map[string]template.HTML{},
		SortScript: template.JS(sortScript), ClassCSS: template.CSS(classCSS())}
	pg.ModelDesc = describeModel(r)
	fd := &figureData{}
	addFig := func(key string) func(*Figure, error) error {
		return func(f *Figure, err error) error {
			if err != nil {
				// A figure that cannot be drawn is reported, not fatal:
				// the numbers are still in the tables and summary.json.
				r.Notes = append(r.Notes, "figure not drawn: "+err.Error())
				return nil
			}
			if f != nil {
				pg.Figures[key] = append(pg.Figures[key], f)
			}
			return nil
		}
	}
	if e := r.Primary; e != nil {
		if err := addFig("headline")(headlineFigure(e, figDir, fd)); err != nil {
			return err
		}
		for _, c := range classesOfEnsemble(e) {
			if t := classSentence(e, c); t != "" {
				pg.Headline = append(pg.Headline, classLine{c, t})
			}
		}
	}
	if r.Training != nil && len(r.Training.Loss) > 0 {
		if err := addFig("training")(trainingFigure(r.Training, figDir, fd)); err != nil {
			return err
		}
	}
	if r.Survey != nil {
		figs, err := spectrumFigures(r.Survey, figDir, fd)
		for _, f := range figs {
			addFig("spectrum")(f, nil)
		}
		addFig("spectrum")(nil, err)
	}
	for _, e := range r.Ensembles {
		for _, c := range classOrder {
			if err := addFig(e.Name)(growthFigure(e, c, figDir, fd)); err != nil {
				return err
			}
		}
		if err := addFig(e.Name)(stationaryFigure(e, figDir, fd)); err != nil {
			return err
		}
		if pg.Tables[e.Name], err = renderTable(directionTable(e)); err != nil {
			return err
		}
	}
	if sc := r.Scan; sc != nil {
		for i, p := range sc.Points {
			pg.ScanRows = append(pg.ScanRows, scanRow{Name: sc.Names[i], Eta: p.Eta, Rate: sig3(p.Rate.Est), RateCI: ciText3(p.Rate.Lo, p.Rate.Hi),
				D: sig3(p.Rate.Est / (2 * p.Eta)), DCI: ciText3(p.Rate.Lo/(2*p.Eta), p.Rate.Hi/(2*p.Eta))})
		}
	}
	if err := schemeFigures(r, figDir, fd, addFig("schemes")); err != nil {
		return err
	}
	if err := surrogateFigures(r, figDir, fd, addFig("surrogates")); err != nil {
		return err
	}
	if err := addFig("scan")(scanFigure(r.Scan, figDir, fd)); err != nil {
		return err
	}
	if err := addFig("msd")(msdFigure(r.MSD, figDir, fd)); err != nil {
		return err
	}

	fd.countPoints(pg.Figures)
	var html bytes.Buffer
	if err := htmlPage.Execute(&html, pg); err != nil {
		return fmt.Errorf("report html: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, "index.html"), html.Bytes(), 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, "report.md"), []byte(markdown(pg)), 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(filepath.Join(tmp, "summary.json"), summary(r, r.Primary)); err != nil {
		return err
	}
	var csvBuf bytes.Buffer
	w := csv.NewWriter(&csvBuf)
	w.Write([]string{"figure", "series", "x", "y", "lo", "hi"})
	w.WriteAll(fd.rows)
	if err := atomicfile.WriteFile(filepath.Join(tmp, "figure_data.csv"), csvBuf.Bytes(), 0o644); err != nil {
		return err
	}
	// Swap: the old report is moved aside, the new one renamed in.
	old := dir + ".old"
	os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}

func describeModel(r *Report) string {
	m := r.Config.Model
	s := m.Kind
	switch m.Kind {
	case "cnn":
		s += fmt.Sprintf(" (width %d, hidden %d)", m.CNN.Width, m.CNN.Hidden)
	case "transformer":
		t := m.Transformer
		s += fmt.Sprintf(" (%d layers, width %d, %d heads, context %d)", t.Layers, t.Width, t.Heads, t.Context)
	case "mlp":
		s += fmt.Sprintf(" (hidden %v, %s)", m.MLP.Hidden, m.MLP.Activation)
	}
	return s + ", " + m.DType
}

type ensembleSummary struct {
	Name      string         `json:"name"`
	Eta       float64        `json:"eta"`
	Batch     int            `json:"batch"`
	Sampling  string         `json:"sampling"`
	Replicas  int            `json:"replicas"`
	Steps     int64          `json:"steps"`
	Params    int            `json:"params"`
	Complete  int            `json:"complete"`
	Diverged  int            `json:"diverged"`
	Running   int            `json:"running"`
	Missing   int            `json:"missing"`
	Classes   map[string]int `json:"classes"`
	Direction []Direction    `json:"directions"`
}

func summarise(e *Ensemble) ensembleSummary {
	m := e.Manifest
	cls := map[string]int{}
	for _, c := range classOrder {
		cls[c] = e.Counts[c]
	}
	return ensembleSummary{Name: e.Name, Eta: m.LR, Batch: m.Batch, Sampling: m.Sampling, Replicas: m.Replicas, Steps: m.Steps, Params: m.Params,
		Complete: e.Complete, Diverged: e.Diverged, Running: e.Running, Missing: e.Missing, Classes: cls, Direction: e.Directions}
}

func summary(r *Report, p *Ensemble) map[string]any {
	s := map[string]any{"run": r.Run, "model": r.Config.Model.Kind, "notes": r.Notes, "level": r.Level}
	if r.Notes == nil {
		s["notes"] = []string{}
	}
	if p != nil {
		ps := summarise(p)
		s["eta"], s["batch"], s["replicas"], s["steps"], s["params"] = ps.Eta, ps.Batch, ps.Replicas, ps.Steps, ps.Params
		s["directions"], s["classes"], s["ensemble"] = ps.Direction, ps.Classes, ps.Name
	}
	var all []ensembleSummary
	for _, e := range r.Ensembles {
		all = append(all, summarise(e))
	}
	s["ensembles"] = all
	if r.Schemes != nil {
		s["schemes"] = r.Schemes
	}
	if r.Surrogates != nil {
		s["surrogates"] = r.Surrogates
	}
	if r.Paper != nil {
		s["paper"] = r.Paper
	}
	if r.Training != nil && len(r.Training.ValLoss) > 0 {
		t := map[string]any{"steps": len(r.Training.Loss), "final_val_loss": r.Training.ValLoss[len(r.Training.ValLoss)-1]}
		if n := len(r.Training.ValAcc); n > 0 {
			t["final_val_acc"] = r.Training.ValAcc[n-1]
		}
		s["training"] = t
	}
	if r.Survey != nil {
		sp := map[string]any{"top": r.Survey.Top, "bottom": r.Survey.Bottom, "hvps": r.Survey.HVPs, "noise_batch": r.Survey.BatchSize,
			"frozen_activation_pattern": r.Survey.FrozenPattern}
		if r.Survey.Trace != nil {
			sp["trace"], sp["trace_se"] = r.Survey.Trace.Mean, r.Survey.Trace.StdErr
		}
		s["spectrum"] = sp
	}
	if m := r.MSD; m != nil {
		var rows []map[string]any
		for i, sm := range m.Summaries {
			rows = append(rows, map[string]any{"source": m.Sources[i], "loglog_slope": num(sm.LogLogSlope), "kind": sm.Kind,
				"plateau": num(sm.Plateau), "sigma_inf2": num(sm.SigmaInf2), "slope_per_step": num(sm.SlopePerStep)})
		}
		s["msd"] = map[string]any{"first_step": m.FirstStep, "steps": m.Steps, "log_every": m.LogEvery, "directions": rows}
	}
	if sc := r.Scan; sc != nil {
		var pts []map[string]any
		for i, p := range sc.Points {
			pts = append(pts, map[string]any{"ensemble": sc.Names[i], "eta": p.Eta, "rate": num(p.Rate.Est), "rate_ci": ci(p.Rate)})
		}
		ls := map[string]any{"basis": sc.Basis, "points": pts, "theory_per_step": 2, "theory_per_tau": 1}
		if sc.Fit != nil {
			ls["per_step_slope"], ls["per_step_slope_ci"] = num(sc.Fit.PerStep.Slope.Est), ci(sc.Fit.PerStep.Slope)
			ls["per_tau_slope"], ls["per_tau_slope_ci"] = num(sc.Fit.PerTau.Slope.Est), ci(sc.Fit.PerTau.Slope)
		}
		s["lr_scan"] = ls
	}
	return s
}

// f formats an optional number for tables.
func f(p *float64) string {
	if p == nil {
		return "-"
	}
	return g4(*p)
}

func g4(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.4g", x)
}

func ciText(c []*float64) string {
	if len(c) != 2 || c[0] == nil || c[1] == nil {
		return "-"
	}
	return "[" + g4(*c[0]) + ", " + g4(*c[1]) + "]"
}

func counts(e *Ensemble) string {
	var parts []string
	for _, c := range classOrder {
		if n := e.Counts[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c))
		}
	}
	return strings.Join(parts, ", ")
}

var funcs = template.FuncMap{"sig3": sig3, "f": f, "ci": ciText, "g": g4, "counts": counts, "pct": func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"last": func(v []float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return v[len(v)-1]
	}}

var htmlPage = template.Must(template.New("report").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sgdyn report: {{.Run}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap;vertical-align:top}
th{background:#f3f3f3}table.sortable th{cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" \25b2"}th[aria-sort=descending]::after{content:" \25bc"}
td.l,th.l{text-align:left}img{max-width:100%}pre{white-space:pre-wrap;background:#f7f7f7;padding:1em;font-size:0.85em}
.scroll{overflow-x:auto}details summary{cursor:pointer}.why{white-space:normal;width:32em;max-width:60vw;color:#333;font-weight:normal;padding:0.3em 0}
.note{background:#fff6d6;padding:0.5em 1em;border-left:4px solid #e0b000}
.headline{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}.headline figure{flex:1 1 640px;margin:0}.headline ul{flex:1 1 280px;margin:0;padding-left:1.2em}.headline li{margin-bottom:0.6em}
figcaption{font-size:0.9em;color:#444}
{{.ClassCSS}}
</style></head><body>
<h1>SGD dynamics report</h1>
<p>Run <code>{{.Run}}</code>: {{.ModelDesc}}{{if .Params}}, {{.Params}} parameters{{end}}; data {{.Config.Data.Kind}}{{with .Config.Data.Path}} <code>{{.}}</code>{{end}};
training lr {{.Config.SGD.LR}}, batch {{.Config.SGD.Batch}}, {{.Config.SGD.Steps}} steps, seed {{.Config.Seed}}.</p>
{{with .Primary}}<h2 id="answer">Answer</h2><p>Ensemble <b>{{.Name}}</b> (&eta; {{sig3 .Manifest.LR}}, batch {{.Manifest.Batch}}, {{.Manifest.Replicas}} replicas, {{.Manifest.Steps}} steps, {{len .Directions}} directions): {{counts .}}.</p>{{end}}
{{if or .Headline (index .Figures "headline")}}<div class="headline">
{{range index .Figures "headline"}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
<ul>{{range .Headline}}<li><b class="{{.Class}}">{{.Class}}</b>: {{.Text}}</li>{{end}}</ul>
</div>{{end}}
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
<h2>Training</h2>
{{with .Training}}<p>Final validation loss {{g (last .ValLoss)}}{{if .ValAcc}}, accuracy {{pct (last .ValAcc)}}{{end}}.</p>{{end}}
{{range index .Figures "training"}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
<h2>Spectrum of the mean Hessian</h2>
{{with .Survey}}<p>At {{.Checkpoint}}: loss {{g .Loss}}, gradient norm {{g .GradNorm}}, {{.HVPs}} Hessian-vector products{{if .FrozenPattern}} (activation pattern of the reference point held fixed){{end}}{{with .Trace}}; trace {{g .Mean}} &plusmn; {{g .StdErr}} (Hutchinson){{end}}. Noise statistics measured at batch {{.BatchSize}}.</p>
<table><tr><th class="l">pair</th><th>eigenvalue</th><th>residual ||Hv - &lambda;v||</th></tr>
{{range $i, $e := .Top}}<tr><td class="l">top {{$i}}</td><td>{{g $e.Value}}</td><td>{{g $e.Residual}}</td></tr>{{end}}
{{range $i, $e := .Bottom}}<tr><td class="l">bottom {{$i}}</td><td>{{g $e.Value}}</td><td>{{g $e.Residual}}</td></tr>{{end}}</table>{{end}}
{{range index .Figures "spectrum"}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
{{range .Ensembles}}{{$e := .}}
<h2 id="ensemble-{{.Name}}">Ensemble {{.Name}}</h2>
<p>eta {{.Manifest.LR}}, batch {{.Manifest.Batch}} ({{.Manifest.Sampling}} replacement), {{.Manifest.Replicas}} replicas ({{.Complete}} complete, {{.Diverged}} diverged, {{.Running}} running, {{.Missing}} not started), {{.Manifest.Steps}} steps logged every {{.Manifest.LogEvery}}, {{.Manifest.Directions}} directions. Classes: {{counts .}}.</p>
{{range index $.Figures .Name}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
<p>Click a column head to sort; click a class for the reason (hover a row for it too). Numbers to 3 significant digits; every digit is in <code>summary.json</code>.</p>
{{index $.Tables .Name}}
{{end}}
{{.Schemes.HTML}}
{{.Paper.HTML}}
{{.Surrogates.HTML}}
{{with .Scan}}<h2 id="lrscan">Learning-rate scan</h2>
<p>{{len .Points}} ensembles that differ only in the learning rate. Each point is the median late slope (variance growth per step) of the {{.Basis}} directions; D = late slope / (2 eta) is the diffusion coefficient per unit tau = eta t, constant in eta by the theory (THEORY.md section 5).</p>
{{$basis := .Basis}}{{with .Fit}}<p>Fit of ln(late slope) against ln eta: slope {{g .PerStep.Slope.Est}} [{{g .PerStep.Slope.Lo}}, {{g .PerStep.Slope.Hi}}] (theory 2); per unit tau, i.e. 2D against eta: {{g .PerTau.Slope.Est}} [{{g .PerTau.Slope.Lo}}, {{g .PerTau.Slope.Hi}}] (theory 1){{if gt .PerStep.DoF 0}}; chi&sup2; {{g .PerStep.Chi2}} on {{.PerStep.DoF}} degrees of freedom{{end}}.</p>{{end}}
<table class="sortable" id="lrscan-points"><thead><tr><th class="l">ensemble</th><th>&eta;</th><th>late slope [CI]</th><th>D [CI]</th></tr></thead><tbody>
{{range $.ScanRows}}<tr><td class="l">{{.Name}}</td><td data-v="{{.Eta}}">{{.Eta}}</td><td>{{.Rate}} {{.RateCI}}</td><td>{{.D}} {{.DCI}}</td></tr>{{end}}</tbody></table>
{{range index $.Figures "scan"}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}{{end}}
{{with .MSD}}<h2>Single-run MSD (training trajectory)</h2>
<p>Steps {{.FirstStep}} to {{.FirstStep}} + {{.Steps}}, logged every {{.LogEvery}}.</p>
{{range index $.Figures "msd"}}<figure><img src="figures/{{.Name}}.png" alt="{{.Title}}" data-points="{{.Points}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
<table><tr><th class="l">direction</th><th>log-log slope</th><th class="l">kind</th><th>plateau</th><th>&sigma;&sup2;<sub>&infin;</sub></th><th>slope per step</th></tr>
{{range $i, $s := .Summaries}}<tr><td class="l">{{index $.MSD.Sources $i}}</td><td>{{g $s.LogLogSlope}}</td><td class="l">{{$s.Kind}}</td><td>{{g $s.Plateau}}</td><td>{{g $s.SigmaInf2}}</td><td>{{g $s.SlopePerStep}}</td></tr>{{end}}</table>{{end}}
<h2>How directions are classified</h2><pre>{{.Rule}}</pre><pre>{{.TailRule}}</pre>
<p>Predictions use &lambda;, c and s&sup2; measured by the probe at the reference point (THEORY.md section 3), rescaled from the probe's batch size to the ensemble's as 1/b, and start from zero variance. Discrete: &sigma;&sup2;(t) = &sigma;&sup2;<sub>&infin;</sub>(1 - a<sup>t</sup>), a = (1 - &eta;&lambda;)&sup2; + &eta;&sup2;s&sup2;. Langevin: the exact solution of the standard Fokker-Planck equation, &eta;c(1 - e<sup>-2&lambda;&eta;t</sup>)/(2&lambda;).</p>
<script>{{.SortScript}}</script>
</body></html>
`))

func markdown(pg *page) string {
	r := pg.Report
	var b strings.Builder
	esc := func(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }
	fmt.Fprintf(&b, "# SGD dynamics report\n\nRun `%s`: %s", r.Run, esc(pg.ModelDesc))
	if r.Params > 0 {
		fmt.Fprintf(&b, ", %d parameters", r.Params)
	}
	fmt.Fprintf(&b, "; training lr %g, batch %d, %d steps.\n\n", r.Config.SGD.LR, r.Config.SGD.Batch, r.Config.SGD.Steps)
	figs := func(key string) {
		for _, f := range pg.Figures[key] {
			fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n*%s*\n\n", f.Title, f.Name, f.Caption)
		}
	}
	if e := r.Primary; e != nil {
		fmt.Fprintf(&b, "## Answer\n\nEnsemble **%s** (eta %s, batch %d, %d replicas, %d steps): %s.\n\n", esc(e.Name), sig3(e.Manifest.LR), e.Manifest.Batch,
			e.Manifest.Replicas, e.Manifest.Steps, counts(e))
		figs("headline")
		for _, l := range pg.Headline {
			fmt.Fprintf(&b, "- **%s**: %s\n", l.Class, esc(l.Text))
		}
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "> %s\n\n", esc(n))
	}
	b.WriteString("## Training\n\n")
	if t := r.Training; t != nil && len(t.ValLoss) > 0 {
		fmt.Fprintf(&b, "Final validation loss %s", g4(t.ValLoss[len(t.ValLoss)-1]))
		if len(t.ValAcc) > 0 {
			fmt.Fprintf(&b, ", accuracy %.1f%%", 100*t.ValAcc[len(t.ValAcc)-1])
		}
		b.WriteString(".\n\n")
	}
	figs("training")
	if s := r.Survey; s != nil {
		fmt.Fprintf(&b, "## Spectrum\n\nLoss %s, gradient norm %s, %d HVPs", g4(s.Loss), g4(s.GradNorm), s.HVPs)
		if s.FrozenPattern {
			b.WriteString(" (activation pattern of the reference point held fixed)")
		}
		b.WriteString(".")
		if s.Trace != nil {
			fmt.Fprintf(&b, " Trace %s ± %s.", g4(s.Trace.Mean), g4(s.Trace.StdErr))
		}
		b.WriteString("\n\n| pair | eigenvalue | residual |\n|---|---:|---:|\n")
		for i, e := range s.Top {
			fmt.Fprintf(&b, "| top %d | %s | %s |\n", i, g4(e.Value), g4(e.Residual))
		}
		for i, e := range s.Bottom {
			fmt.Fprintf(&b, "| bottom %d | %s | %s |\n", i, g4(e.Value), g4(e.Residual))
		}
		b.WriteString("\n")
		figs("spectrum")
	}
	for _, e := range r.Ensembles {
		m := e.Manifest
		fmt.Fprintf(&b, "## Ensemble %s\n\neta %g, batch %d, %d replicas (%d complete, %d diverged), %d steps, %d directions. Classes: %s.\n\n",
			esc(e.Name), m.LR, m.Batch, m.Replicas, e.Complete, e.Diverged, m.Steps, m.Directions, counts(e))
		figs(e.Name)
		t := directionTable(e)
		b.WriteString("| " + strings.Join(t.Head, " | ") + " |\n|")
		for i := range t.Head {
			if i == 1 || i == 5 {
				b.WriteString("---|")
			} else {
				b.WriteString("---:|")
			}
		}
		b.WriteString("\n")
		for _, row := range t.Rows {
			b.WriteString("|")
			for _, c := range row.Cells {
				b.WriteString(" " + esc(c.Text) + " |")
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(r.Schemes.Markdown())
	b.WriteString(r.Paper.Markdown())
	b.WriteString(r.Surrogates.Markdown())
	if sc := r.Scan; sc != nil && len(sc.Points) > 0 {
		b.WriteString("## Learning-rate scan\n\n")
		if sc.Fit != nil {
			fmt.Fprintf(&b, "Median late slope of the %s directions vs eta, per step: log-log slope %s [%s, %s] (theory 2); per unit tau (2D): %s [%s, %s] (theory 1).\n\n",
				sc.Basis, sig3(sc.Fit.PerStep.Slope.Est), sig3(sc.Fit.PerStep.Slope.Lo), sig3(sc.Fit.PerStep.Slope.Hi),
				sig3(sc.Fit.PerTau.Slope.Est), sig3(sc.Fit.PerTau.Slope.Lo), sig3(sc.Fit.PerTau.Slope.Hi))
		}
		b.WriteString("| ensemble | eta | late slope [CI] | D [CI] |\n|---|---:|---:|---:|\n")
		for _, row := range pg.ScanRows {
			fmt.Fprintf(&b, "| %s | %g | %s %s | %s %s |\n", esc(row.Name), row.Eta, row.Rate, row.RateCI, row.D, row.DCI)
		}
		b.WriteString("\n")
		figs("scan")
	}
	if m := r.MSD; m != nil {
		fmt.Fprintf(&b, "## Single-run MSD\n\nSteps %d to %d, logged every %d.\n\n", m.FirstStep, m.FirstStep+m.Steps, m.LogEvery)
		figs("msd")
		b.WriteString("| direction | log-log slope | kind | plateau | sigma_inf^2 | slope per step |\n|---|---:|---|---:|---:|---:|\n")
		for i, s := range m.Summaries {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", esc(m.Sources[i]), g4(s.LogLogSlope), s.Kind, g4(s.Plateau), g4(s.SigmaInf2), g4(s.SlopePerStep))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "## How directions are classified\n\n```\n%s\n```\n", r.Rule)
	return b.String()
}

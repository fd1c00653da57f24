package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how a loop over steps is going: a bar with an ETA on a
// terminal, a plain line every few seconds otherwise (logs, CI, nohup).
type progress struct {
	bar      *progressbar.ProgressBar
	w        io.Writer
	desc     string
	start    int64
	total    int64
	began    time.Time
	lastLine time.Time
	every    time.Duration
}

func newProgress(w io.Writer, desc string, start, total int64) *progress {
	p := &progress{w: w, desc: desc, start: start, total: total, began: time.Now(), every: 10 * time.Second}
	p.lastLine = p.began
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Set64(start)
	}
	return p
}

// update reports that step (1-based count of finished steps) is done.
func (p *progress) update(step int64, status string) {
	switch {
	case p.w == nil:
	case p.bar != nil:
		p.bar.Describe(p.desc + " " + status)
		_ = p.bar.Set64(step)
	case time.Since(p.lastLine) >= p.every || step == p.total:
		p.lastLine = time.Now()
		elapsed := time.Since(p.began)
		done := step - p.start
		line := fmt.Sprintf("%s %d/%d (%.0f%%) %s", p.desc, step, p.total, 100*float64(step)/float64(p.total), status)
		if done > 0 {
			rate := float64(done) / elapsed.Seconds()
			eta := time.Duration(float64(p.total-step) / rate * float64(time.Second))
			line += fmt.Sprintf(" %.1f steps/s ETA %s", rate, eta.Round(time.Second))
		}
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

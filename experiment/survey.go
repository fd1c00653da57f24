package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"gonum.org/v1/gonum/floats"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// Files of a run's hessian/ directory, which the survey writes.
const (
	HessianDir = "hessian"
	// SpectrumFile is the survey (probe.Survey as JSON) with the run,
	// checkpoint and step it was measured at; written last, it marks a
	// complete survey.
	SpectrumFile = "spectrum.json"
	// DirectionsNPY is the probed unit directions, (k, P) float64;
	// DirectionsJSON describes each (probe.Direction).
	DirectionsNPY  = "directions.npy"
	DirectionsJSON = "directions.json"
	// NoiseNPZ holds the inputs of the subspace recursion: hv (k, k) =
	// V^T H V, cov (k, k) = Cov_B(V^T g_B) and, per noise batch, grad
	// (M, k) = V^T g_B and curv (M, k, k) = V^T H_B V.
	NoiseNPZ = "noise.npz"
	// Dense survey: every eigenvalue (ascending), c along its
	// eigenvector, and its class code (probe.ClassCode: 0 null,
	// 1 window-flat, 2 confined candidate, 3 negative).
	EigenvaluesNPY = "eigenvalues.npy"
	EigenCNPY      = "eigen_c.npy"
	EigenClassNPY  = "eigen_class.npy"
)

// surveyFile is spectrum.json: the survey plus where it was measured.
type surveyFile struct {
	*probe.Survey
	Run        string `json:"run"`
	Checkpoint string `json:"checkpoint"`
	Step       int64  `json:"step"`
}

// WriteSurvey writes survey s of the reference point ref to dir (a run's
// hessian/ directory), each file atomically and spectrum.json last.
func WriteSurvey(dir string, s *probe.Survey, ref *train.Reference) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flat := make([]float64, 0, len(s.Vectors)*len(ref.W))
	for _, v := range s.Vectors {
		flat = append(flat, v...)
	}
	// Directions first, the spectrum last: spectrum.json marks a complete survey.
	if err := npy.WriteNPY(filepath.Join(dir, DirectionsNPY), []int{len(s.Vectors), len(ref.W)}, flat); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, DirectionsJSON), s.Directions); err != nil {
		return err
	}
	if err := writeNoise(filepath.Join(dir, NoiseNPZ), s); err != nil {
		return err
	}
	if d := s.Dense; d != nil {
		codes := make([]float64, len(d.Classes))
		for i, c := range d.Classes {
			codes[i] = probe.ClassCode(c)
		}
		for _, a := range []struct {
			name string
			v    []float64
		}{{EigenvaluesNPY, d.Values}, {EigenCNPY, d.C}, {EigenClassNPY, codes}} {
			if err := npy.WriteNPY(filepath.Join(dir, a.name), []int{len(a.v)}, a.v); err != nil {
				return err
			}
		}
	}
	return atomicfile.WriteJSON(filepath.Join(dir, SpectrumFile), surveyFile{Survey: s, Run: ref.Dir, Checkpoint: ref.Checkpoint, Step: ref.Step})
}

// writeNoise saves the inputs of the subspace recursion (see NoiseNPZ).
func writeNoise(path string, s *probe.Survey) error {
	k := len(s.Vectors)
	hv := make([]float64, 0, k*k)
	for _, row := range s.HV {
		hv = append(hv, row...)
	}
	cov := make([]float64, 0, k*k)
	for _, row := range s.CV {
		cov = append(cov, row...)
	}
	arrays := []npy.Array{{Name: "hv", Shape: []int{k, k}, F64: hv}, {Name: "cov", Shape: []int{k, k}, F64: cov}}
	if nz := s.Noise; nz != nil {
		g := make([]float64, 0, nz.Batches*k)
		c := make([]float64, 0, nz.Batches*k*k)
		for m := range nz.Batches {
			g = append(g, nz.Grad[m]...)
			c = append(c, nz.Curv[m]...)
		}
		arrays = append(arrays, npy.Array{Name: "grad", Shape: []int{nz.Batches, k}, F64: g}, npy.Array{Name: "curv", Shape: []int{nz.Batches, k, k}, F64: c})
	}
	return npy.WriteNPZ(path, arrays)
}

// surveyCurrent reports whether dir already holds a survey of this
// reference checkpoint with these settings.
func surveyCurrent(dir string, ref *train.Reference, o probe.SurveyOptions) bool {
	b, err := os.ReadFile(filepath.Join(dir, HessianDir, SpectrumFile))
	if err != nil {
		return false
	}
	var old struct {
		Checkpoint string          `json:"checkpoint"`
		Settings   json.RawMessage `json:"settings"`
	}
	if json.Unmarshal(b, &old) != nil || old.Checkpoint != ref.Checkpoint {
		return false
	}
	// Compare after the same defaulting RunSurvey applies, and in the same
	// (compact) form: the file is indented.
	want, _ := json.Marshal(o.WithDefaults())
	var got bytes.Buffer
	return json.Compact(&got, old.Settings) == nil && bytes.Equal(got.Bytes(), want)
}

// PrintSurvey prints the survey's headline: the spectrum, the classes of
// the probed directions, what the flat search spent, and the warnings.
func PrintSurvey(w io.Writer, s *probe.Survey) {
	if len(s.Top) > 0 {
		fmt.Fprintf(w, "lambda_max %.6g (residual %.2g), ", s.Top[0].Value, s.Top[0].Residual)
	}
	fmt.Fprintf(w, "%d HVPs in all (%d Lanczos), %.1fs\n", s.HVPs, s.LanczosHVPs, s.Seconds)
	if d := s.Dense; d != nil {
		fmt.Fprintf(w, "dense: %d eigenpairs, asymmetry %.2g (%.2g lambda_max); window eta %g x T %d, flat if |lambda| < %.3g: %d null, %d window-flat, %d confined candidates, %d negative; window-flat share of the noise %.1f%%\n",
			d.Params, d.Asymmetry, d.RelAsymmetry, d.Window.LR, d.Window.Steps, d.Window.FlatBound(),
			d.Counts[probe.ClassNull], d.Counts[probe.ClassWindowFlat], d.Counts[probe.ClassConfined], d.Counts[probe.ClassNegative], 100*d.FlatNoiseShare)
	}
	if f := s.Flat; f != nil {
		fmt.Fprintf(w, "flat search: %d directions certified to delta %.3g (target %.3g) with %d of %d products\n", f.K, f.Delta, f.Target, f.HVPs, f.Budget)
	}
	if s.NoiseHeldOut {
		// Show what measuring on the evaluation set would have said: the
		// directions were chosen there.
		lo, hi, hlo, hhi, slo, shi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, d := range s.Directions {
			if !strings.HasPrefix(d.Source, "flat-") || d.CEval <= 0 {
				continue
			}
			r, sp := d.C/d.CEval, math.Sqrt(max(d.HNorm2Split, 0))
			lo, hi = min(lo, r), max(hi, r)
			hlo, hhi = min(hlo, d.HNormHeldOut), max(hhi, d.HNormHeldOut)
			slo, shi = min(slo, sp), max(shi, sp)
		}
		// One write: a progress bar may be drawing on w between writes.
		line := fmt.Sprintf("noise measured on %d held-out training examples, disjoint from the evaluation set", s.EvalExamples)
		if lo <= hi {
			line += fmt.Sprintf("; flat directions: c there %.3g-%.3g x the evaluation set's, ||H u|| there %.3g-%.3g (split-half estimate %.3g-%.3g)", lo, hi, hlo, hhi, slo, shi)
		}
		fmt.Fprintln(w, line)
	}
	classes := map[string]int{}
	for _, d := range s.Directions {
		classes[d.Class]++
	}
	fmt.Fprintf(w, "%d probed directions: %d null, %d window-flat, %d confined candidates, %d negative\n", len(s.Directions),
		classes[probe.ClassNull], classes[probe.ClassWindowFlat], classes[probe.ClassConfined], classes[probe.ClassNegative])
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// SurveyProgress is a progress function for probe.RunSurvey writing to w:
// one progress bar per survey stage on a terminal, and a plain line per
// stage (and every ten seconds) otherwise. A nil w gives nil (no progress).
func SurveyProgress(w io.Writer) func(stage string, done, total int) {
	if w == nil {
		return nil
	}
	var bar *progressbar.ProgressBar
	last, lastLine := "", time.Now()
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	return func(stage string, done, total int) {
		if !tty {
			if stage != last || time.Since(lastLine) > 10*time.Second {
				fmt.Fprintf(w, "  %s: %d\n", stage, done)
				last, lastLine = stage, time.Now()
			}
			return
		}
		if stage != last {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
			bar = progressbar.NewOptions(max(total, -1), progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(stage),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
			last = stage
		}
		_ = bar.Set(done)
	}
}

// SurveyError is err, or, when the survey stopped because ctx was
// cancelled, train.ErrInterrupted: a survey keeps no partial state, and
// the next run starts it again.
func SurveyError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: survey stopped; it starts again from the beginning next time", train.ErrInterrupted)
	}
	return err
}

// ReadDirections loads a (k, P) direction file (.npy, float64 or float32;
// a 1-D file is one direction) and checks P (params 0: any).
func ReadDirections(path string, params int) ([][]float64, error) {
	shape, raw, err := npy.ReadNPY(path)
	if err != nil {
		return nil, err
	}
	var vals []float64
	switch d := raw.(type) {
	case []float64:
		vals = d
	case []float32:
		vals = make([]float64, len(d))
		for i, x := range d {
			vals[i] = float64(x)
		}
	}
	if len(shape) == 1 {
		shape = []int{1, shape[0]}
	}
	if len(shape) != 2 || (params > 0 && shape[1] != params) || shape[0] < 1 || shape[1] < 1 {
		return nil, fmt.Errorf("directions %s: shape %v, want (k, %d) for this model", path, shape, params)
	}
	p := shape[1]
	out := make([][]float64, shape[0])
	for i := range out {
		out[i] = vals[i*p : (i+1)*p]
	}
	return out, nil
}

// LoadDirections reads the direction set an ensemble projects on: file
// (orthonormal rows, labelled user-0, user-1, ...) if it is not empty, else
// the run's survey, with each direction's source label.
func LoadDirections(runDir, file string, params int) ([][]float64, []string, error) {
	if file != "" {
		dirs, err := ReadDirections(file, params)
		if err != nil {
			return nil, nil, err
		}
		if err := CheckOrthonormal(file, dirs, true); err != nil {
			return nil, nil, err
		}
		src := make([]string, len(dirs))
		for i := range src {
			src[i] = fmt.Sprintf("user-%d", i)
		}
		return dirs, src, nil
	}
	path := filepath.Join(runDir, HessianDir, DirectionsNPY)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no direction set: %s is missing (run 'sgdyn hessian --run %s' first, or pass --directions)", path, runDir)
	}
	dirs, err := ReadDirections(path, params)
	if err != nil {
		return nil, nil, err
	}
	// A survey's directions are unit vectors, but its user and flat
	// directions need not be orthogonal to its eigenvectors.
	if err := CheckOrthonormal(path, dirs, false); err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(runDir, HessianDir, DirectionsJSON))
	if err != nil {
		return nil, nil, err
	}
	var meta []probe.Direction
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(runDir, HessianDir, DirectionsJSON), err)
	}
	if len(meta) != len(dirs) {
		return nil, nil, fmt.Errorf("%s describes %d directions, %s holds %d", DirectionsJSON, len(meta), DirectionsNPY, len(dirs))
	}
	src := make([]string, len(meta))
	for i, d := range meta {
		src[i] = d.Source
	}
	return dirs, src, nil
}

// directionTol is how far a direction file's rows may be from unit norm
// and from orthogonal to one another.
const directionTol = 1e-6

// CheckOrthonormal refuses direction rows (read from path, which errors
// name) that are not unit vectors and, if orthogonal, rows that are not
// orthogonal to one another: a projection on a direction of norm 2 is
// twice as large, and would be read as twice the displacement.
func CheckOrthonormal(path string, dirs [][]float64, orthogonal bool) error {
	for i, d := range dirs {
		if n := floats.Norm(d, 2); !(math.Abs(n-1) <= directionTol) {
			return fmt.Errorf("directions %s: row %d has norm %.9g; want unit rows (within %g)", path, i, n, directionTol)
		}
	}
	if !orthogonal {
		return nil
	}
	for i := range dirs {
		for j := i + 1; j < len(dirs); j++ {
			if ip := floats.Dot(dirs[i], dirs[j]); !(math.Abs(ip) <= directionTol) {
				return fmt.Errorf("directions %s: rows %d and %d have inner product %.9g; want orthonormal rows (within %g)", path, i, j, ip, directionTol)
			}
		}
	}
	return nil
}

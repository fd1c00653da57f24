// Command bench times sgdyn's training step against the same model in
// PyTorch, side by side on the same machine.
//
// For each model it starts two long-lived processes, a Go child (this
// program with -child) and torch_step.py, and alternates between them, A B
// A B, each turn running a fixed number of SGD steps; medians over all
// steps are reported, so load from other users of the machine hits both
// sides alike. It then measures the cost of a Hessian-vector product
// relative to a gradient, and ensemble throughput with 1 and 2 concurrent
// replicas. See BENCHMARKS.md at the repository root for results.
//
// Usage (from the repository root):
//
//	go run ./scripts/bench [-rounds 12] [-models cnn,transformer,...] [-plain] [-ops]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	child := flag.String("child", "", "internal: serve this model on stdin/stdout")
	impl := flag.String("impl", "fused", "internal: with -child, the models.Config.Impl to serve (fused, plain or ops)")
	list := flag.String("models", "cnn,transformer,mlp,tiny-mlp,tiny-transformer", "comma-separated benchmarks")
	rounds := flag.Int("rounds", 12, "A/B rounds per model")
	turn := flag.Duration("turn", 400*time.Millisecond, "target duration of one side's turn")
	pause := flag.Duration("pause", 200*time.Millisecond, "idle time between turns, so one side's spinning threads do not slow the other")
	python := flag.String("python", "/usr/bin/python3", "Python with Debian's python3-torch")
	torchLib := flag.String("torch-lib", "", "directory prepended to PyTorch's LD_LIBRARY_PATH, e.g. an unpacked libopenblas0-pthread to replace the reference BLAS")
	plain := flag.Bool("plain", false, "also time the plain Gorgonia graph (slow)")
	ops := flag.Bool("ops", false, "also time the Gorgonia graph with custom ops (cnn and transformer)")
	hvp := flag.Bool("hvp", true, "measure HVP cost / gradient cost (CNN, float64, batch 512)")
	replicas := flag.Bool("replicas", true, "measure CNN and transformer replica-steps per second for 1 and 2 replicas")
	flag.Parse()
	log.SetFlags(0)
	if *child != "" {
		if err := serveChild(*child, *impl, os.Stdin, os.Stdout); err != nil {
			log.Fatalf("bench child %s: %v", *child, err)
		}
		return
	}
	script, err := torchScript()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("# sgdyn bench: %s, GOMAXPROCS %d, %d rounds, %v turns, torch-lib %q, load average %s\n\n",
		time.Now().Format(time.DateTime), runtime.GOMAXPROCS(0), *rounds, *turn, *torchLib, loadAvg())
	var rows []row
	for _, name := range strings.Split(*list, ",") {
		bm, err := findModel(name)
		if err != nil {
			log.Fatal(err)
		}
		sides := []side{
			{label: "fused", cmd: goChild(name, "fused")},
			{label: "torch", cmd: torchChild(*python, script, name, *torchLib)},
		}
		if *plain {
			sides = append(sides, side{label: "plain", cmd: goChild(name, "plain")})
		}
		if *ops && (name == "cnn" || name == "transformer") {
			sides = append(sides, side{label: "ops", cmd: goChild(name, "ops")})
		}
		if err := compare(sides, *rounds, *turn, *pause); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		rows = append(rows, makeRow(bm, sides))
		log.Printf("%s done", name)
	}
	printTable(os.Stdout, rows)
	fmt.Printf("load average at the end: %s\n\n", loadAvg())
	if *hvp {
		if err := hvpRatio(os.Stdout, *rounds); err != nil {
			log.Fatal(err)
		}
	}
	if *replicas {
		if err := replicaThroughput(os.Stdout, *rounds/2+1); err != nil {
			log.Fatal(err)
		}
	}
}

// torchScript locates torch_step.py next to this program's source.
func torchScript() (string, error) {
	for _, p := range []string{"scripts/bench/torch_step.py", "torch_step.py"} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("torch_step.py not found: run from the repository root")
}

func goChild(name, impl string) *exec.Cmd {
	return exec.Command(os.Args[0], "-child", name, "-impl", impl)
}

func torchChild(python, script, name, lib string) *exec.Cmd {
	c := exec.Command(python, script, name)
	// One BLAS thread: PyTorch's own 2 OpenMP threads already use both
	// cores, and nested pools oversubscribe them (with the system's
	// OpenBLAS and no limit, the transformer's step had an IQR of 113%).
	c.Env = append(os.Environ(), "MALLOC_MMAP_THRESHOLD_=4294967296", "MALLOC_TRIM_THRESHOLD_=68719476736", "OPENBLAS_NUM_THREADS=1")
	if lib != "" {
		c.Env = append(c.Env, "LD_LIBRARY_PATH="+lib+":"+os.Getenv("LD_LIBRARY_PATH"))
	}
	return c
}

// side is one implementation of a benchmark, served by a child process.
type side struct {
	label string
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	times []float64
	stats childReply
}

func (s *side) start() error {
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = os.Stderr
	s.out = bufio.NewScanner(out)
	s.out.Buffer(nil, 1<<24)
	return s.cmd.Start()
}

func (s *side) ask(cmd string) (childReply, error) {
	var r childReply
	if _, err := fmt.Fprintln(s.in, cmd); err != nil {
		return r, fmt.Errorf("%s: %w", s.label, err)
	}
	if !s.out.Scan() {
		return r, fmt.Errorf("%s: child exited (%v)", s.label, s.out.Err())
	}
	if err := json.Unmarshal(s.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("%s: bad reply %q: %w", s.label, s.out.Text(), err)
	}
	return r, nil
}

// compare warms every side up, picks a per-side step count that fills a
// turn, then runs the rounds, each side once per round in turn.
func compare(sides []side, rounds int, turn, pause time.Duration) error {
	ks := make([]int, len(sides))
	for i := range sides {
		s := &sides[i]
		if err := s.start(); err != nil {
			return err
		}
		defer s.cmd.Wait()
		defer fmt.Fprintln(s.in, "quit")
		// Warm up (PyTorch's first steps are several times slower) and
		// size the turn from the later warm-up steps.
		r, err := s.ask("run 8")
		if err != nil {
			return err
		}
		per := median(r.TimesMS[4:])
		ks[i] = max(1, min(2000, int(float64(turn.Milliseconds())/per)))
		if _, err := s.ask("reset"); err != nil {
			return err
		}
	}
	for range rounds {
		for i := range sides {
			time.Sleep(pause)
			r, err := sides[i].ask(fmt.Sprintf("run %d", ks[i]))
			if err != nil {
				return err
			}
			sides[i].times = append(sides[i].times, r.TimesMS...)
		}
	}
	for i := range sides {
		r, err := sides[i].ask("stats")
		if err != nil {
			return err
		}
		sides[i].stats = r
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// quantile returns the q-quantile of v (nearest rank).
func quantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// loadAvg returns the 1, 5 and 15 minute load averages, to record how busy
// the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

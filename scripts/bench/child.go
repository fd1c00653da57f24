package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// childReply is what a benchmark child prints for each command.
type childReply struct {
	TimesMS      []float64 `json:"times_ms,omitempty"`
	AllocPerStep float64   `json:"alloc_per_step,omitempty"`
	RSSMB        float64   `json:"rss_mb,omitempty"`
}

// serveChild runs one model in this process and answers the driver's
// commands, the same protocol as torch_step.py: "run K", "stats", "quit".
// Allocation is counted over the timed steps only, after the first call
// (warm-up) has sized every buffer.
func serveChild(name, impl string, in io.Reader, out io.Writer) error {
	bm, err := findModel(name)
	if err != nil {
		return err
	}
	s, err := newStepper(bm, impl, "float32", bm.n, 1)
	if err != nil {
		return err
	}
	var steps int
	var alloc uint64
	var ms runtime.MemStats
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "run":
			k, err := strconv.Atoi(f[1])
			if err != nil {
				return fmt.Errorf("bad run count %q", f[1])
			}
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			times := make([]float64, k)
			for i := range times {
				t0 := time.Now()
				if err := s.step(); err != nil {
					return err
				}
				times[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
			}
			runtime.ReadMemStats(&ms)
			alloc += ms.TotalAlloc - before
			steps += k
			if err := enc.Encode(childReply{TimesMS: times}); err != nil {
				return err
			}
		case "stats":
			r := childReply{RSSMB: peakRSSMB()}
			if steps > 0 {
				r.AllocPerStep = float64(alloc) / float64(steps)
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		case "reset":
			alloc, steps = 0, 0
			enc.Encode(childReply{})
		case "quit":
			return nil
		}
	}
	return sc.Err()
}

// peakRSSMB reads the process's peak resident set size (VmHWM) in MiB.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

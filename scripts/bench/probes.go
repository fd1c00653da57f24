package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sgdyn/sgdyn/probe"
)

// hvpRatio times a Hessian-vector product (probe.Hessian: two gradients by
// central differences) against one gradient, for the CNN in float64 on a
// 512-example batch, alternating the two, and prints the ratio of medians.
func hvpRatio(w io.Writer, rounds int) error {
	bm, _ := findModel("cnn")
	s, err := newStepper(bm, "fused", "float64", 512, 3)
	if err != nil {
		return err
	}
	h, err := probe.NewHessian(s.m, s.b, s.w, 0)
	if err != nil {
		return err
	}
	v := make([]float64, len(s.w))
	for i := range v {
		v[i] = float64(i%7) - 3
	}
	hv := make([]float64, len(s.w))
	var tg, th []float64
	for range rounds {
		t0 := time.Now()
		if _, err := s.m.Grad(s.b, s.g); err != nil {
			return err
		}
		tg = append(tg, float64(time.Since(t0).Microseconds())/1e3)
		t0 = time.Now()
		if err := h.Apply(hv, v); err != nil {
			return err
		}
		th = append(th, float64(time.Since(t0).Microseconds())/1e3)
	}
	fmt.Fprintf(w, "HVP (CNN, float64, batch 512): gradient %.1f ms, HVP %.1f ms, HVP/gradient %.3f (medians of %d)\n\n",
		median(tg), median(th), median(th)/median(tg), rounds)
	return nil
}

// replicaThroughput runs, for the CNN and the transformer, 1 and then 2
// independent replicas (float32, the benchmark batch), each in its own
// goroutine, for a fixed time, alternately, and prints the median total
// replica-steps per second.
func replicaThroughput(w io.Writer, rounds int) error {
	for _, name := range []string{"cnn", "transformer"} {
		if err := replicaRates(w, name, rounds); err != nil {
			return fmt.Errorf("%s replicas: %w", name, err)
		}
	}
	return nil
}

func replicaRates(w io.Writer, name string, rounds int) error {
	bm, err := findModel(name)
	if err != nil {
		return err
	}
	var reps []*stepper
	for i := range 2 {
		s, err := newStepper(bm, "fused", "float32", bm.n, uint64(10+i))
		if err != nil {
			return err
		}
		if err := s.step(); err != nil { // warm-up
			return err
		}
		reps = append(reps, s)
	}
	rate := map[int][]float64{}
	const span = 2 * time.Second
	for range rounds {
		for _, k := range []int{1, 2} {
			var steps atomic.Int64
			var wg sync.WaitGroup
			var firstErr error
			var once sync.Once
			t0 := time.Now()
			for _, s := range reps[:k] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Since(t0) < span {
						if err := s.step(); err != nil {
							once.Do(func() { firstErr = err })
							return
						}
						steps.Add(1)
					}
				}()
			}
			wg.Wait()
			if firstErr != nil {
				return firstErr
			}
			rate[k] = append(rate[k], float64(steps.Load())/time.Since(t0).Seconds())
		}
	}
	fmt.Fprintf(w, "%s replicas (float32, batch %d): 1 replica %.1f replica-steps/s, 2 concurrent replicas %.1f replica-steps/s (medians of %d)\n",
		name, bm.n, median(rate[1]), median(rate[2]), rounds)
	return nil
}

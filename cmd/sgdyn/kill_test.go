package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killRepeatedly runs args in dir, SIGKILLing it after random delays until
// a run completes on its own. It returns how many runs were killed mid-way.
func killRepeatedly(t *testing.T, dir string, rng *rand.Rand, maxDelay time.Duration, args ...string) int {
	t.Helper()
	kills := 0
	for attempt := 0; attempt < 100; attempt++ {
		cmd := exec.Command(sgdynBinary(t), args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		delay := time.Duration(rng.Int64N(int64(maxDelay)))
		if kills >= 12 {
			delay = time.Hour // enough kills: let it finish
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stderr.String())
			}
			return kills
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			if err := <-done; err == nil {
				return kills // it finished just before the kill
			}
			kills++
		}
	}
	t.Fatal("never completed")
	return kills
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKillAndResume kills `sgdyn train` and `sgdyn ensemble` with SIGKILL at
// random points, resumes them, and requires the final parameters, metrics
// and projections to equal an uninterrupted run's byte for byte.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes for about a minute")
	}
	work, _ := tinyRun(t)
	train := []string{"train", "--config", "tiny.yaml", "--steps", "1500", "--checkpoint-every", "7"}
	mustRun(t, work, append(train, "--run", "whole")...)
	start := time.Now()
	mustRun(t, work, append(train, "--run", "timing")...)
	trainTime := time.Since(start)

	rng := rand.New(rand.NewPCG(2026, 11))
	kills := killRepeatedly(t, work, rng, trainTime/12, append(train, "--run", "killed")...)
	if kills < 10 {
		t.Errorf("only %d kills landed mid-run, want >= 10", kills)
	}
	for _, f := range []string{"metrics.jsonl", "checkpoints/step-000001500.npz"} {
		if !bytes.Equal(readFile(t, filepath.Join(work, "whole", f)), readFile(t, filepath.Join(work, "killed", f))) {
			t.Errorf("train: %s differs after %d kills", f, kills)
		}
	}
	t.Logf("train: %d SIGKILLs at random points over a %.2fs run", kills, trainTime.Seconds())

	mustRun(t, work, "hessian", "--run", "whole", "--eval-examples", "32", "--top", "2", "--bottom", "1", "--bulk", "2",
		"--noise-batches", "3", "--density-starts", "-1", "--trace-samples", "-1")
	ens := []string{"ensemble", "--run", "whole", "--replicas", "6", "--steps", "400", "--checkpoint-every", "5", "--workers", "2"}
	start = time.Now()
	mustRun(t, work, append(ens, "--name", "reference")...)
	ensTime := time.Since(start)
	kills = killRepeatedly(t, work, rng, ensTime/12, append(ens, "--name", "killed")...)
	if kills < 10 {
		t.Errorf("only %d kills landed mid-ensemble, want >= 10", kills)
	}
	for _, f := range []string{"projections.npy", "loss.npy", "distance.npy"} {
		a := readFile(t, filepath.Join(work, "whole", "ensemble", "reference", f))
		b := readFile(t, filepath.Join(work, "whole", "ensemble", "killed", f))
		if !bytes.Equal(a, b) {
			t.Errorf("ensemble: %s differs after %d kills", f, kills)
		}
	}
	t.Logf("ensemble: %d SIGKILLs at random points over a %.2fs run", kills, ensTime.Seconds())
}

// TestTerminateCheckpoints sends SIGTERM mid-run: the run must stop after
// its current step with status 130 and a checkpoint, and a rerun must end
// identical to an uninterrupted run.
func TestTerminateCheckpoints(t *testing.T) {
	work, _ := tinyRun(t)
	train := []string{"train", "--config", "tiny.yaml", "--steps", "40000", "--checkpoint-every", "100000"}
	mustRun(t, work, append(train, "--run", "whole")...)
	cmd := exec.Command(sgdynBinary(t), append(train, "--run", "stopped")...)
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until training has started (metrics exist), then ask it to stop.
	for i := 0; i < 400; i++ {
		if _, err := os.Stat(filepath.Join(work, "stopped", "metrics.jsonl")); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("after SIGTERM: %v (want exit status 130)\n%s", err, stderr.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("checkpoint written")) {
		t.Errorf("stderr does not say a checkpoint was written: %q", stderr.String())
	}
	mustRun(t, work, append(train, "--run", "stopped")...)
	if !bytes.Equal(readFile(t, filepath.Join(work, "whole", "metrics.jsonl")), readFile(t, filepath.Join(work, "stopped", "metrics.jsonl"))) {
		t.Error("metrics after SIGTERM and resume differ from an uninterrupted run")
	}
}

// TestTerminateSurvey checks that a signal stops a long survey promptly,
// with exit status 130, and writes no partial results.
func TestTerminateSurvey(t *testing.T) {
	work, _ := tinyRun(t)
	cmd := exec.Command(sgdynBinary(t), "hessian", "--run", "run", "--eval-examples", "64", "--top", "3", "--bottom", "1",
		"--bulk", "2", "--noise-batches", "100000", "--density-starts", "2", "--density-steps", "6", "--trace-samples", "2")
	cmd.Dir = work
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	stuck := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer stuck.Stop()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("after SIGTERM: %v (want exit status 130 within 10 s)\n%s", err, stderr.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("survey stopped")) {
		t.Errorf("stderr does not say the survey stopped: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(work, "run", "hessian")); err == nil {
		t.Error("an interrupted survey left run/hessian behind")
	}
}

// TestReportWhileWriting runs `sgdyn report` repeatedly on an ensemble that
// another process is still writing: every report must succeed and say the
// ensemble is partial, and the writer's results must equal an undisturbed
// run's byte for byte.
func TestReportWhileWriting(t *testing.T) {
	work, _ := tinyRun(t)
	mustRun(t, work, "hessian", "--run", "run", "--eval-examples", "32", "--top", "2", "--bottom", "1", "--bulk", "2",
		"--noise-batches", "3", "--density-starts", "-1", "--trace-samples", "-1")
	ens := []string{"ensemble", "--run", "run", "--replicas", "8", "--steps", "3000", "--workers", "1"}
	mustRun(t, work, append(ens, "--name", "quiet")...)
	cmd := exec.Command(sgdynBinary(t), append(ens, "--name", "busy")...)
	cmd.Dir = work
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	reports, partial := 0, 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer: %v", err)
			}
			running = false
		default:
			if _, err := os.Stat(filepath.Join(work, "run", "ensemble", "busy", "manifest.json")); err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			r := sgdyn(t, work, "report", "--resamples", "20", "run")
			if r.code != 0 {
				t.Fatalf("report during the run: exit %d: %s", r.code, r.stderr)
			}
			reports++
			if bytes.Contains([]byte(r.stdout), []byte("busy is partial")) {
				partial++
			}
		}
	}
	if partial == 0 {
		t.Errorf("%d reports ran, none while the ensemble was partial", reports)
	}
	for _, f := range []string{"projections.npy", "loss.npy", "distance.npy"} {
		a := readFile(t, filepath.Join(work, "run", "ensemble", "quiet", f))
		b := readFile(t, filepath.Join(work, "run", "ensemble", "busy", f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the ensemble written under concurrent reports differs", f)
		}
	}
	t.Logf("%d reports during the run, %d saw a partial ensemble", reports, partial)
}

// TestKillRun kills the whole pipeline, `sgdyn run`, at random points and
// resumes it: metrics, the survey and the ensemble must equal an
// uninterrupted pipeline's byte for byte.
func TestKillRun(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	work, _ := tinyRun(t)
	os.WriteFile(filepath.Join(work, "exp.yaml"), []byte(`seed: 3
model: {kind: transformer, transformer: {layers: 1, width: 8, heads: 2, context: 8}}
data: {path: corpus.txt}
sgd: {lr: 0.3, batch: 8, steps: 4000, eval_every: 500, eval_examples: 32, checkpoint_every: 25}
hessian: {eval_examples: 32, top: 2, bottom: 1, bulk: 2, noise_batches: 4, density_starts: 2, density_steps: 6, trace_samples: 2}
ensemble: {replicas: 6, steps: 3000, log_every: 5, sampling: without}
`), 0o644)
	run := []string{"run", "--config", "exp.yaml", "--workers", "2"}
	start := time.Now()
	mustRun(t, work, append(run, "--out", "whole")...)
	total := time.Since(start)
	// A finished run is skipped stage by stage, its files left alone.
	spectrum := filepath.Join(work, "whole", "hessian", "spectrum.json")
	before, _ := os.Stat(spectrum)
	again := mustRun(t, work, append(run, "--out", "whole")...)
	for _, want := range []string{"already trained", "survey up to date"} {
		if !strings.Contains(again, want) {
			t.Errorf("second run of a finished pipeline does not say %q:\n%s", want, again)
		}
	}
	if after, _ := os.Stat(spectrum); !after.ModTime().Equal(before.ModTime()) {
		t.Error("second run of a finished pipeline rewrote hessian/spectrum.json")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	kills := killRepeatedly(t, work, rng, total/12, append(run, "--out", "killed")...)
	if kills < 10 {
		t.Errorf("only %d kills landed mid-run, want >= 10", kills)
	}
	for _, f := range []string{"metrics.jsonl", "hessian/directions.npy", "hessian/directions.json", "ensemble/lr0.3-b8/projections.npy", "ensemble/lr0.3-b8/loss.npy"} {
		if !bytes.Equal(readFile(t, filepath.Join(work, "whole", f)), readFile(t, filepath.Join(work, "killed", f))) {
			t.Errorf("run: %s differs after %d kills", f, kills)
		}
	}
	t.Logf("run: %d SIGKILLs at random points over a %.2fs pipeline", kills, total.Seconds())
}

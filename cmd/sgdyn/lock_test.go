package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgdyn/sgdyn/internal/runlock"
)

// holdLockEnv makes the test binary a lock holder (see TestMain): its
// value is "DIR|LOCKFILE|exclusive or shared|COMMAND".
const holdLockEnv = "SGDYN_TEST_HOLD_LOCK"

// holdLock takes the lock spec names, says "locked" on stdout and waits
// to be killed.
func holdLock(spec string) {
	f := strings.Split(spec, "|")
	mode := runlock.Exclusive
	if f[2] == "shared" {
		mode = runlock.Shared
	}
	if _, err := runlock.Acquire(f[0], f[1], mode, f[3]); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// startHolder runs the test binary holding a lock until the test ends.
func startHolder(t *testing.T, dir, file, mode, command string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+strings.Join([]string{dir, file, mode, command}, "|"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("lock holder: %q", line)
	}
	return cmd
}

// startSgdyn starts a long sgdyn command, killed when the test ends.
func startSgdyn(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sgdynBinary(t), args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// waitLocked waits until the lock file of dir names pid as its holder.
func waitLocked(t *testing.T, dir string, pid int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		b, _ := os.ReadFile(filepath.Join(dir, runlock.File))
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == strconv.Itoa(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never took the lock of %s", pid, dir)
}

// refused runs args and checks that they exit 2 at once with the in-use
// error naming pid and holder, and print nothing on stdout.
func refused(t *testing.T, work, dir string, pid int, holder string, args ...string) {
	t.Helper()
	start := time.Now()
	r := sgdyn(t, work, args...)
	want := fmt.Sprintf("run directory %s is in use by pid %d (%s)", dir, pid, holder)
	if r.code != 2 || !strings.HasSuffix(strings.TrimSpace(r.stderr), want) || r.stdout != "" {
		t.Errorf("sgdyn %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(args, " "), r.code, r.stdout, r.stderr, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("sgdyn %s took %s to refuse", args[0], d)
	}
}

// linregRun trains a 3-parameter linear regression and surveys it.
func linregRun(t *testing.T) (work string) {
	t.Helper()
	work = t.TempDir()
	writeLinregCSV(t, filepath.Join(work, "rows.csv"), 100)
	os.WriteFile(filepath.Join(work, "exp.yaml"), []byte(`model: {kind: linreg}
data: {path: rows.csv}
sgd: {lr: 0.01, batch: 4, steps: 10000000, checkpoint_every: 200}
hessian: {eval_examples: 32, top: 1, bottom: 1, bulk: 1, noise_batches: 2, density_starts: -1, trace_samples: -1}
ensemble: {replicas: 2, steps: 3}
`), 0o644)
	mustRun(t, work, "train", "--run", "r", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "10")
	mustRun(t, work, "hessian", "--run", "r", "--eval-examples", "32", "--top", "1", "--bottom", "1", "--bulk", "1",
		"--noise-batches", "2", "--density-starts", "-1", "--trace-samples", "-1")
	mustRun(t, work, "ensemble", "--run", "r", "--replicas", "2", "--steps", "3", "--name", "e")
	return work
}

// writers are the commands that write run r of linregRun, with arguments
// that would succeed on an unlocked directory.
var writers = [][]string{
	{"train", "--run", "r", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "10"},
	{"hessian", "--run", "r", "--eval-examples", "32", "--top", "1", "--bottom", "1", "--bulk", "1", "--noise-batches", "2", "--density-starts", "-1", "--trace-samples", "-1"},
	{"run", "--config", "exp.yaml", "--out", "r"},
	{"ensemble", "--run", "r", "--replicas", "2", "--steps", "3", "--name", "e2"},
	{"ensemble", "merge", "--run", "r", "--name", "e"},
	{"report", "--resamples", "10", "r"},
}

// TestWritersCheckTheLock holds the lock of a run directory in another
// process and runs every writing command on it: each must exit 2 at once
// naming the holder, and change nothing. Read-only commands go on.
func TestWritersCheckTheLock(t *testing.T) {
	work := linregRun(t)
	run := filepath.Join(work, "r")
	before := hashTree(t, work)
	h := startHolder(t, run, runlock.File, "exclusive", "sgdyn train")
	for _, args := range writers {
		refused(t, work, "r", h.Process.Pid, "sgdyn train", args...)
	}
	mustRun(t, work, "theory", "linreg", "--run", "r", "--steps", "2")
	h.Process.Kill()
	h.Wait()
	os.Remove(filepath.Join(run, runlock.File)) // the killed holder's
	if after := hashTree(t, work); !sameTree(before, after) {
		t.Error("refused writers changed files")
	}

	// A shared holder (an ensemble shard) keeps out train, hessian and
	// run, and admits other shards, merges and reports.
	h = startHolder(t, run, runlock.File, "shared", "sgdyn ensemble")
	for _, args := range writers[:3] {
		refused(t, work, "r", h.Process.Pid, "sgdyn ensemble", args...)
	}
	for _, args := range writers[3:] {
		mustRun(t, work, args...)
	}
	h.Process.Kill()
	h.Wait()

	// Two reports never write report/ at once.
	h = startHolder(t, run, reportLock, "exclusive", "sgdyn report")
	refused(t, work, "r", h.Process.Pid, "sgdyn report", "report", "--resamples", "10", "r")
}

// TestTwoRealWriters runs long writing commands and a second writer on the
// same run directory: the second exits 2 at once naming the first; after a
// SIGKILL of the first, no stale lock remains.
func TestTwoRealWriters(t *testing.T) {
	work := linregRun(t)
	tiny, _ := tinyRun(t) // a survey of a transformer lasts long enough
	type holder struct {
		command, work, dir string
		args               []string
	}
	for _, h := range []holder{
		{"sgdyn train", work, "t", []string{"train", "--run", "t", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "10000000", "--checkpoint-every", "200"}},
		{"sgdyn hessian", tiny, "run", []string{"hessian", "--run", "run", "--eval-examples", "64", "--top", "3", "--bottom", "1", "--bulk", "2",
			"--noise-batches", "100000", "--density-starts", "2", "--density-steps", "6", "--trace-samples", "2"}},
		{"sgdyn run", work, "p", []string{"run", "--config", "exp.yaml", "--out", "p"}},
	} {
		a := startSgdyn(t, h.work, h.args...)
		waitLocked(t, filepath.Join(h.work, h.dir), a.Process.Pid)
		refused(t, h.work, h.dir, a.Process.Pid, h.command, h.args...) // the same command twice
		refused(t, h.work, h.dir, a.Process.Pid, h.command, "ensemble", "merge", "--run", h.dir, "--name", "nope")
		a.Process.Signal(syscall.SIGKILL)
		a.Wait()
		// The lock file outlives its holder; the lock does not.
		if _, err := os.Stat(filepath.Join(h.work, h.dir, runlock.File)); err != nil {
			t.Fatalf("%s: %v", h.command, err)
		}
		if r := sgdyn(t, h.work, "ensemble", "merge", "--run", h.dir, "--name", "nope"); r.code != 2 || strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "nope") {
			t.Errorf("after SIGKILL of %s: exit %d, %q; want the missing ensemble, not a lock", h.command, r.code, r.stderr)
		}
	}

	// Two shards of one ensemble run side by side, and keep train out.
	ens := []string{"ensemble", "--run", "r", "--replicas", "2", "--steps", "100000000", "--name", "long", "--workers", "1"}
	shards := []*exec.Cmd{startSgdyn(t, work, append(ens, "--shard", "0/2")...), startSgdyn(t, work, append(ens, "--shard", "1/2")...)}
	for r := range shards {
		info := filepath.Join(work, "r", "ensemble", "long", fmt.Sprintf("replica-%04d", r), "replica.json")
		for i := 0; ; i++ {
			if _, err := os.Stat(info); err == nil {
				break
			}
			if i > 1000 {
				t.Fatalf("shard %d/2 never started its replica", r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	r := sgdyn(t, work, writers[0]...)
	if r.code != 2 || !strings.Contains(r.stderr, "run directory r is in use by pid ") || !strings.Contains(r.stderr, "(sgdyn ensemble)") {
		t.Errorf("train beside two shards: exit %d, %q", r.code, r.stderr)
	}
	for i, s := range shards {
		if err := s.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("shard %d/2 stopped: %v", i, err)
		}
	}
}

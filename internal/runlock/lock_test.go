package runlock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A flock belongs to an open file, so two Acquires in one process conflict
// just as two processes do.

func TestExclusiveRefusesSecondWriter(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, File, Exclusive, "sgdyn train")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{Exclusive, Shared} {
		_, err := Acquire(dir, File, m, "sgdyn hessian")
		var be *BusyError
		if !errors.As(err, &be) {
			t.Fatalf("%v lock while an exclusive one is held: %v, want a BusyError", m, err)
		}
		want := fmt.Sprintf("run directory %s is in use by pid %d (sgdyn train)", dir, os.Getpid())
		if be.PID != os.Getpid() || err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	l2, err := Acquire(dir, File, Exclusive, "sgdyn hessian")
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}

func TestSharedHoldersCoexist(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(dir, File, Shared, "sgdyn ensemble")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(dir, File, Shared, "sgdyn ensemble")
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := Acquire(dir, File, Exclusive, "sgdyn train"); err == nil || err.Error() != fmt.Sprintf("run directory %s is in use by pid %d (sgdyn ensemble)", dir, os.Getpid()) {
		t.Fatalf("exclusive lock beside shared ones: %v", err)
	}
	// The first shared holder leaving must not remove the file the second
	// still holds: a newcomer would lock a fresh file and run beside it.
	a.Release()
	if _, err := os.Stat(filepath.Join(dir, File)); err != nil {
		t.Fatalf("lock file removed while a shared holder remains: %v", err)
	}
	if l, err := Acquire(dir, File, Exclusive, "sgdyn train"); err == nil {
		l.Release()
		t.Fatal("exclusive lock granted while a shared holder remains")
	}
	b.Release()
	if _, err := os.Stat(filepath.Join(dir, File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after the last shared holder: %v", err)
	}
	l, err := Acquire(dir, File, Exclusive, "sgdyn train")
	if err != nil {
		t.Fatalf("exclusive lock after all shared holders left: %v", err)
	}
	l.Release()
}

func TestNamedLocksAreIndependent(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(dir, File, Shared, "sgdyn report")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := Acquire(dir, ".report.lock", Exclusive, "sgdyn report")
	if err != nil {
		t.Fatalf("a second lock name conflicts with the first: %v", err)
	}
	defer b.Release()
	if _, err := Acquire(dir, ".report.lock", Exclusive, "sgdyn report"); err == nil {
		t.Error("the named lock admits two exclusive holders")
	}
}

func TestMissingDirectory(t *testing.T) {
	_, err := Acquire(filepath.Join(t.TempDir(), "nope"), File, Exclusive, "sgdyn train")
	var be *BusyError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("lock in a missing directory: %v, want an open error", err)
	}
}

// A dead holder's record must not be reported as the holder.
func TestBusyIgnoresDeadRecord(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dead := cmd.ProcessState.Pid()
	f, _ := os.Create(filepath.Join(dir, File))
	fmt.Fprintf(f, "%d sgdyn train\n", dead)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err := Acquire(dir, File, Exclusive, "sgdyn hessian")
	var be *BusyError
	if !errors.As(err, &be) || be.PID != 0 || err.Error() != fmt.Sprintf("run directory %s is in use by another process (sgdyn train)", dir) {
		t.Errorf("lock held under a dead pid's record: %v", err)
	}
}

// helperEnv makes the test binary a lock holder: it takes the lock of the
// directory it names, says "locked" on stdout, and waits to be killed.
const helperEnv = "RUNLOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if _, err := Acquire(dir, File, Exclusive, "sgdyn train"); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKilledHolderLeavesNoStaleLock holds the lock in another process,
// checks it is refused with that pid, SIGKILLs the holder and takes it.
func TestKilledHolderLeavesNoStaleLock(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err = Acquire(dir, File, Exclusive, "sgdyn hessian")
	if want := fmt.Sprintf("run directory %s is in use by pid %d (sgdyn train)", dir, cmd.Process.Pid); err == nil || err.Error() != want {
		t.Fatalf("lock held by another process: %v, want %q", err, want)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, File)); err != nil {
		t.Fatalf("the killed holder's lock file is gone (%v); the test needs it left behind", err)
	}
	l, err := Acquire(dir, File, Exclusive, "sgdyn hessian")
	if err != nil {
		t.Fatalf("after SIGKILL of the holder: %v", err)
	}
	l.Release()
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEnsembleResumesFromAnotherDirectory runs half of an ensemble from the
// working directory that holds the run, SIGKILLs the other half mid-way,
// and finishes it from a subdirectory with another spelling of the run
// directory (../r/). The ensemble must resume rather than be refused as
// "run from another reference", and end byte for byte equal to an
// uninterrupted ensemble.
func TestEnsembleResumesFromAnotherDirectory(t *testing.T) {
	work := linregRun(t)
	other := filepath.Join(work, "elsewhere")
	os.MkdirAll(other, 0o755)
	ens := []string{"ensemble", "--replicas", "4", "--steps", "1000", "--checkpoint-every", "50", "--workers", "1"}
	mustRun(t, work, append(ens, "--run", "r", "--name", "whole")...)

	mustRun(t, work, append(ens, "--run", "r", "--name", "split", "--shard", "0/2")...)
	half := startSgdyn(t, work, append(ens, "--run", "r", "--name", "split", "--shard", "1/2")...)
	state := filepath.Join(work, "r", "ensemble", "split", "replica-0001", "state.json")
	exited := make(chan error, 1)
	go func() { exited <- half.Wait() }()
	killed := false
wait:
	for range 2000 {
		select {
		case <-exited:
			break wait // finished before a checkpoint was seen: a weaker test
		default:
		}
		if _, err := os.Stat(state); err == nil {
			half.Process.Signal(syscall.SIGKILL)
			<-exited
			killed = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !killed {
		t.Log("shard 1/2 was not caught mid-replica; resuming finished replicas only")
	}

	out := mustRun(t, other, append(ens, "--run", "../r/", "--name", "split")...)
	if !strings.Contains(out, "already done") || !strings.Contains(out, "merged into") {
		t.Errorf("resuming from another directory:\n%s", out)
	}
	for _, f := range []string{"projections.npy", "loss.npy", "distance.npy"} {
		a := readFile(t, filepath.Join(work, "r", "ensemble", "whole", f))
		b := readFile(t, filepath.Join(work, "r", "ensemble", "split", f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s of the ensemble resumed from another directory differs from the uninterrupted one's", f)
		}
	}
	// The manifest keeps the directory as first typed, for display.
	var man struct {
		Run string `json:"run"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(work, "r", "ensemble", "split", "manifest.json")), &man); err != nil || man.Run != "r" {
		t.Errorf("manifest run %q (%v), want the first spelling %q", man.Run, err, "r")
	}
	mustRun(t, other, "ensemble", "merge", "--run", "../r", "--name", "split")

	// Other settings under the same name are still refused, naming them.
	r := sgdyn(t, other, "ensemble", "--run", "../r", "--replicas", "4", "--steps", "1000", "--lr", "0.02", "--name", "split")
	if r.code != 2 || !strings.Contains(r.stderr, "with other settings") {
		t.Errorf("another lr under the same name: exit %d, %q", r.code, r.stderr)
	}
}

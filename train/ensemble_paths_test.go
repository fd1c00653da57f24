package train

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEnsembleReferenceByContent resumes ensembles with another spelling of
// the run directory and of the checkpoint: a new ensemble and one whose
// manifest predates by-content fingerprints (its fingerprint covers the
// paths). Both must resume, keep their fingerprint and first spelling, and
// merge; another reference point under the same name is refused, named.
func TestEnsembleReferenceByContent(t *testing.T) {
	ref, dirs, _, _, _ := linregReference(t, 60, 2)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(cwd, ref.Dir)
	if err != nil {
		t.Fatal(err)
	}
	respelled := *ref
	respelled.Dir = rel + string(filepath.Separator)
	respelled.Checkpoint = "the same solution, named otherwise"

	readManifest := func(name string) (EnsembleManifest, map[string]any) {
		b, err := os.ReadFile(filepath.Join(EnsembleDir(ref.Dir, name), ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var m EnsembleManifest
		var raw map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &raw)
		return m, raw
	}
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "legacy"}[legacy]
		c := ensembleConfig(name, 2, 6)
		if _, err := RunEnsemble(cancelled, ref, dirs, nil, c, Shard{0, 1}, 1, nil); err == nil {
			t.Fatal("a cancelled run finished")
		}
		dir := EnsembleDir(ref.Dir, name)
		if legacy {
			// Rewrite the ensemble as an old sgdyn wrote it: no by-content
			// flag, and replicas that recorded the hash of every field.
			m, raw := readManifest(name)
			delete(raw, "fingerprint_by_content")
			b, _ := json.Marshal(raw)
			os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644)
			m.ByContent = false
			for r := range 2 {
				b, _ := json.Marshal(replicaInfo{Replica: r, Stream: uint64(1 + r), Fingerprint: m.Fingerprint()})
				os.WriteFile(filepath.Join(replicaDir(dir, r), replicaJSON), b, 0o644)
			}
		}
		before, _ := readManifest(name)
		if _, err := RunEnsemble(ctx, &respelled, dirs, nil, c, Shard{0, 1}, 1, nil); err != nil {
			t.Fatalf("%s ensemble resumed as %s: %v", name, respelled.Dir, err)
		}
		e, err := MergeEnsemble(dir)
		if err != nil {
			t.Fatalf("%s ensemble resumed as %s: merge: %v", name, respelled.Dir, err)
		}
		after, _ := readManifest(name)
		if after.Fingerprint() != before.Fingerprint() || after.Run != ref.Dir || after.Checkpoint != ref.Checkpoint || after.ByContent == legacy {
			t.Errorf("%s ensemble: manifest after resuming elsewhere: run %q, checkpoint %q, by content %v, fingerprint changed %v",
				name, after.Run, after.Checkpoint, after.ByContent, after.Fingerprint() != before.Fingerprint())
		}
		if !slices.Equal(e.Status, []string{StatusComplete, StatusComplete}) {
			t.Errorf("%s ensemble: status %v after resuming", name, e.Status)
		}
	}

	// Two manifests of one ensemble that differ only in paths share a
	// fingerprint; another reference point does not, and is refused.
	a, _ := readManifest("new")
	b := a
	b.Run, b.Checkpoint = "elsewhere", "x.npz"
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("the paths of the reference change a by-content fingerprint")
	}
	moved := *ref
	moved.W = slices.Clone(ref.W)
	moved.W[0] += 1e-3
	_, err = RunEnsemble(ctx, &moved, dirs, nil, ensembleConfig("new", 2, 6), Shard{0, 1}, 1, nil)
	if err == nil || !strings.Contains(err.Error(), "from another reference point") {
		t.Errorf("another reference under the same name: got %v", err)
	}
}

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/internal/npy"
)

// The sgdyn binary, built once on first use: fuzz workers, which never
// exec it, do not pay for the build.
var (
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
)

func sgdynBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "sgdyn-bin"); buildErr != nil {
			return
		}
		binary = filepath.Join(binDir, "sgdyn")
		if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building sgdyn: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdLockEnv); spec != "" {
		holdLock(spec) // the test binary as a lock holder (lock_test.go)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func sgdyn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(sgdynBinary(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := sgdyn(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("sgdyn %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// tinyRun writes a small corpus and config and trains a tiny transformer.
func tinyRun(t *testing.T) (work, run string) {
	t.Helper()
	work = t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"to ", "be ", "or ", "not ", "that ", "is\n"}
	var sb strings.Builder
	for sb.Len() < 6000 {
		sb.WriteString(words[rng.IntN(len(words))])
	}
	os.WriteFile(filepath.Join(work, "corpus.txt"), []byte(sb.String()), 0o644)
	os.WriteFile(filepath.Join(work, "tiny.yaml"), []byte(`seed: 3
model:
  kind: transformer
  dtype: float32
  transformer: {layers: 1, width: 8, heads: 2, context: 8}
data: {path: corpus.txt}
sgd: {lr: 0.3, batch: 8, steps: 30, eval_every: 10, eval_examples: 32}
`), 0o644)
	mustRun(t, work, "train", "--config", "tiny.yaml", "--run", "run")
	return work, filepath.Join(work, "run")
}

// TestPipelineAndSharding trains, probes and runs an ensemble, once whole
// and once as two shard processes plus a merge, and compares the results.
func TestPipelineAndSharding(t *testing.T) {
	work, run := tinyRun(t)
	out := mustRun(t, work, "hessian", "--run", "run", "--eval-examples", "64", "--top", "3", "--bottom", "1", "--bulk", "2",
		"--noise-batches", "4", "--density-starts", "2", "--density-steps", "6", "--trace-samples", "2")
	if !strings.Contains(out, "lambda_max") {
		t.Errorf("hessian output: %s", out)
	}
	for _, f := range []string{"spectrum.json", "directions.npy", "directions.json"} {
		if _, err := os.Stat(filepath.Join(run, "hessian", f)); err != nil {
			t.Error(err)
		}
	}
	// The same survey from the weights alone, without the run directory.
	ck, _ := filepath.Glob(filepath.Join(run, "checkpoints", "*.npz"))
	mustRun(t, work, "hessian", "--weights", ck[len(ck)-1], "--config", "tiny.yaml", "--out", "loose", "--eval-examples", "64", "--top", "3", "--bottom", "1", "--bulk", "2",
		"--noise-batches", "4", "--density-starts", "2", "--density-steps", "6", "--trace-samples", "2")
	a, _ := os.ReadFile(filepath.Join(run, "hessian", "directions.npy"))
	b, _ := os.ReadFile(filepath.Join(work, "loose", "hessian", "directions.npy"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("hessian --weights gives other directions than hessian --run on the same parameters")
	}
	mustRun(t, work, "ensemble", "--run", "run", "--replicas", "4", "--steps", "12", "--name", "whole")
	mustRun(t, work, "ensemble", "--run", "run", "--replicas", "4", "--steps", "12", "--name", "split", "--shard", "1/2")
	r := sgdyn(t, work, "ensemble", "merge", "--run", "run", "--name", "split")
	if r.code != 2 || !strings.Contains(r.stderr, "incomplete") {
		t.Errorf("merging half an ensemble: exit %d, %q; want 2 and 'incomplete'", r.code, r.stderr)
	}
	mustRun(t, work, "ensemble", "--run", "run", "--replicas", "4", "--steps", "12", "--name", "split", "--shard", "0/2")
	mustRun(t, work, "ensemble", "merge", "--run", "run", "--name", "split")
	for _, f := range []string{"projections.npy", "loss.npy", "distance.npy", "steps.npy"} {
		a, err1 := os.ReadFile(filepath.Join(run, "ensemble", "whole", f))
		b, err2 := os.ReadFile(filepath.Join(run, "ensemble", "split", f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: sharded ensemble differs from the unsharded one (%v, %v)", f, err1, err2)
		}
	}
}

func hashTree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	h := map[string][32]byte{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			h[p] = sha256.Sum256(b)
		}
		return nil
	})
	return h
}

// TestBadInput runs commands with bad input against an existing run: each
// must print one line naming the problem, exit 2, and change no file.
func TestBadInput(t *testing.T) {
	work, _ := tinyRun(t)
	os.WriteFile(filepath.Join(work, "empty.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(work, "latin1.txt"), []byte("caf\xe9 au lait"), 0o644)
	os.WriteFile(filepath.Join(work, "unknown.yaml"), []byte("model: {kind: mlp}\nsgd: {learning_rate: 0.1}\n"), 0o644)
	os.WriteFile(filepath.Join(work, "badtype.yaml"), []byte("sgd: {lr: fast}\n"), 0o644)
	os.WriteFile(filepath.Join(work, "ragged.csv"), []byte("x1,x2,y\n1,2,3\n4,5\n"), 0o644)
	os.WriteFile(filepath.Join(work, "small.csv"), []byte("x1,y\n1,2\n2,4\n3,6\n4,8\n5,10\n6,12\n7,14\n8,16\n9,18\n10,20\n"), 0o644)
	os.WriteFile(filepath.Join(work, "nan.csv"), []byte("x1,y\n1,2\nfoo,3\n"), 0o644)
	os.WriteFile(filepath.Join(work, "notnpy.npy"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(work, "notarun"), 0o755)
	os.WriteFile(filepath.Join(work, "notarun", "x"), []byte("x"), 0o644)
	cifar := filepath.Join(work, "cifar")
	os.Mkdir(cifar, 0o755)
	os.WriteFile(filepath.Join(cifar, "data_batch_1.bin"), make([]byte, 3073*5), 0o644)
	// Official sizes, wrong contents: only the SHA-1s can tell.
	wrongSum := filepath.Join(work, "wrongsum")
	os.Mkdir(wrongSum, 0o755)
	for _, n := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		f, _ := os.Create(filepath.Join(wrongSum, n))
		f.Truncate(30730000)
		f.Close()
	}
	// Archives that must be refused before anything is written.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/traversal.tar.gz" && r.URL.Path != "/huge.tar.gz" {
			http.NotFound(w, r)
			return
		}
		gz := gzip.NewWriter(w)
		tw := tar.NewWriter(gz)
		switch r.URL.Path {
		case "/traversal.tar.gz":
			tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/../../escaped.bin", Mode: 0o644, Size: 4})
			tw.Write([]byte("evil"))
		case "/huge.tar.gz":
			tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/data_batch_1.bin", Mode: 0o644, Size: 1 << 40})
		}
		tw.Close()
		gz.Close()
	}))
	defer srv.Close()
	// A checkpoint of another model, and directions of the wrong length.
	other := filepath.Join(work, "other.yaml")
	os.WriteFile(other, []byte("model: {kind: transformer, transformer: {layers: 1, width: 4, heads: 1, context: 8}}\ndata: {path: corpus.txt}\nsgd: {lr: 0.1, batch: 4, steps: 2}\n"), 0o644)
	mustRun(t, work, "train", "--config", "other.yaml", "--run", "otherrun")
	otherCk, _ := filepath.Glob(filepath.Join(work, "otherrun", "checkpoints", "*.npz"))
	npy.WriteNPY(filepath.Join(work, "shortdirs.npy"), []int{2, 5}, make([]float64, 10))

	cases := []struct {
		name string
		args []string
		want string // a word the error must contain
	}{
		{"negative lr", []string{"train", "--run", "run", "--lr", "-1"}, "learning rate"},
		{"zero lr", []string{"train", "--run", "new1", "--data", "corpus.txt", "--lr", "0"}, "learning rate"},
		{"batch > data", []string{"train", "--run", "new2", "--model", "linreg", "--data", "small.csv", "--batch", "100"}, "larger than the data set"},
		{"empty corpus", []string{"train", "--run", "new3", "--data", "empty.txt"}, "empty"},
		{"non-UTF-8 corpus", []string{"train", "--run", "new4", "--data", "latin1.txt"}, "UTF-8"},
		{"missing corpus", []string{"train", "--run", "new5", "--data", "nope.txt"}, "nope.txt"},
		{"unknown yaml key", []string{"train", "--config", "unknown.yaml", "--run", "new6"}, "learning_rate"},
		{"ill-typed yaml", []string{"train", "--config", "badtype.yaml", "--run", "new7"}, "fast"},
		{"ragged csv", []string{"train", "--run", "new8", "--model", "linreg", "--data", "ragged.csv"}, "ragged.csv"},
		{"non-number csv", []string{"train", "--run", "new9", "--model", "linreg", "--data", "nan.csv"}, "foo"},
		{"missing cifar", []string{"train", "--run", "new10", "--model", "cnn", "--data", "nocifar"}, "nocifar"},
		{"truncated cifar", []string{"train", "--run", "new11", "--model", "cnn", "--data", "cifar"}, "data_batch_1.bin"},
		{"verify corrupt cifar", []string{"data", "verify", "cifar10", "--dir", "cifar"}, "data_batch_1.bin"},
		{"merge missing ensemble", []string{"ensemble", "merge", "--run", "run", "--name", "nope"}, "nope"},
		{"changed config", []string{"train", "--run", "run", "--lr", "0.01"}, "different config"},
		{"not a run dir", []string{"train", "--run", "notarun"}, "not an sgdyn run"},
		{"hessian on non-run", []string{"hessian", "--run", "notarun"}, "not an sgdyn run"},
		{"directions wrong file", []string{"ensemble", "--run", "run", "--steps", "5", "--directions", "notnpy.npy"}, "notnpy.npy"},
		{"ensemble without directions", []string{"ensemble", "--run", "run", "--steps", "5"}, "hessian"},
		{"bad shard", []string{"ensemble", "--run", "run", "--steps", "5", "--shard", "2/2"}, "shard"},
		{"wrong sha1", []string{"data", "verify", "cifar10", "--dir", "wrongsum"}, "sha1"},
		{"archive path traversal", []string{"data", "fetch", "cifar10", "--dir", "fetched", "--url", srv.URL + "/traversal.tar.gz"}, "escaped.bin"},
		{"archive absurd size", []string{"data", "fetch", "cifar10", "--dir", "fetched", "--url", srv.URL + "/huge.tar.gz"}, "data_batch_1.bin"},
		{"fetch 404", []string{"data", "fetch", "cifar10", "--dir", "fetched", "--url", srv.URL + "/missing"}, "404"},
		{"checkpoint of another model", []string{"hessian", "--run", "run", "--checkpoint", otherCk[0]}, "different model"},
		{"directions of wrong length", []string{"ensemble", "--run", "run", "--steps", "5", "--directions", "shortdirs.npy"}, "shortdirs.npy"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"train", "--frobnicate"}, "frobnicate"},
	}
	before := hashTree(t, work)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sgdyn(t, work, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, c.want) {
				t.Errorf("error %q does not name %q", last, c.want)
			}
			// Before the one-line error only progress may appear.
			for _, l := range lines[:len(lines)-1] {
				if c.name != "unknown flag" && !strings.HasPrefix(l, "cifar10: download") {
					t.Errorf("error spans lines: %q", r.stderr)
				}
			}
			if c.name != "unknown flag" && !strings.HasPrefix(last, "sgdyn") {
				t.Errorf("last line %q is not the error", last)
			}
			if after := hashTree(t, work); !sameTree(before, after) {
				t.Errorf("files changed")
				before = after
			}
		})
	}
}

func sameTree(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestClusterTemplates checks that the Slurm and Kubernetes templates parse
// and shard the way sgdyn expects.
func TestClusterTemplates(t *testing.T) {
	root := filepath.Join("..", "..", "scripts")
	sb := filepath.Join(root, "slurm", "ensemble.sbatch")
	if out, err := exec.Command("bash", "-n", sb).CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", sb, err, out)
	}
	body, _ := os.ReadFile(sb)
	// The warning before the time limit is USR1: the script stops sgdyn
	// (which checkpoints) and requeues its own task; --requeue covers
	// requeues and preemption (scripts/slurm/test-local.sh runs both).
	if !regexp.MustCompile(`--shard "\$index/\$count"`).Match(body) || !bytes.Contains(body, []byte("#SBATCH --signal=B:USR1@")) ||
		!bytes.Contains(body, []byte("#SBATCH --requeue")) || !regexp.MustCompile(`trap .* USR1`).Match(body) {
		t.Errorf("%s: does not pass --shard index/count, ask for USR1 before the limit with a trap that requeues, or allow requeues", sb)
	}
	kb, err := os.ReadFile(filepath.Join(root, "k8s", "ensemble-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			CompletionMode string `yaml:"completionMode"`
			Completions    int    `yaml:"completions"`
			Template       struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(kb))
	if err := dec.Decode(&job); err != nil {
		t.Fatalf("k8s template: %v", err)
	}
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Spec.CompletionMode != "Indexed" || len(job.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("k8s template is not an Indexed batch/v1 Job: %+v", job)
	}
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	if want := fmt.Sprintf(`--shard "${JOB_COMPLETION_INDEX}/%d"`, job.Spec.Completions); !strings.Contains(args, want) {
		t.Errorf("k8s args %q do not contain %s", args, want)
	}
}

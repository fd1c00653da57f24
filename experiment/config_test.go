package experiment

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/configs"
	"github.com/sgdyn/sgdyn/probe"
)

func TestEnsembleSamplingList(t *testing.T) {
	const head = "model: {kind: linreg}\ndata: {kind: synthetic}\nsgd: {lr: 0.1, batch: 10, steps: 50}\n"
	names := func(y string, n int) []string {
		t.Helper()
		c, err := Parse([]byte(head + y))
		if err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		var out []string
		for _, e := range c.Ensembles(n) {
			s := e.Name + ":" + e.Sampling
			if e.Paired {
				s += ":paired"
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		yaml string
		n    int
		want string
	}{
		// 100 steps of batch 10: 1 epoch of 1000 examples, 10 of 100.
		{"ensemble: {steps: 100}", 1000, "lr0.1-b10:without"},
		{"ensemble: {steps: 100}", 100, "lr0.1-b10-with:with lr0.1-b10-without:without:paired"},
		{"ensemble: {steps: 100}", 0, "lr0.1-b10:without"}, // size not known yet
		{"ensemble: {steps: 100, sampling: without}", 100, "lr0.1-b10:without"},
		{"ensemble: {steps: 100, sampling: with}", 100, "lr0.1-b10:with"},
		{"ensemble: {steps: 100, sampling: [without, with], lr: [0.1, 0.2]}", 1000,
			"lr0.1-b10-without:without:paired lr0.1-b10-with:with lr0.2-b10-without:without:paired lr0.2-b10-with:with"},
		{"ensemble: {steps: 100, sampling: 'with,without'}", 1000, "lr0.1-b10-with:with lr0.1-b10-without:without:paired"},
		{"ensemble: {steps: 100, batches: [10, 20]}", 1000, "lr0.1-b10:without lr0.1-b20:without"}, // the default scheme follows ensemble.batch
	} {
		if got := strings.Join(names(tc.yaml, tc.n), " "); got != tc.want {
			t.Errorf("%s with %d examples: %s, want %s", tc.yaml, tc.n, got, tc.want)
		}
	}
	for _, bad := range []string{"ensemble: {sampling: [with, with]}", "ensemble: {sampling: sometimes}", "ensemble: {sampling: {a: 1}}"} {
		if _, err := Parse([]byte(head + bad)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want a one-line error", bad, err)
		}
	}
	c, _ := Parse([]byte(head + "ensemble: {sampling: [with, without]}"))
	if got := surveySampling(c.Schemes(1000), "without"); got != "without" {
		t.Errorf("survey sampling %q, want the training run's", got)
	}
	if got := surveySampling(c.Schemes(1000), "other"); got != "with" {
		t.Errorf("survey sampling %q, want the first scheme", got)
	}
	if got := c.SurveyOptions(1000).Sampling; got != "without" {
		t.Errorf("survey options sampling %q, want sgd.sampling (without), which the ensembles use", got)
	}
}

func TestSchemesNote(t *testing.T) {
	c, _ := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nsgd: {batch: 10}\nensemble: {steps: 100}\n"))
	note := SchemesNote(c.Ensembles(100), 100)
	for _, want := range []string{"10 epochs", "describes the with-replacement ensembles (lr0.01-b10-with)", "reshuffling (lr0.01-b10-without)", "measured, not predicted"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q does not say %q", note, want)
		}
	}
	if note := SchemesNote(c.Ensembles(1000), 1000); note != "" {
		t.Errorf("within one epoch: note %q, want none", note)
	}
}

// TestParseDefaults: the defaults a config leaves out are filled in, in
// the survey's options too, and Parse is idempotent over WithDefaults.
func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nsgd: {lr: 0.05, batch: 16, steps: 40}\nensemble: {lr: [0.05, 0.2], steps: 300}\nhessian: {top: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ensemble.Batch != 16 || c.Ensemble.Replicas != 32 || c.Hessian.Bottom != 5 || c.Hessian.Top != 3 {
		t.Errorf("defaults: ensemble batch %d replicas %d, hessian top %d bottom %d; want 16, 32, 3, 5", c.Ensemble.Batch, c.Ensemble.Replicas, c.Hessian.Top, c.Hessian.Bottom)
	}
	o := c.SurveyOptions(1000)
	if o.BatchSize != 16 || o.Window.LR != 0.2 || o.Window.Steps != 300 || o.Top != 3 {
		t.Errorf("survey options %+v: want batch 16 and the flat window of the largest lr 0.2 over 300 steps", o)
	}
	if o.NoiseOnEval {
		t.Errorf("noise on the evaluation set by default")
	}
	held, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nhessian: {noise_on_eval: true}\n"))
	if err != nil || !held.SurveyOptions(1000).NoiseOnEval {
		t.Errorf("hessian: {noise_on_eval: true} does not reach the survey: %v", err)
	}
	central, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nhessian: {products: central}\n"))
	if err != nil || central.SurveyOptions(1000).Products != probe.CentralProducts {
		t.Errorf("hessian: {products: central} does not reach the survey: %v", err)
	}
	if _, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nhessian: {products: double}\n")); err == nil || !strings.Contains(err.Error(), `products "double"`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("hessian: {products: double}: got %v, want a one-line error naming it", err)
	}
	if again := c.WithDefaults(); !reflect.DeepEqual(again, c) {
		t.Errorf("WithDefaults changed a parsed config:\n%+v\n%+v", again, c)
	}
	none, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\n"))
	if err != nil || !reflect.DeepEqual(none.Ensemble.LR, []float64{none.SGD.LR}) {
		t.Errorf("ensemble lr defaults to sgd.lr: %v, %v", none.Ensemble.LR, err)
	}
}

// TestShippedConfigs: every config in configs/ loads by name, and a
// shipped name and an unknown key give one-line errors naming them.
func TestShippedConfigs(t *testing.T) {
	for _, name := range configs.Names() {
		got, c, err := Load(name)
		if err != nil || got != name {
			t.Errorf("%s: %q, %v", name, got, err)
			continue
		}
		if len(c.Ensembles(0)) == 0 {
			t.Errorf("%s: no ensembles", name)
		}
	}
	if _, _, err := Load("no-such-config"); err == nil || !strings.Contains(err.Error(), "no-such-config") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := Parse([]byte("model: {kind: mlp}\nensemble: {replica: 3}\n")); err == nil || !strings.Contains(err.Error(), "replica") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := Parse([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nhessian: {noise_batches: 1}\n")); err == nil || !strings.Contains(err.Error(), "noise_batches") {
		t.Errorf("one noise batch: %v", err)
	}
}

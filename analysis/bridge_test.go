package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBridgeClosedForm checks the closed form against the recursion at
// lambda = 0, including the random walk of the left-out examples when b
// does not divide n, and its known values.
func TestBridgeClosedForm(t *testing.T) {
	const eta, sigma2 = 0.1, 2.0
	for _, nb := range [][2]int{{12, 3}, {14, 3}, {2700, 32}} {
		n, b := nb[0], nb[1]
		spe := StepsPerEpoch(n, b)
		var steps []int64
		for s := int64(0); s <= 3*spe+1; s++ {
			steps = append(steps, s)
		}
		rec, err := ReshuffledVariance(eta, 0, sigma2, n, b, steps)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range steps {
			if got := BridgeVariance(eta, sigma2, n, b, float64(s)); !approxEq(got, rec[i], 1e-10) && math.Abs(got-rec[i]) > 1e-15 {
				t.Errorf("n %d b %d step %d: closed form %.10g, recursion %.10g", n, b, s, got, rec[i])
			}
		}
		r := n % b
		end := BridgeVariance(eta, sigma2, n, b, float64(spe))
		if want := eta * eta * sigma2 * float64(spe) * float64(r) / (float64(b) * float64(n-1)); math.Abs(end-want) > 1e-15 {
			t.Errorf("n %d b %d: epoch-end variance %g, want %g", n, b, end, want)
		}
		// One step is the one-step marginal variance of a batch mean without replacement.
		if got, want := BridgeVariance(eta, sigma2, n, b, 1), eta*eta*sigma2*float64(n-b)/(float64(b)*float64(n-1)); !approxEq(got, want, 1e-12) {
			t.Errorf("n %d b %d: one step %g, want %g", n, b, got, want)
		}
		if got, want := BridgeVariance(eta, sigma2, n, b, float64(3*spe))-BridgeVariance(eta, sigma2, n, b, float64(2*spe)), float64(spe)*BridgeSlope(eta, sigma2, n, b); math.Abs(got-want) > 1e-15 {
			t.Errorf("n %d b %d: growth over an epoch %g, slope x epoch %g", n, b, got, want)
		}
	}
	if BridgeSlope(0.1, 1, 12, 3) != 0 {
		t.Error("b divides n, yet a first-order slope across epochs")
	}
}

// TestReshuffledMonteCarlo is the oracle of the first-order theory: n fixed
// per-example values, each epoch a fresh permutation cut into batches, and
// x_{t+1} = rho x_t - eta xi_t. The recursion must match the Monte-Carlo
// variance within 4 standard errors at epoch ends and mid-epoch, for a flat
// and a curved direction; the with-replacement recursion must not.
func TestReshuffledMonteCarlo(t *testing.T) {
	const n, b, R, eta = 10, 3, 40000, 0.2 // 3 steps per epoch, one example left out each epoch
	rng := rand.New(rand.NewPCG(5, 6))
	g := make([]float64, n)
	var mean float64
	for i := range g {
		g[i] = rng.NormFloat64() + 0.5*float64(i%3)
		mean += g[i] / n
	}
	var sigma2 float64
	for _, x := range g {
		sigma2 += (x - mean) * (x - mean) / n
	}
	steps := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, lambda := range []float64{0, 1.5} {
		want, err := ReshuffledVariance(eta, lambda, sigma2, n, b, steps)
		if err != nil {
			t.Fatal(err)
		}
		rho := 1 - eta*lambda
		sum := make([]float64, len(steps))
		sum2 := make([]float64, len(steps))
		perm := make([]int, n)
		for range R {
			var x float64
			for s := int64(0); s < steps[len(steps)-1]; s++ {
				pos := int(s % 3)
				if pos == 0 {
					for i := range perm {
						perm[i] = i
					}
					rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
				}
				var m float64
				for _, i := range perm[pos*b : (pos+1)*b] {
					m += g[i] / b
				}
				x = rho*x - eta*(m-mean)
				sum[s] += x * x // the mean of x is exactly 0: the xi have mean 0
				sum2[s] += x * x * x * x
			}
		}
		withRep := DirectionParams{Lambda: lambda, C: sigma2 * float64(n-b) / (float64(b) * float64(n-1))}
		rejected := 0
		for i, s := range steps {
			got := sum[i] / R
			se := math.Sqrt((sum2[i]/R - got*got) / R)
			if math.Abs(got-want[i]) > 4*se {
				t.Errorf("lambda %g step %d: Monte Carlo %.5g +- %.2g, first-order reshuffled theory %.5g", lambda, s, got, se, want[i])
			}
			if w := DiscreteVariance(eta, withRep, 0, float64(s)); math.Abs(got-w) > 4*se {
				rejected++
			}
		}
		// The walk (i.i.d. steps with the one-step marginal) is right at
		// step 1 only: a test that cannot tell them apart proves nothing.
		if rejected < len(steps)-2 {
			t.Errorf("lambda %g: the i.i.d.-step recursion is rejected at only %d of %d steps", lambda, rejected, len(steps))
		}
	}
}

func TestNoiseFactorAndTheory(t *testing.T) {
	if f, _ := NoiseFactor(100, 10, WithReplacement); f != 0.1 {
		t.Errorf("with replacement: %g, want 1/b", f)
	}
	if f, _ := NoiseFactor(100, 10, WithoutReplacement); !approxEq(f, 90.0/990, 1e-14) {
		t.Errorf("without replacement: %g, want (N-b)/(b(N-1))", f)
	}
	if s, _ := PerExampleVariance(2*90.0/990, 100, 10, WithoutReplacement); !approxEq(s, 2, 1e-14) {
		t.Errorf("per-example variance %g, want 2", s)
	}
	for _, bad := range []func() error{
		func() error { _, err := NoiseFactor(10, 11, WithoutReplacement); return err },
		func() error { _, err := NoiseFactor(10, 0, WithReplacement); return err },
		func() error { _, err := NoiseFactor(10, 2, "sometimes"); return err },
		func() error { _, err := PerExampleVariance(1, 10, 10, WithoutReplacement); return err },
		func() error { _, err := ReshuffledVariance(0.1, 0, 1, 10, 2, []int64{3, 2}); return err },
	} {
		if bad() == nil {
			t.Error("bad input accepted")
		}
	}
	cases := []struct {
		s         Sampling
		steps     int64
		recursion bool
		epochs    float64
	}{{WithReplacement, 2000, true, 2000.0 / 84}, {WithoutReplacement, 50, true, 50.0 / 84}, {WithoutReplacement, 2000, false, 2000.0 / 84}}
	for _, c := range cases {
		th, err := TheoryFor(c.s, 2700, 32, c.steps)
		if err != nil {
			t.Fatal(err)
		}
		if th.Recursion != c.recursion || th.StepsPerEpoch != 84 || !approxEq(th.Epochs, c.epochs, 1e-12) || th.Text == "" {
			t.Errorf("%s over %d steps: %+v", c.s, c.steps, th)
		}
	}
}

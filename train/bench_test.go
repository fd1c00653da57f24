package train

import (
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// BenchmarkStepProjection measures one plain-SGD training step of the
// default CNN and transformer with and without projecting the new
// parameters on 64 directions, the logging the ensembles do every step,
// and the projection alone. The overhead is project64/plain - 1, or
// projection-only/plain (target: under 5%). Projections are computed a
// block of 32 steps at a time, so run a multiple of 32 steps:
//
//	go test -run '^$' -bench StepProjection -benchtime 320x -count 5 ./train/
func BenchmarkStepProjection(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name  string
		cfg   models.Config
		shape models.Shape
		batch *data.Batch
	}{
		{"cnn", models.Config{Kind: "cnn"}, models.Shape{Image: []int{3, 32, 32}, Classes: 10}, randomBatch(rng, 128, 3*32*32, 0, 10)},
		{"transformer", models.Config{Kind: "transformer"}, models.Shape{Vocab: 65}, randomBatch(rng, 32, 0, 64, 65)},
	}
	for _, c := range cases {
		m, err := models.New(c.cfg, c.shape, 1)
		if err != nil {
			b.Fatal(err)
		}
		p := m.NumParams()
		w0 := make([]float64, p)
		m.Params(w0)
		dirs := make([][]float64, 64)
		for i := range dirs {
			dirs[i] = make([]float64, p)
			for j := range dirs[i] {
				dirs[i][j] = rng.NormFloat64()
			}
		}
		proj, _ := NewProjector(w0, dirs)
		block := newProjectionBlock(proj)
		b.Run(c.name+"/projection-only", func(b *testing.B) {
			w := append([]float64(nil), w0...)
			for i := 0; i < b.N; i++ {
				w[i%p] += 1e-6
				block.add(w)
				if block.full() {
					block.project()
				}
			}
		})
		for _, project := range []bool{false, true} {
			name := c.name + "/plain"
			if project {
				name = c.name + "/project64"
			}
			b.Run(name, func(b *testing.B) {
				w := append([]float64(nil), w0...)
				g := make([]float64, p)
				for i := 0; i < b.N; i++ {
					if _, err := m.Grad(c.batch, g); err != nil {
						b.Fatal(err)
					}
					for j := range w {
						w[j] -= 1e-4 * g[j]
					}
					m.SetParams(w)
					m.Params(w)
					if project {
						// What a trajectory does per logged step.
						block.add(w)
						if block.full() {
							block.project()
						}
					}
				}
			})
		}
	}
}

func randomBatch(rng *rand.Rand, n, features, context, classes int) *data.Batch {
	b := &data.Batch{N: n}
	if features > 0 {
		b.X = make([]float64, n*features)
		for i := range b.X {
			b.X[i] = rng.NormFloat64()
		}
		b.Labels = make([]int, n)
	} else {
		b.Tokens = make([]int, n*context)
		b.Labels = make([]int, n*context)
		for i := range b.Tokens {
			b.Tokens[i] = rng.IntN(classes)
		}
	}
	for i := range b.Labels {
		b.Labels[i] = rng.IntN(classes)
	}
	return b
}

package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/data"
)

// arch is one network architecture: its parameters and how to build its
// graph for a batch of n examples.
type arch interface {
	params() []paramSpec
	// build adds the network for n examples to b's graph and returns the
	// output logits (or predictions) and the scalar mean loss.
	build(b *builder, n int) (out, loss *G.Node, err error)
	// classifier reports whether Eval should score argmax accuracy of out
	// against the batch labels.
	classifier() bool
}

// paramSpec declares one parameter tensor and its initial distribution.
type paramSpec struct {
	name    string
	shape   []int
	std     float64 // normal(0, std) when > 0
	uniform float64 // else uniform on [-uniform, uniform) when > 0
	fill    float64 // else constant
}

func (p paramSpec) size() int {
	n := 1
	for _, d := range p.shape {
		n *= d
	}
	return n
}

// graphModel runs an arch through Gorgonia. The parameter tensors are shared
// by every graph instance, so one SetParams updates all batch sizes at once.
type graphModel struct {
	arch    arch
	dtype   tensor.Dtype
	chunk   int
	specs   []paramSpec
	tensors []*tensor.Dense
	info    []TensorInfo
	nparams int

	// instances caches one compiled graph per (batch size, with gradient).
	instances map[instanceKey]*instance
	sub       data.Batch // reused view for chunking
	chunkGrad []float64
}

// HasKinks reports whether the network has ReLU or max-pool kinks (the
// CNN, a ReLU MLP): see Kinked.
func (m *graphModel) HasKinks() bool {
	switch a := m.arch.(type) {
	case *cnn, opsCNN:
		return true
	case *mlp:
		return a.cfg.Activation == "relu"
	}
	return false
}

type instanceKey struct {
	n    int
	grad bool
}

func newGraphModel(a arch, dtype string, chunk int, seed uint64) (*graphModel, error) {
	m := &graphModel{arch: a, chunk: chunk, instances: map[instanceKey]*instance{}}
	switch dtype {
	case "float32":
		m.dtype = tensor.Float32
	case "float64":
		m.dtype = tensor.Float64
	}
	specs := a.params()
	all := initialParams(specs, seed)
	off := 0
	for _, p := range specs {
		vals := all[off : off+p.size()]
		t := tensor.New(tensor.Of(m.dtype), tensor.WithShape(p.shape...))
		setData(t, vals)
		m.specs = append(m.specs, p)
		m.tensors = append(m.tensors, t)
		m.info = append(m.info, TensorInfo{Name: p.name, Shape: append([]int(nil), p.shape...), Offset: off, Size: p.size()})
		off += p.size()
	}
	m.nparams = off
	m.chunkGrad = make([]float64, off)
	return m, nil
}

// initialParams draws the initial flat parameter vector: one sequential
// stream over the parameters in declaration order, so equal seeds give
// equal models, and Gorgonia's clock-seeded initialisers are never used.
func initialParams(specs []paramSpec, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f64656c696e69))
	var vals []float64
	for _, p := range specs {
		for range p.size() {
			switch {
			case p.std > 0:
				vals = append(vals, p.std*rng.NormFloat64())
			case p.uniform > 0:
				vals = append(vals, p.uniform*(2*rng.Float64()-1))
			default:
				vals = append(vals, p.fill)
			}
		}
	}
	return vals
}

func (m *graphModel) NumParams() int        { return m.nparams }
func (m *graphModel) Tensors() []TensorInfo { return m.info }
func (m *graphModel) DType() string         { return m.dtype.String() }

func (m *graphModel) Params(dst []float64) {
	for i, t := range m.tensors {
		o := m.info[i].Offset
		getData(t, dst[o:o+m.info[i].Size])
	}
}

func (m *graphModel) SetParams(src []float64) {
	for i, t := range m.tensors {
		o := m.info[i].Offset
		setData(t, src[o:o+m.info[i].Size])
	}
}

func (m *graphModel) Grad(b *data.Batch, grad []float64) (float64, error) {
	if len(grad) != m.nparams {
		return 0, fmt.Errorf("gradient buffer has %d entries, model has %d parameters", len(grad), m.nparams)
	}
	if b.N < 1 {
		return 0, fmt.Errorf("empty batch")
	}
	if b.N <= m.chunk {
		return m.gradChunk(b, grad, 1, false)
	}
	clear(grad)
	var loss float64
	for lo := 0; lo < b.N; lo += m.chunk {
		hi := min(lo+m.chunk, b.N)
		sliceBatch(b, lo, hi, &m.sub)
		w := float64(hi-lo) / float64(b.N)
		l, err := m.gradChunk(&m.sub, grad, w, true)
		if err != nil {
			return 0, err
		}
		loss += w * l
	}
	return loss, nil
}

// gradChunk runs one graph pass; it writes (or, with accumulate, adds)
// weight times the chunk's gradient into grad.
func (m *graphModel) gradChunk(b *data.Batch, grad []float64, weight float64, accumulate bool) (float64, error) {
	inst, err := m.instance(b.N, true)
	if err != nil {
		return 0, err
	}
	if err := inst.run(b); err != nil {
		return 0, err
	}
	for i, p := range inst.params {
		gv, err := p.Grad()
		if err != nil {
			return 0, fmt.Errorf("gradient of %s: %w", m.info[i].Name, err)
		}
		o := m.info[i].Offset
		dst := grad[o : o+m.info[i].Size]
		switch d := gv.Data().(type) {
		case []float32:
			if accumulate {
				for j, v := range d {
					dst[j] += weight * float64(v)
				}
			} else {
				for j, v := range d {
					dst[j] = weight * float64(v)
				}
			}
		case []float64:
			if accumulate {
				for j, v := range d {
					dst[j] += weight * v
				}
			} else {
				for j, v := range d {
					dst[j] = weight * v
				}
			}
		}
	}
	return inst.lossValue(), nil
}

func (m *graphModel) Eval(b *data.Batch) (Eval, error) {
	if b.N < 1 {
		return Eval{}, fmt.Errorf("empty batch")
	}
	var e Eval
	for lo := 0; lo < b.N; lo += m.chunk {
		hi := min(lo+m.chunk, b.N)
		sub := b
		if lo > 0 || hi < b.N {
			sliceBatch(b, lo, hi, &m.sub)
			sub = &m.sub
		}
		inst, err := m.instance(sub.N, false)
		if err != nil {
			return Eval{}, err
		}
		if err := inst.run(sub); err != nil {
			return Eval{}, err
		}
		e.Loss += inst.lossValue() * float64(sub.N) / float64(b.N)
		if m.arch.classifier() {
			c, n := argmaxCorrect(inst.outValue, sub.Labels)
			e.Correct += c
			e.Count += n
		}
	}
	return e, nil
}

// argmaxCorrect counts rows of out (shape rows x classes) whose argmax equals
// the label of that row.
func argmaxCorrect(out G.Value, labels []int) (correct, count int) {
	shape := out.Shape()
	k := shape[len(shape)-1]
	var row func(i int) int
	switch d := out.Data().(type) {
	case []float32:
		row = func(i int) int { return argmax(d[i*k : (i+1)*k]) }
	case []float64:
		row = func(i int) int { return argmax(d[i*k : (i+1)*k]) }
	}
	for i, y := range labels {
		if row(i) == y {
			correct++
		}
	}
	return correct, len(labels)
}

func argmax[T float32 | float64](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// instance is one compiled graph for a fixed batch size.
type instance struct {
	vm       G.VM
	params   []*G.Node
	inputs   []*input
	lossRead G.Value
	outValue G.Value
}

func (m *graphModel) instance(n int, grad bool) (*instance, error) {
	key := instanceKey{n, grad}
	if inst, ok := m.instances[key]; ok {
		return inst, nil
	}
	g := G.NewGraph()
	b := &builder{g: g, dtype: m.dtype, params: map[string]*G.Node{}}
	inst := &instance{}
	for i, p := range m.specs {
		node := G.NewTensor(g, m.dtype, len(p.shape), G.WithShape(p.shape...), G.WithName(p.name), G.WithValue(m.tensors[i]))
		b.params[p.name] = node
		inst.params = append(inst.params, node)
	}
	out, loss, err := m.arch.build(b, n)
	if err != nil {
		return nil, fmt.Errorf("building graph for batch %d: %w", n, err)
	}
	// Intermediate buffers are reused in place by the tape machine, so the
	// values we read afterwards are copied out by Read nodes.
	G.Read(loss, &inst.lossRead)
	if !grad && m.arch.classifier() {
		G.Read(out, &inst.outValue)
	}
	if grad {
		if _, err := G.Grad(loss, inst.params...); err != nil {
			return nil, fmt.Errorf("symbolic gradient for batch %d: %w", n, err)
		}
	}
	inst.inputs = b.inputs
	inst.vm = G.NewTapeMachine(g)
	m.instances[key] = inst
	return inst, nil
}

func (inst *instance) run(b *data.Batch) error {
	for _, in := range inst.inputs {
		if err := in.fill(b); err != nil {
			return err
		}
	}
	defer inst.vm.Reset()
	if err := inst.vm.RunAll(); err != nil {
		return fmt.Errorf("running graph: %w", err)
	}
	return nil
}

func (inst *instance) lossValue() float64 {
	switch v := inst.lossRead.Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

// sliceBatch makes dst a view of examples [lo, hi) of b.
func sliceBatch(b *data.Batch, lo, hi int, dst *data.Batch) {
	per := func(n int) int { return n / b.N }
	dst.N = hi - lo
	dst.X, dst.Tokens, dst.Labels, dst.Targets = nil, nil, nil, nil
	if k := per(len(b.X)); k > 0 {
		dst.X = b.X[lo*k : hi*k]
	}
	if k := per(len(b.Tokens)); k > 0 {
		dst.Tokens = b.Tokens[lo*k : hi*k]
	}
	if k := per(len(b.Labels)); k > 0 {
		dst.Labels = b.Labels[lo*k : hi*k]
	}
	if k := per(len(b.Targets)); k > 0 {
		dst.Targets = b.Targets[lo*k : hi*k]
	}
}

func setData(t *tensor.Dense, src []float64) {
	switch d := t.Data().(type) {
	case []float32:
		for i, v := range src {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, src)
	}
}

func getData(t *tensor.Dense, dst []float64) {
	switch d := t.Data().(type) {
	case []float32:
		for i, v := range d {
			dst[i] = float64(v)
		}
	case []float64:
		copy(dst, d)
	}
}

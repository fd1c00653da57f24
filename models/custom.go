package models

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/gop"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// GraphNet is a network its user defines as a Gorgonia graph. FromGraph
// turns it into a Model: the declared parameters become the flat vector (in
// declaration order), and Build is called once for each batch size the
// model meets (at most Chunk examples at a time) to add the network for n
// examples to a fresh graph.
//
// A network built with the Graph's ReLU and MaxPool2D records its
// activation pattern, so the model is a Piecewise model whose
// finite-difference Hessian-vector products (package probe) hold the
// pattern fixed and stay on one smooth piece. Gorgonia's own G.Rectify
// and G.MaxPool2D are not recorded, and differences through their kinks
// are wrong by large factors (see Piecewise), so FromGraph refuses them
// unless GraphOptions.UnrecordedKinks is set.
type GraphNet struct {
	// Name appears in errors ("graph" if empty); GraphModelFunc checks it
	// against the run config's model name.
	Name string
	// Params declares the parameter tensors, in flat-vector order.
	Params []Param
	// Build adds the network for n examples to g and returns the output
	// (the logits, for a classifier) and the scalar mean loss over the n
	// examples. It must build the same network for every n.
	Build func(g *Graph, n int) (out, loss *G.Node, err error)
	// Classifier says out holds one row of logits per example (per token
	// for text), so Eval scores argmax accuracy against the labels.
	Classifier bool
}

// Param declares one parameter tensor and how it starts.
type Param struct {
	Name  string
	Shape []int
	Init  Init
}

// Init is a parameter's initial distribution, drawn from the model seed:
// normal with standard deviation Std if Std > 0, else uniform on [-Bound,
// Bound) if Bound > 0, else every element equal to Value.
type Init struct {
	Std   float64
	Bound float64
	Value float64
}

// GraphOptions are FromGraph's settings; the zero value gives the defaults.
type GraphOptions struct {
	DType string // "float32" (default) or "float64"
	Chunk int    // most examples run through the graph at once; 0 means 256
	// Context is the number of tokens per example of text data (Shape.Vocab
	// set); required there, unused otherwise.
	Context int
	// UnrecordedKinks accepts Gorgonia ops with kinks the model cannot
	// hold fixed: comparisons (G.Rectify, G.LeakyRelu), G.MaxPool2D, max
	// reductions, abs. FromGraph refuses them otherwise, since the
	// survey's finite-difference Hessian would difference gradients
	// straight through their kinks; Graph.ReLU and Graph.MaxPool2D are the
	// recording replacements.
	UnrecordedKinks bool
}

// FromGraph returns the Model of net for data of the given shape, its
// parameters initialised from seed: equal arguments give equal parameters.
// It builds and differentiates the graph for one example, so a Build that
// fails, a missing or non-scalar loss or an undeclared parameter is
// reported here rather than in the first Grad.
func FromGraph(net GraphNet, shape Shape, opts GraphOptions, seed uint64) (Model, error) {
	name := net.Name
	if name == "" {
		name = "graph"
	}
	m, err := newCustomModel(net, shape, opts, seed)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	return m, nil
}

// GraphModelFunc returns a constructor of net's model with the signature of
// train.ModelFunc, for running net through the training, survey and
// ensembles of a run whose config names it (model kind custom): the dtype
// and chunk come from c (where set, else from opts), the text context from
// opts. A config naming another network is refused.
func GraphModelFunc(net GraphNet, opts GraphOptions) func(c Config, s Shape, seed uint64) (Model, error) {
	return func(c Config, s Shape, seed uint64) (Model, error) {
		if c.Name != "" && net.Name != "" && c.Name != net.Name {
			return nil, fmt.Errorf("the config's model is %q, this constructor builds %q", c.Name, net.Name)
		}
		o := opts
		if c.DType != "" {
			o.DType = c.DType
		}
		if c.Chunk != 0 {
			o.Chunk = c.Chunk
		}
		return FromGraph(net, s, o, seed)
	}
}

// dataKind is what Graph.Input holds.
type dataKind int

const (
	tabularData dataKind = iota // (n, Inputs) features
	imageData                   // (n, C, H, W) images
	textData                    // (n*Context, Vocab) one-hot tokens
)

// customModel is a GraphNet run through Gorgonia. graphModel keeps the
// parameter tensors, shared by every compiled graph; the graphs themselves
// are customInstances, which also hold the recording ops.
type customModel struct {
	*graphModel
	net      GraphNet
	kind     dataKind
	shape    Shape
	context  int
	classes  int // width of the one-hot labels; 0 without classes
	insts    map[instanceKey]*customInstance
	per      int // pattern units per example
	built    bool
	declared string // the parameter names, for errors
	kinksOK  bool   // GraphOptions.UnrecordedKinks
}

// customInstance is one compiled graph with its recording ops in build
// order, which is also their order in a Pattern's bytes.
type customInstance struct {
	*instance
	recs  []recorder
	state *patternState
}

// netArch lends a GraphNet's parameters to graphModel; the graphs are
// built by customModel.instance.
type netArch struct {
	specs []paramSpec
	class bool
}

func (a netArch) params() []paramSpec { return a.specs }
func (a netArch) classifier() bool    { return a.class }
func (a netArch) build(*builder, int) (out, loss *G.Node, err error) {
	return nil, nil, errors.New("models: a GraphNet is built by its customModel") // never called
}

func newCustomModel(net GraphNet, shape Shape, opts GraphOptions, seed uint64) (*customModel, error) {
	if opts.DType == "" {
		opts.DType = "float32"
	}
	if opts.Chunk == 0 {
		opts.Chunk = 256
	}
	if opts.DType != "float32" && opts.DType != "float64" {
		return nil, fmt.Errorf("dtype %q: want float32 or float64", opts.DType)
	}
	if opts.Chunk < 1 {
		return nil, fmt.Errorf("chunk %d: must be positive", opts.Chunk)
	}
	if net.Build == nil {
		return nil, errors.New("no Build function")
	}
	specs, err := paramSpecs(net.Params)
	if err != nil {
		return nil, err
	}
	m := &customModel{net: net, shape: shape, insts: map[instanceKey]*customInstance{}, kinksOK: opts.UnrecordedKinks}
	switch {
	case len(shape.Image) > 0:
		if len(shape.Image) != 3 || slices.Min(shape.Image) < 1 {
			return nil, fmt.Errorf("image shape %v: want positive (C, H, W)", shape.Image)
		}
		m.kind, m.classes = imageData, shape.Classes
	case shape.Vocab > 0:
		if opts.Context < 1 {
			return nil, fmt.Errorf("text data needs GraphOptions.Context, the tokens per example (got %d)", opts.Context)
		}
		m.kind, m.classes, m.context = textData, shape.Vocab, opts.Context
	case shape.Inputs > 0:
		m.kind, m.classes = tabularData, shape.Classes
	default:
		return nil, fmt.Errorf("data shape %+v has no inputs: want Inputs, Image or Vocab", shape)
	}
	if net.Classifier && m.classes < 2 {
		return nil, fmt.Errorf("a classifier needs at least 2 classes, the data have %d", m.classes)
	}
	names := make([]string, len(specs))
	for i, p := range specs {
		names[i] = p.name
	}
	m.declared = strings.Join(names, ", ")
	if len(names) > 8 {
		m.declared = strings.Join(names[:8], ", ") + ", ..."
	}
	if m.graphModel, err = newGraphModel(netArch{specs, net.Classifier}, opts.DType, opts.Chunk, seed); err != nil {
		return nil, err
	}
	if _, err := m.instance(1, true); err != nil {
		return nil, err
	}
	return m, nil
}

// paramSpecs checks the declared parameters and converts them.
func paramSpecs(ps []Param) ([]paramSpec, error) {
	if len(ps) == 0 {
		return nil, errors.New("declares no parameters")
	}
	seen := map[string]bool{}
	specs := make([]paramSpec, len(ps))
	for i, p := range ps {
		switch {
		case p.Name == "":
			return nil, fmt.Errorf("parameter %d has no name", i)
		case seen[p.Name]:
			return nil, fmt.Errorf("parameter %q declared twice", p.Name)
		case len(p.Shape) == 0 || slices.Min(p.Shape) < 1:
			return nil, fmt.Errorf("parameter %q: shape %v must have positive dimensions", p.Name, p.Shape)
		case p.Init.Std < 0 || p.Init.Bound < 0:
			return nil, fmt.Errorf("parameter %q: init std %g and bound %g must not be negative", p.Name, p.Init.Std, p.Init.Bound)
		case p.Init.Std > 0 && p.Init.Bound > 0:
			return nil, fmt.Errorf("parameter %q: init sets both std %g and bound %g; choose one", p.Name, p.Init.Std, p.Init.Bound)
		}
		seen[p.Name] = true
		specs[i] = paramSpec{name: p.Name, shape: slices.Clone(p.Shape), std: p.Init.Std, uniform: p.Init.Bound, fill: p.Init.Value}
	}
	return specs, nil
}

// buildPanic carries an error out of a Graph method that returns only a
// node (Param, Labels, ...) to customModel.build, which returns it.
type buildPanic struct{ err error }

// build calls the user's Build, turning a buildPanic into an error.
func (m *customModel) build(g *Graph, n int) (out, loss *G.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			bp, ok := r.(buildPanic)
			if !ok {
				panic(r)
			}
			err = bp.err
		}
	}()
	return m.net.Build(g, n)
}

func (m *customModel) instance(n int, grad bool) (*customInstance, error) {
	key := instanceKey{n, grad}
	if inst, ok := m.insts[key]; ok {
		return inst, nil
	}
	g := &Graph{m: m, n: n, b: &builder{g: G.NewGraph(), dtype: m.dtype, params: map[string]*G.Node{}},
		state: &patternState{}, procs: runtime.GOMAXPROCS(0)}
	inst := &customInstance{instance: &instance{}, state: g.state}
	for i, p := range m.specs {
		node := G.NewTensor(g.b.g, m.dtype, len(p.shape), G.WithShape(p.shape...), G.WithName(p.name), G.WithValue(m.tensors[i]))
		g.b.params[p.name] = node
		inst.params = append(inst.params, node)
	}
	out, loss, err := m.build(g, n)
	if err != nil {
		return nil, fmt.Errorf("building the graph for %d examples: %w", n, err)
	}
	if err := m.checkBuilt(g, out, loss); err != nil {
		return nil, fmt.Errorf("graph for %d examples: %w", n, err)
	}
	G.Read(loss, &inst.lossRead)
	if !grad && m.net.Classifier {
		G.Read(out, &inst.outValue)
	}
	if grad {
		if _, err := G.Grad(loss, inst.params...); err != nil {
			return nil, fmt.Errorf("gradient of the graph for %d examples: %w", n, err)
		}
	}
	inst.recs = g.recs
	per := 0
	for _, r := range g.recs {
		per += r.patternUnits()
	}
	if !m.built {
		m.per, m.built = per, true
	} else if per != m.per {
		return nil, fmt.Errorf("the graph for %d examples records %d pattern units per example, an earlier one %d: Build must build the same network for every n", n, per, m.per)
	}
	inst.inputs = g.b.inputs
	inst.vm = G.NewTapeMachine(g.b.g)
	m.insts[key] = inst
	return inst, nil
}

// checkBuilt reports what is wrong with the nodes Build returned.
func (m *customModel) checkBuilt(g *Graph, out, loss *G.Node) error {
	if loss == nil {
		return errors.New("Build returned no loss node")
	}
	if loss.Graph() != g.b.g {
		return errors.New("the loss node belongs to another graph than the one Build was given")
	}
	if !loss.IsScalar() {
		return fmt.Errorf("the loss has shape %v, want a scalar (the mean loss over the examples)", loss.Shape())
	}
	if loss.Dtype() != m.dtype {
		return fmt.Errorf("the loss is %v, the model %v", loss.Dtype(), m.dtype)
	}
	reached := map[*G.Node]bool{}
	for n := range G.WalkGraph(loss) {
		reached[n] = true
	}
	for _, p := range m.specs {
		if !reached[g.b.params[p.name]] {
			return fmt.Errorf("the loss does not depend on parameter %q", p.name)
		}
	}
	if !m.kinksOK {
		for n := range reached {
			if n.Op() != nil && unrecordedKink(n.Op().String()) {
				return fmt.Errorf("node %s is Gorgonia's %q, a kink the model cannot hold fixed for the survey's Hessian: use Graph.ReLU and Graph.MaxPool2D, or set GraphOptions.UnrecordedKinks", n.Name(), n.Op())
			}
		}
	}
	if !m.net.Classifier {
		return nil
	}
	if out == nil {
		return errors.New("a classifier's Build returned no output node (the logits)")
	}
	if want := (tensor.Shape{g.Rows(), m.classes}); !out.Shape().Eq(want) {
		return fmt.Errorf("the output has shape %v, want %v: one row of logits per example (per token for text)", out.Shape(), want)
	}
	return nil
}

// unrecordedKink reports whether a Gorgonia op, by its String, switches
// between smooth pieces: a comparison ("> true", ">= false", ...), a
// max-pool, a max or min reduction, an absolute value.
func unrecordedKink(op string) bool {
	first, _, _ := strings.Cut(op, " ")
	switch first {
	case ">", ">=", "<", "<=", "==", "!=", "abs":
		return true
	}
	for _, prefix := range []string{"MaxPool{", "MaxAlong[", "MinAlong["} {
		if strings.HasPrefix(op, prefix) {
			return true
		}
	}
	return false
}

// run runs the graph on b, examples [lo, lo+b.N) of pat's batch: frozen
// to pat if pat is not nil and not record, recording into it if record.
func (ci *customInstance) run(b *data.Batch, pat *Pattern, lo int, record bool) error {
	ci.state.frozen = pat != nil && !record
	if ci.state.frozen {
		ci.movePattern(pat, lo, b.N, false)
	}
	if err := ci.instance.run(b); err != nil {
		return err
	}
	if record {
		ci.movePattern(pat, lo, b.N, true)
	}
	return nil
}

// movePattern copies the ops' masks of n examples into pat at example lo
// (record) or out of it.
func (ci *customInstance) movePattern(pat *Pattern, lo, n int, record bool) {
	off := 0
	for _, r := range ci.recs {
		u := r.patternUnits()
		kern.CopyPattern(r.patternMask(), pat.bytes[lo*pat.per:], n, pat.per, off, u, record)
		off += u
	}
}

// chunks calls fn on consecutive pieces of at most Chunk examples of b,
// with the index of each piece's first example.
func (m *customModel) chunks(b *data.Batch, fn func(sub *data.Batch, lo int) error) error {
	if b.N < 1 {
		return errors.New("empty batch")
	}
	if err := m.check(b); err != nil {
		return err
	}
	if b.N <= m.chunk {
		return fn(b, 0)
	}
	for lo := 0; lo < b.N; lo += m.chunk {
		sliceBatch(b, lo, min(lo+m.chunk, b.N), &m.sub)
		if err := fn(&m.sub, lo); err != nil {
			return err
		}
	}
	return nil
}

// check reports a batch whose inputs do not fit the data shape, before it
// is cut into chunks that would hide the mismatch.
func (m *customModel) check(b *data.Batch) error {
	switch m.kind {
	case textData:
		if len(b.Tokens) != b.N*m.context {
			return fmt.Errorf("batch of %d examples has %d tokens, want %d per example", b.N, len(b.Tokens), m.context)
		}
	default:
		per := m.shape.Inputs
		if m.kind == imageData {
			per = m.shape.Image[0] * m.shape.Image[1] * m.shape.Image[2]
		}
		if len(b.X) != b.N*per {
			return fmt.Errorf("batch of %d examples has %d input values, want %d per example", b.N, len(b.X), per)
		}
	}
	return nil
}

func (m *customModel) Grad(b *data.Batch, grad []float64) (float64, error) {
	return m.grad(b, grad, nil)
}

func (m *customModel) GradFrozen(b *data.Batch, pat *Pattern, grad []float64) (float64, error) {
	if pat == nil || pat.n != b.N || pat.per != m.per {
		return 0, fmt.Errorf("activation pattern %v does not fit a batch of %d examples x %d units", patternDims(pat), b.N, m.per)
	}
	return m.grad(b, grad, pat)
}

func patternDims(p *Pattern) string {
	if p == nil {
		return "(none)"
	}
	return fmt.Sprintf("of %d examples x %d units", p.n, p.per)
}

// grad is Grad, frozen to pat if pat is not nil.
func (m *customModel) grad(b *data.Batch, grad []float64, pat *Pattern) (float64, error) {
	if len(grad) != m.nparams {
		return 0, fmt.Errorf("gradient buffer has %d entries, model has %d parameters", len(grad), m.nparams)
	}
	clear(grad)
	var loss float64
	err := m.chunks(b, func(sub *data.Batch, lo int) error {
		inst, err := m.instance(sub.N, true)
		if err != nil {
			return err
		}
		if err := inst.run(sub, pat, lo, false); err != nil {
			return err
		}
		w := float64(sub.N) / float64(b.N)
		for i, p := range inst.params {
			gv, err := p.Grad()
			if err != nil {
				return fmt.Errorf("gradient of %s: %w", m.info[i].Name, err)
			}
			o := m.info[i].Offset
			addScaled(grad[o:o+m.info[i].Size], gv, w)
		}
		loss += w * inst.lossValue()
		return nil
	})
	return loss, err
}

// addScaled adds w times the elements of v to dst.
func addScaled(dst []float64, v G.Value, w float64) {
	switch d := v.Data().(type) {
	case []float32:
		for j, x := range d {
			dst[j] += w * float64(x)
		}
	case []float64:
		for j, x := range d {
			dst[j] += w * x
		}
	}
}

func (m *customModel) Eval(b *data.Batch) (Eval, error) {
	var e Eval
	err := m.chunks(b, func(sub *data.Batch, lo int) error {
		inst, err := m.instance(sub.N, false)
		if err != nil {
			return err
		}
		if err := inst.run(sub, nil, lo, false); err != nil {
			return err
		}
		e.Loss += inst.lossValue() * float64(sub.N) / float64(b.N)
		if m.net.Classifier {
			c, n := argmaxCorrect(inst.outValue, sub.Labels)
			e.Correct += c
			e.Count += n
		}
		return nil
	})
	return e, err
}

func (m *customModel) RecordPattern(b *data.Batch) (*Pattern, error) {
	pat := &Pattern{n: b.N, per: m.per, bytes: make([]uint8, b.N*m.per)}
	if m.per == 0 {
		// Nothing to record: skip the forward pass, still refuse a batch
		// the network cannot take.
		if b.N < 1 {
			return nil, errors.New("empty batch")
		}
		return pat, m.check(b)
	}
	err := m.chunks(b, func(sub *data.Batch, lo int) error {
		inst, err := m.instance(sub.N, false)
		if err != nil {
			return err
		}
		return inst.run(sub, pat, lo, true)
	})
	if err != nil {
		return nil, err
	}
	return pat, nil
}

// Graph is what a GraphNet's Build receives: the Gorgonia graph for n
// examples, its inputs and parameters, and ops over sgdyn's kernels. The
// methods that return only a node (Input, Labels, Targets, Param) stop
// Build on misuse; FromGraph then returns the error.
type Graph struct {
	m     *customModel
	n     int
	b     *builder
	state *patternState
	recs  []recorder
	procs int
	nops  int // ops made so far, for unique names

	x, labels, targets *G.Node
}

// ExprGraph is the Gorgonia graph to add nodes to.
func (g *Graph) ExprGraph() *G.ExprGraph { return g.b.g }

// DType is the element type of every node: tensor.Float32 or Float64.
func (g *Graph) DType() tensor.Dtype { return g.b.dtype }

// Rows is the number of rows of Labels: the examples n, or n*Context
// tokens for text.
func (g *Graph) Rows() int {
	if g.m.kind == textData {
		return g.n * g.m.context
	}
	return g.n
}

// Input is the data of the n examples: (n, Inputs) features, (n, C, H, W)
// images, or for text the one-hot tokens (n*Context, Vocab), row
// e*Context+t holding token t of example e.
func (g *Graph) Input() *G.Node {
	if g.x == nil {
		s := g.m.shape
		switch g.m.kind {
		case imageData:
			g.x = g.b.input(fromX, "x", tensor.Shape{g.n, s.Image[0], s.Image[1], s.Image[2]}, 0)
		case textData:
			g.x = g.b.input(fromTokens, "tokens", tensor.Shape{g.n * g.m.context, s.Vocab}, s.Vocab)
		default:
			g.x = g.b.input(fromX, "x", tensor.Shape{g.n, s.Inputs}, 0)
		}
	}
	return g.x
}

// Labels is the one-hot labels (Rows, classes): the class of each example,
// or for text the next token at each position.
func (g *Graph) Labels() *G.Node {
	if g.m.classes < 1 {
		panic(buildPanic{errors.New("Labels: the data have no classes")})
	}
	if g.labels == nil {
		g.labels = g.b.input(fromLabels, "labels", tensor.Shape{g.Rows(), g.m.classes}, g.m.classes)
	}
	return g.labels
}

// Targets is the regression targets (n) of tabular or image data.
func (g *Graph) Targets() *G.Node {
	if g.m.kind == textData {
		panic(buildPanic{errors.New("Targets: text data have labels, not targets")})
	}
	if g.targets == nil {
		g.targets = g.b.input(fromTargets, "targets", tensor.Shape{g.n}, 0)
	}
	return g.targets
}

// Param is the node of the declared parameter name.
func (g *Graph) Param(name string) *G.Node {
	p, ok := g.b.params[name]
	if !ok {
		panic(buildPanic{fmt.Errorf("parameter %q is not declared (declared: %s)", name, g.m.declared)})
	}
	return p
}

// Scalar is the constant v in the graph's element type.
func (g *Graph) Scalar(v float64) *G.Node { return g.b.scalar(v) }

// checkNode reports a node Build passed that the graph cannot use.
func (g *Graph) checkNode(what string, x *G.Node) error {
	if x == nil {
		return fmt.Errorf("%s: nil node", what)
	}
	if x.Graph() != g.b.g {
		return fmt.Errorf("%s: node %s belongs to another graph", what, x.Name())
	}
	if x.Dtype() != g.b.dtype {
		return fmt.Errorf("%s: node %s is %v, the graph %v", what, x.Name(), x.Dtype(), g.b.dtype)
	}
	return nil
}

// ReLU is max(x, 0) for x of any shape whose elements are example-major
// (n examples, or Rows rows, first). It records which units pass, so the
// model can hold them fixed (Piecewise).
func (g *Graph) ReLU(x *G.Node) (*G.Node, error) {
	if err := g.checkNode("ReLU", x); err != nil {
		return nil, err
	}
	shape := x.Shape().Clone()
	total := shape.TotalSize()
	if len(shape) == 0 || total%g.n != 0 || shape[0]%g.n != 0 {
		return nil, fmt.Errorf("ReLU of shape %v: its first dimension must be the %d examples (or a multiple), since the pattern is kept per example", shape, g.n)
	}
	id := g.nops
	g.nops++
	var op G.Op
	if g.b.dtype == tensor.Float32 {
		s := &reluStage[float32]{id: id, n: g.n, units: total / g.n, shape: shape, state: g.state,
			mask: make([]uint8, total), y: gop.Buffer[float32](shape...)}
		op, g.recs = reluOp[float32]{s}, append(g.recs, s)
	} else {
		s := &reluStage[float64]{id: id, n: g.n, units: total / g.n, shape: shape, state: g.state,
			mask: make([]uint8, total), y: gop.Buffer[float64](shape...)}
		op, g.recs = reluOp[float64]{s}, append(g.recs, s)
	}
	y, err := G.ApplyOp(op, x)
	if err != nil {
		return nil, fmt.Errorf("ReLU: %w", err)
	}
	return y, nil
}

// MaxPool2D is max-pooling of x (n, C, H, W) over size x size windows
// moved by stride, without padding, to (n, C, (H-size)/stride+1,
// (W-size)/stride+1). It records each window's winner, so the model can
// hold them fixed (Piecewise). Ties go to the first maximum in row-major
// window order.
func (g *Graph) MaxPool2D(x *G.Node, size, stride int) (*G.Node, error) {
	if err := g.checkNode("MaxPool2D", x); err != nil {
		return nil, err
	}
	s := x.Shape()
	switch {
	case len(s) != 4 || s[0] != g.n:
		return nil, fmt.Errorf("MaxPool2D of shape %v: want (%d, C, H, W)", s, g.n)
	case size < 1 || size > 16 || stride < 1:
		return nil, fmt.Errorf("MaxPool2D size %d, stride %d: want size in [1, 16] and stride >= 1", size, stride)
	case s[2] < size || s[3] < size:
		return nil, fmt.Errorf("MaxPool2D of shape %v: window %d larger than the image", s, size)
	}
	id := g.nops
	g.nops++
	ho, wo := (s[2]-size)/stride+1, (s[3]-size)/stride+1
	parts := gop.Workers(g.n, s[1]*ho*wo*size*size, g.procs)
	var op G.Op
	if g.b.dtype == tensor.Float32 {
		st := newPoolStage[float32](id, g.n, s[1], s[2], s[3], size, stride, ho, wo, parts, g.state)
		op, g.recs = poolOp[float32]{st}, append(g.recs, st)
	} else {
		st := newPoolStage[float64](id, g.n, s[1], s[2], s[3], size, stride, ho, wo, parts, g.state)
		op, g.recs = poolOp[float64]{st}, append(g.recs, st)
	}
	y, err := G.ApplyOp(op, x)
	if err != nil {
		return nil, fmt.Errorf("MaxPool2D: %w", err)
	}
	return y, nil
}

func newPoolStage[T float](id, n, c, h, w, size, stride, ho, wo, parts int, state *patternState) *poolStage[T] {
	s := &poolStage[T]{id: id, n: n, c: c, h: h, w: w, size: size, stride: stride, ho: ho, wo: wo, parts: parts, state: state,
		inShape: tensor.Shape{n, c, h, w}, outShapeOf: tensor.Shape{n, c, ho, wo}}
	s.arg = make([]uint8, n*c*ho*wo)
	s.y = gop.Buffer[T](s.outShapeOf...)
	return s
}

// Dense is x weight + bias for x (m, in), weight (in, out) and bias (out),
// or nil for none: one op over the fused kernels.
func (g *Graph) Dense(x, weight, bias *G.Node) (*G.Node, error) {
	for _, c := range []struct {
		what string
		n    *G.Node
	}{{"Dense input", x}, {"Dense weight", weight}} {
		if err := g.checkNode(c.what, c.n); err != nil {
			return nil, err
		}
	}
	xs, ws := x.Shape(), weight.Shape()
	if len(xs) != 2 || len(ws) != 2 || xs[1] != ws[0] {
		return nil, fmt.Errorf("Dense of %s %v and %s %v: want (m, in) and (in, out)", x.Name(), xs, weight.Name(), ws)
	}
	operands := []*G.Node{x, weight}
	if bias != nil {
		if err := g.checkNode("Dense bias", bias); err != nil {
			return nil, err
		}
		if !bias.Shape().Eq(tensor.Shape{ws[1]}) {
			return nil, fmt.Errorf("Dense bias %s has shape %v, want (%d)", bias.Name(), bias.Shape(), ws[1])
		}
		operands = append(operands, bias)
	}
	op := gop.NewDense(g.b.dtype, weight.Name(), xs[0], xs[1], ws[1], false, bias != nil)
	y, err := G.ApplyOp(op, operands...)
	if err != nil {
		return nil, fmt.Errorf("Dense %s: %w", weight.Name(), err)
	}
	return y, nil
}

// Conv2D is the convolution of x (n, Cin, H, W) with weight (Cout, Cin,
// KH, KW), zero padding pad on every side and the given stride, plus bias
// (Cout) or nil for none, to (n, Cout, (H+2 pad-KH)/stride+1, (W+2
// pad-KW)/stride+1): one op over the fused kernels (im2col and a matrix
// product per image).
func (g *Graph) Conv2D(x, weight, bias *G.Node, stride, pad int) (*G.Node, error) {
	for _, c := range []struct {
		what string
		n    *G.Node
	}{{"Conv2D input", x}, {"Conv2D weight", weight}} {
		if err := g.checkNode(c.what, c.n); err != nil {
			return nil, err
		}
	}
	xs, ws := x.Shape(), weight.Shape()
	switch {
	case len(xs) != 4 || xs[0] != g.n || len(ws) != 4 || xs[1] != ws[1]:
		return nil, fmt.Errorf("Conv2D of %s %v and %s %v: want (%d, Cin, H, W) and (Cout, Cin, KH, KW)", x.Name(), xs, weight.Name(), ws, g.n)
	case stride < 1 || pad < 0:
		return nil, fmt.Errorf("Conv2D %s: stride %d must be positive, pad %d not negative", weight.Name(), stride, pad)
	case xs[2]+2*pad < ws[2] || xs[3]+2*pad < ws[3]:
		return nil, fmt.Errorf("Conv2D %s: kernel %dx%d larger than the padded %dx%d image", weight.Name(), ws[2], ws[3], xs[2]+2*pad, xs[3]+2*pad)
	}
	operands := []*G.Node{x, weight}
	if bias != nil {
		if err := g.checkNode("Conv2D bias", bias); err != nil {
			return nil, err
		}
		if !bias.Shape().Eq(tensor.Shape{ws[0]}) {
			return nil, fmt.Errorf("Conv2D bias %s has shape %v, want (%d)", bias.Name(), bias.Shape(), ws[0])
		}
		operands = append(operands, bias)
	}
	// The data's gradient is never used; an activation's is.
	needDX := x != g.x
	ho, wo := (xs[2]+2*pad-ws[2])/stride+1, (xs[3]+2*pad-ws[3])/stride+1
	parts := gop.Workers(g.n, 3*ws[0]*ws[1]*ws[2]*ws[3]*ho*wo, g.procs)
	var op G.Op
	if g.b.dtype == tensor.Float32 {
		op = convOp[float32]{newConvStage[float32](weight.Name(), g.n, xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, pad, needDX, bias != nil, parts)}
	} else {
		op = convOp[float64]{newConvStage[float64](weight.Name(), g.n, xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, pad, needDX, bias != nil, parts)}
	}
	y, err := G.ApplyOp(op, operands...)
	if err != nil {
		return nil, fmt.Errorf("Conv2D %s: %w", weight.Name(), err)
	}
	return y, nil
}

// SoftmaxCrossEntropy is the mean over rows of -log softmax(logits)[label]
// for logits (Rows, classes) against Labels: the usual classification
// loss, as one op over the fused kernels.
func (g *Graph) SoftmaxCrossEntropy(logits *G.Node) (*G.Node, error) {
	if err := g.checkNode("SoftmaxCrossEntropy", logits); err != nil {
		return nil, err
	}
	labels := g.Labels()
	if !logits.Shape().Eq(labels.Shape()) {
		return nil, fmt.Errorf("SoftmaxCrossEntropy of logits %v: want %v (rows, classes)", logits.Shape(), labels.Shape())
	}
	id := g.nops
	g.nops++
	name := fmt.Sprintf("xent#%d", id)
	rows, k := g.Rows(), g.m.classes
	loss, err := G.ApplyOp(gop.NewCrossEntropy(g.b.dtype, name, rows, k), logits, labels)
	if err != nil {
		return nil, fmt.Errorf("SoftmaxCrossEntropy: %w", err)
	}
	return loss, nil
}

// CausalSelfAttention is multi-head causal softmax(q k^T / sqrt(d/heads)) v
// of text data, the heads' outputs concatenated: q, k and v (Rows, d), row
// e*Context+t for token t of example e, to (Rows, d). One op over the
// fused transformer's kernels; the projections stay Dense layers.
func (g *Graph) CausalSelfAttention(q, k, v *G.Node, heads int) (*G.Node, error) {
	if g.m.kind != textData {
		return nil, errors.New("CausalSelfAttention needs text data (Shape.Vocab and GraphOptions.Context)")
	}
	for _, c := range []struct {
		what string
		n    *G.Node
	}{{"attention q", q}, {"attention k", k}, {"attention v", v}} {
		if err := g.checkNode(c.what, c.n); err != nil {
			return nil, err
		}
	}
	s := q.Shape()
	if len(s) != 2 || s[0] != g.Rows() || !k.Shape().Eq(s) || !v.Shape().Eq(s) {
		return nil, fmt.Errorf("CausalSelfAttention of q %v, k %v, v %v: want three (%d, d)", s, k.Shape(), v.Shape(), g.Rows())
	}
	d := s[1]
	if heads < 1 || d%heads != 0 {
		return nil, fmt.Errorf("CausalSelfAttention: width %d is not divisible by %d heads", d, heads)
	}
	id := g.nops
	g.nops++
	name := fmt.Sprintf("attn#%d", id)
	ctx := g.m.context
	parts := gop.AttentionParts(g.n, ctx, d, g.procs)
	y, err := G.ApplyOp(gop.NewAttention(g.b.dtype, name, g.n, ctx, heads, d, parts), q, k, v)
	if err != nil {
		return nil, fmt.Errorf("CausalSelfAttention: %w", err)
	}
	return y, nil
}

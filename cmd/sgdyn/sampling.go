package main

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/train"
)

// samplingList is ensemble.sampling: one scheme (`with`), a list
// (`[with, without]`) or a comma-separated string (`with,without`). With
// more than one, every learning rate gets one ensemble per scheme, from the
// same reference and directions, with common random numbers.
type samplingList []string

func (s *samplingList) UnmarshalYAML(n *yaml.Node) error {
	var one string
	if n.Kind == yaml.ScalarNode && n.Decode(&one) == nil {
		l, err := parseSamplingList(one)
		*s = l
		return err
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		return fmt.Errorf("ensemble sampling: want with, without or a list of them")
	}
	l, err := parseSamplingList(strings.Join(many, ","))
	*s = l
	return err
}

// parseSamplingList parses "with", "without" or "with,without", refusing
// unknown and repeated schemes.
func parseSamplingList(v string) (samplingList, error) {
	var out samplingList
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if _, err := data.ParseSampling(f); err != nil {
			return nil, err
		}
		for _, x := range out {
			if x == f {
				return nil, fmt.Errorf("sampling %q listed twice", f)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// schemeName is the ensemble name for learning rate eta and scheme s: the
// scheme is appended only when the ensemble runs under several, so
// single-scheme names (and the runs that have them) stay as they were.
func schemeName(base, s string, schemes int) string {
	if schemes > 1 {
		return base + "-" + s
	}
	return base
}

// pairSchemes marks the without-replacement ensembles of a multi-scheme
// set as paired (common random numbers with the with-replacement ones).
func pairSchemes(c *train.EnsembleConfig, schemes int) {
	c.Paired = schemes > 1 && c.Sampling == string(data.WithoutReplacement)
}

// applySamplingDefault resolves an ensemble.sampling left out of the config
// once the training set's size n is known: both schemes when the ensemble
// window spans more than one epoch (reshuffling then departs from the
// with-replacement theory, THEORY.md section 9), else sgd.sampling.
func (e *experiment) applySamplingDefault(n int) {
	if !e.Ensemble.defaultSampling {
		return
	}
	if analysis.EpochsSpanned(n, e.Ensemble.Batch, e.Ensemble.Steps) > 1 {
		e.Ensemble.Sampling = samplingList{string(data.WithReplacement), string(data.WithoutReplacement)}
	} else {
		e.Ensemble.Sampling = samplingList{e.SGD.Sampling}
	}
}

// surveySampling is the scheme the survey measures c and s2 under: the
// training run's when the ensembles use it, else the first ensemble
// scheme. The report converts c to each ensemble's scheme.
func (s ensembleSection) surveySampling(training string) string {
	for _, x := range s.Sampling {
		if x == training {
			return x
		}
	}
	if len(s.Sampling) > 0 {
		return s.Sampling[0]
	}
	return training
}

// schemesNote says, for `sgdyn run`'s answer, which ensembles the paper's
// theory describes when they span more than one epoch of n examples.
func schemesNote(ens []train.EnsembleConfig, n int) string {
	var with, without []string
	epochs := 0.0
	for _, c := range ens {
		epochs = max(epochs, analysis.EpochsSpanned(n, c.Batch, c.Steps))
		if c.Sampling == string(data.WithReplacement) {
			with = append(with, c.Name)
		} else {
			without = append(without, c.Name)
		}
	}
	if epochs <= 1 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  the ensembles span %.3g epochs of %d examples: ", epochs, n)
	if len(with) > 0 {
		fmt.Fprintf(&b, "the paper's theory (THEORY.md sections 2-3, eta^2 c t along flat directions) describes the with-replacement ensembles (%s)", strings.Join(with, ", "))
	} else {
		b.WriteString("the paper's theory (THEORY.md sections 2-3) describes sampling with replacement, which none of these ensembles uses")
	}
	if len(without) > 0 {
		fmt.Fprintf(&b, "; under epoch reshuffling (%s) it holds only within a fraction of an epoch: the first-order prediction there is the bridge of section 9 and the long-time growth is measured, not predicted", strings.Join(without, ", "))
	}
	return b.String()
}

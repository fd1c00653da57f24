package train

import (
	"fmt"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// Data is a loaded data set split for training and validation.
type Data struct {
	Train, Val data.Dataset
	Shape      models.Shape
	Vocab      *data.Vocab // text only
	Source     string      // where the examples came from, for the run's records
	// Rows is the row count of a CSV or synthetic table: training uses
	// rows [0, Train.Len()) and validation the last HeldOut, or, with
	// HeldOut 0 (val_fraction 0), the training rows.
	Rows, HeldOut int
}

// LoadData loads the data c names, split and shaped for c's model.
func LoadData(c Config) (*Data, error) {
	d := &Data{Source: c.Data.Path}
	switch c.Data.Kind {
	case "cifar10":
		opts := data.CIFAROptions{VerifyChecksums: !c.Data.SkipChecksums, Limit: c.Data.Limit}
		tr, err := data.LoadCIFAR10(c.Data.Path, "train", opts)
		if err != nil {
			return nil, err
		}
		te, err := data.LoadCIFAR10(c.Data.Path, "test", data.CIFAROptions{VerifyChecksums: opts.VerifyChecksums})
		if err != nil {
			return nil, err
		}
		d.Train, d.Val = tr, te
		d.Shape = models.Shape{Image: []int{3, 32, 32}, Classes: 10}
	case "mnist":
		// The paper's pixels are byte/255 with no normalisation; that is
		// the default here too (normalize: true standardises them).
		opts := data.MNISTOptions{VerifyChecksums: !c.Data.SkipChecksums, Limit: c.Data.Limit,
			Normalize: c.Data.Normalize, Pool: c.Data.Pool}
		tr, err := data.LoadMNIST(c.Data.Path, "train", opts)
		if err != nil {
			return nil, err
		}
		opts.Limit = 0
		te, err := data.LoadMNIST(c.Data.Path, "test", opts)
		if err != nil {
			return nil, err
		}
		d.Train, d.Val = tr, te
		d.Shape = models.Shape{Inputs: tr.Dim(), Image: []int{1, tr.Side(), tr.Side()}, Classes: data.MNISTNumClasses}
	case "text":
		topts := data.TextOptions{LimitChars: c.Data.Text.LimitChars, Preprocess: c.Data.Text.Preprocess}
		corpus, err := data.LoadCorpusWith(c.Data.Path, topts)
		if err != nil {
			return nil, err
		}
		d.Source = corpus.Source
		T := c.Model.Transformer.Context
		if c.Data.Text.Split == TextSplitWindows {
			all, err := data.NewTextWindows(corpus.Tokens, T)
			if err != nil {
				return nil, fmt.Errorf("corpus %s: %w", corpus.Source, err)
			}
			if d.Train, d.Val, err = data.SplitWindows(all, c.Data.ValFraction); err != nil {
				return nil, fmt.Errorf("corpus %s windows: %w", corpus.Source, err)
			}
		} else {
			tr, val, err := corpus.Split(c.Data.ValFraction)
			if err != nil {
				return nil, fmt.Errorf("corpus %s: %w", corpus.Source, err)
			}
			if d.Train, err = data.NewTextWindows(tr, T); err != nil {
				return nil, fmt.Errorf("corpus %s training part: %w", corpus.Source, err)
			}
			if d.Val, err = data.NewTextWindows(val, T); err != nil {
				return nil, fmt.Errorf("corpus %s validation part: %w", corpus.Source, err)
			}
		}
		if c.Data.Limit > 0 && c.Data.Limit < d.Train.Len() {
			d.Train = data.Range(d.Train, 0, c.Data.Limit)
		}
		d.Vocab = &corpus.Vocab
		d.Shape = models.Shape{Vocab: corpus.Vocab.Size()}
	case "regression", "classification", "synthetic":
		var t *data.Table
		var err error
		switch c.Data.Kind {
		case "regression":
			t, err = data.LoadRegressionCSV(c.Data.Path)
		case "classification":
			t, err = data.LoadClassificationCSV(c.Data.Path)
		case "synthetic":
			sy := c.Data.Synthetic
			t, err = data.SyntheticRegression(sy.N, sy.D, sy.Scales, sy.Noise, c.Seed)
			d.Source = fmt.Sprintf("synthetic regression n=%d d=%d noise=%g seed=%d", sy.N, sy.D, sy.Noise, c.Seed)
		}
		if err != nil {
			return nil, err
		}
		n := t.Len()
		nval := int(float64(n) * c.Data.ValFraction)
		if c.Data.ValFraction > 0 && (nval < 1 || n-nval < 1) {
			return nil, fmt.Errorf("%s: %d rows are too few to hold out %g for validation (val_fraction 0 trains on every row)", c.Data.Path, n, c.Data.ValFraction)
		}
		ntrain := n - nval
		if c.Data.Limit > 0 && c.Data.Limit < ntrain {
			ntrain = c.Data.Limit
		}
		d.Train, d.Val = data.Range(t, 0, ntrain), data.Range(t, n-nval, n)
		if nval == 0 {
			d.Val = d.Train // no split: evaluate on the training rows
		}
		d.Rows, d.HeldOut = n, nval
		d.Shape = models.Shape{Inputs: t.Dim, Classes: t.Classes}
	}
	return d, nil
}

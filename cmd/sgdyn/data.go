package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgdyn/sgdyn/data"
)

// dataSet is a data set that sgdyn can fetch and verify.
type dataSet struct {
	desc     string // what --dir holds
	url      string // default --url
	urlUsage string
	fetch    func(ctx context.Context, url, dir string, progress io.Writer) error
	verify   func(dir string) error
	verified string // what a successful verify checked
}

func dataSets() map[string]dataSet {
	return map[string]dataSet{
		"cifar10": {
			desc: "the CIFAR-10 binary files", url: data.CIFAR10URL, urlUsage: "archive `URL` (fetch only)",
			fetch: data.FetchCIFAR10, verify: data.VerifyCIFAR10,
			verified: "all six files present with the official sizes and SHA-1s",
		},
		"mnist": {
			desc: "the four MNIST IDX files (gzip'd or not)", url: data.MNISTURL, urlUsage: "base `URL` of the four .gz files (fetch only)",
			fetch: data.FetchMNIST, verify: data.VerifyMNIST,
			verified: "all four files present with valid IDX headers and contents and the official hashes",
		},
	}
}

func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || (args[0] != "fetch" && args[0] != "verify") {
		return fmt.Errorf("usage: sgdyn data fetch|verify cifar10|mnist --dir DIR")
	}
	action, name := args[0], args[1]
	set, ok := dataSets()[name]
	if !ok {
		return fmt.Errorf("unknown data set %q (sgdyn knows cifar10 and mnist; text and CSV files need no fetching)", name)
	}
	fs := newFlagSet("data "+action, "data "+action+" "+name+" --dir DIR", stderr)
	dir := fs.String("dir", "", "`directory` holding (or to receive) "+set.desc)
	url := fs.String("url", set.url, set.urlUsage)
	if err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	if action == "fetch" {
		if err := set.fetch(ctx, *url, *dir, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: fetched and verified in %s\n", name, *dir)
		return nil
	}
	if err := set.verify(*dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s: %s\n", name, *dir, set.verified)
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgdyn/sgdyn/data"
)

func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || (args[0] != "fetch" && args[0] != "verify") {
		return fmt.Errorf("usage: sgdyn data fetch|verify cifar10 --dir DIR")
	}
	action, set := args[0], args[1]
	if set != "cifar10" {
		return fmt.Errorf("unknown data set %q (sgdyn knows cifar10; text and CSV files need no fetching)", set)
	}
	fs := newFlagSet("data "+action, "data "+action+" cifar10 --dir DIR", stderr)
	dir := fs.String("dir", "", "`directory` holding (or to receive) the CIFAR-10 binary files")
	url := fs.String("url", data.CIFAR10URL, "archive `URL` (fetch only)")
	if err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	if action == "fetch" {
		if err := data.FetchCIFAR10(ctx, *url, *dir, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cifar10: fetched and verified in %s\n", *dir)
		return nil
	}
	if err := data.VerifyCIFAR10(*dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cifar10: %s: all six files present with the official sizes and SHA-1s\n", *dir)
	return nil
}

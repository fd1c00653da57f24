// Package configs embeds the experiment configurations shipped with sgdyn,
// so `sgdyn run` works from the binary alone. configs/README.md documents
// every key.
package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Default is the configuration `sgdyn run` uses without --config.
const Default = "quick"

// Read returns the shipped configuration name (without .yaml).
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no shipped config %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Names lists the shipped configurations.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

package train

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Environment records where and how a run was executed, so numbers in a
// report can be traced to a machine and a build.
type Environment struct {
	GoVersion  string   `json:"go_version"`
	Commit     string   `json:"git_commit,omitempty"`
	Modified   bool     `json:"git_modified,omitempty"`
	BLAS       string   `json:"blas"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	NumCPU     int      `json:"num_cpu"`
	CPU        string   `json:"cpu_model,omitempty"`
	Host       string   `json:"host,omitempty"`
	Args       []string `json:"args"`
	Start      string   `json:"start_time"`
}

// CurrentEnvironment describes this process.
func CurrentEnvironment() Environment {
	e := Environment{
		GoVersion:  runtime.Version(),
		BLAS:       blasName,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPU:        cpuModel(),
		Args:       os.Args,
		Start:      time.Now().UTC().Format(time.RFC3339),
	}
	e.Host, _ = os.Hostname()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				e.Commit = s.Value
			case "vcs.modified":
				e.Modified = s.Value == "true"
			}
		}
	}
	return e
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

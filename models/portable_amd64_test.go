package models

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestPortableFallback runs TestFusedMatchesPlain again on the code paths
// of machines without AVX2: in a child test process with
// GODEBUG=cpu.avx2=off, which turns off the assembly of internal/kern and
// internal/gemm, whose own tests check each kernel on both paths.
func TestPortableFallback(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("this machine already uses the portable paths")
	}
	args := []string{"-test.run=^TestFusedMatchesPlain$", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	godebug := "cpu.avx2=off"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("TestFusedMatchesPlain on the portable paths: %v\n%s", err, out)
	}
}

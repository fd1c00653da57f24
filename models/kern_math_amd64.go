package models

import "golang.org/x/sys/cpu"

// haveAVX2 reports whether the AVX2/FMA exp kernel can run here.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// expSumAVX2 sets x[i] = exp32(x[i] - shift) for len(x) a multiple of 8 and
// returns their sum (kern_math_amd64.s).
//
//go:noescape
func expSumAVX2(x []float32, shift float32) float32

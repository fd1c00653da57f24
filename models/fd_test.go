package models

import "github.com/sgdyn/sgdyn/internal/fdcheck"

// The finite-difference helpers of the gradient tests (package fdcheck):
// each test contracts its stage's output with fixed random weights r, so
// the scalar L = <r, f(x)> has gradient backward(r), and compares that with
// central differences of L in each input coordinate.
var (
	randn   = fdcheck.Randn
	dot     = fdcheck.Dot
	relErr  = fdcheck.RelErr
	checkFD = fdcheck.Gradient
)

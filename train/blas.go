//go:build !openblas

package train

const blasName = "gonum (pure Go)"

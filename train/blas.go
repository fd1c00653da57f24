package train

import "github.com/sgdyn/sgdyn/internal/gemm"

// blasName records which matrix-product code a run used: the build's
// products (internal/gemm) for the fused models and the projections, and
// gonum's native BLAS for the plain Gorgonia path.
const blasName = gemm.Backend + "; gonum native BLAS for impl plain"

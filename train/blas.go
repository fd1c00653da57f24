package train

// blasName records which matrix-product code a run used: the fused models'
// own AVX2/FMA kernels, gonum's native BLAS elsewhere (projections, the
// plain Gorgonia path, machines without AVX2).
const blasName = "sgdyn fused kernels (AVX2/FMA) + gonum native BLAS"

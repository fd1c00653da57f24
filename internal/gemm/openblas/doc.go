// Package openblas binds OpenBLAS's cblas_sgemm and cblas_dgemm through
// cgo for internal/gemm's openblas build tag (a package of its own because
// a cgo package cannot hold Go assembly). Without the tag it is empty, so
// that builds without the tag need neither cgo nor libopenblas-dev.
package openblas

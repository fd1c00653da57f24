// Package analysis turns SGD ensemble and probe logs into variance-growth measurements, theory predictions and a classification of directions as confined, diffusive, unstable or null.
//
// The formulas are those of THEORY.md (arXiv 2605.22644, "Why SGD is not
// Brownian Motion"): an [Ensemble] of R replicas started at one reference
// point gives, per probed direction, the ensemble variance of the
// projections over time ([VarianceGrowth]) with bootstrap intervals over
// replicas; [Classify] reads the shape of that curve ([Rule] states the
// rule); [DiscreteVariance] and [LangevinVariance] are the per-direction
// predictions; [FitScan] fits the learning-rate scan; [MSD] handles single
// long runs; and [LinReg] iterates the exact covariance recursion of SGD on
// linear regression, the ground truth the rest is tested against.
//
// Inputs are plain in-memory arrays; randomness (bootstrap) is seeded
// through options and the package holds no global state.
package analysis

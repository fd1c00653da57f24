#!/bin/sh
# Cross-checks sgdyn's CNN Hessian-vector products against PyTorch double
# backprop; see scripts/oracle/README.md.
#
#   scripts/oracle/run.sh                      # trained checkpoint (CKPT)
#   CKPT= scripts/oracle/run.sh                # fresh initialisation (-seed 1)
#   scripts/oracle/run.sh -examples 128 -vectors 2   # extra flags go to hvpcheck
#
# Environment: CKPT (checkpoint .npz, empty for a fresh init), DATA (CIFAR-10
# binary directory), OUT (output directory), PYTHON (Debian's python3-torch),
# TOL (relative H v tolerance), GOMAXPROCS and TORCH_THREADS (default 1 each,
# to stay light on a shared machine). Exits non-zero if the check fails.
set -e
cd "$(dirname "$0")/../.."
CKPT=${CKPT-runs/cifar10-cnn/checkpoints/step-000001950.npz}
DATA=${DATA:-../shared/data/cifar-10-batches-bin}
OUT=${OUT:-/tmp/sgdyn-oracle}
PYTHON=${PYTHON:-/usr/bin/python3}
TOL=${TOL:-1e-4}
GOMAXPROCS=${GOMAXPROCS:-1}
TORCH_THREADS=${TORCH_THREADS:-1}
export GOMAXPROCS

go build -p 1 -o "$OUT.hvpcheck" ./scripts/oracle/hvpcheck
"$OUT.hvpcheck" -checkpoint "$CKPT" -data "$DATA" -out "$OUT" "$@"
exec "$PYTHON" scripts/oracle/hvp_torch.py "$OUT" --tol "$TOL" --threads "$TORCH_THREADS"

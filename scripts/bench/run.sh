#!/bin/sh
# Runs sgdyn's benchmark suite against PyTorch; see BENCHMARKS.md.
# Needs Debian's python3-torch: apt-get update && apt-get install -y python3-torch
# Extra arguments go to the Go driver, e.g. -rounds 20 or -plain.
set -e
cd "$(dirname "$0")/../.."
go build -o /tmp/sgdyn-bench ./scripts/bench
exec /tmp/sgdyn-bench "$@"

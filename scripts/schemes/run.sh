#!/bin/sh
# Issue 17, acceptance 2: both sampling schemes from one reference point.
#
#   1. the MLP pilot: tanh MLP 20-32-5 (837 parameters) on a generated
#      3,000-row classification CSV (N = 2,700 after the 10% hold-out, so 84
#      steps per epoch at batch 32), certified flat directions from the dense
#      Hessian, 64 replicas x 2,000 steps (23.8 epochs) at eta 0.1 under both
#      schemes with common random numbers;
#   2. the eta exponent per scheme: the same at eta 0.025, 0.05, 0.1, 0.2;
#   3. the CIFAR-10 CNN ensemble of EXPERIMENTS.md section 4 rerun under both
#      schemes from the same reference (2.56 epochs).
#
# Usage: scripts/schemes/run.sh [mlp|scan|cifar|all]   (default all)
# Environment: SGDYN (default: go run ./cmd/sgdyn), OUT (default runs/schemes),
# CIFAR_RUN (default runs/cifar10-cnn, the section-4 run directory),
# WORKERS (default 2). Every step resumes: rerun the same command after a kill.
set -eu
cd "$(dirname "$0")/../.."
SGDYN=${SGDYN:-"go run ./cmd/sgdyn"}
OUT=${OUT:-runs/schemes}
CIFAR_RUN=${CIFAR_RUN:-runs/cifar10-cnn}
WORKERS=${WORKERS:-2}
what=${1:-all}
mkdir -p "$OUT"
RUN=$OUT/mlp

mlp() {
	[ -f "$OUT/pilot.csv" ] || python3 scripts/schemes/gen_classification.py --rows 3000 --features 20 --classes 5 --seed 1 > "$OUT/pilot.csv"
	cat > "$OUT/mlp.yaml" <<YAML
seed: 1
model: {kind: mlp, dtype: float64, mlp: {hidden: [32], activation: tanh}}
data: {kind: classification, path: $OUT/pilot.csv}
sgd: {lr: 0.1, batch: 32, steps: 20000, sampling: without}
YAML
	$SGDYN train --config "$OUT/mlp.yaml" --run "$RUN"
	# Dense Hessian (837 products), all eigenpairs, c along each at batch 32;
	# 8 certified flat, non-null directions for the largest eta of the scan.
	[ -f "$RUN/hessian/directions.npy" ] || $SGDYN hessian --run "$RUN" --dense --flat 8 --nulls 2 \
		--eval-examples 2700 --noise-batches 256 --batch 32 --lr 0.2 --steps 2000
	# The pilot: both schemes, paired (names lr0.1-b32-with, lr0.1-b32-without).
	$SGDYN ensemble --run "$RUN" --replicas 64 --steps 2000 --lr 0.1 --batch 32 --sampling with,without --workers "$WORKERS"
}

scan() {
	# Three more learning rates per scheme; lr 0.1 comes from mlp().
	$SGDYN ensemble --run "$RUN" --replicas 64 --steps 2000 --lr 0.025,0.05,0.2 --batch 32 --sampling with,without --workers "$WORKERS"
}

cifar() {
	# Same reference, directions, lr, batch, window and logging as the
	# section-4 ensemble (lr0.05-b128, reshuffled, unpaired); the new pair is
	# lr0.05-b128-with / lr0.05-b128-without.
	$SGDYN ensemble --run "$CIFAR_RUN" --replicas 32 --steps 1000 --lr 0.05 --batch 128 --log-every 5 \
		--sampling with,without --workers "$WORKERS"
	$SGDYN report --primary lr0.05-b128-with "$CIFAR_RUN"
}

case $what in
mlp) mlp ;;
scan) scan ;;
cifar) cifar ;;
all) mlp; scan; cifar ;;
*) echo "usage: $0 [mlp|scan|cifar|all]" >&2; exit 2 ;;
esac
if [ "$what" != cifar ]; then
	$SGDYN report --primary lr0.1-b32-with "$RUN"
	# What goes into EXPERIMENTS.md: per ensemble the epochs and the theory,
	# per direction the two late slopes and their ratio with its interval,
	# and the per-step eta exponent per scheme.
	python3 - "$RUN/report/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["schemes"]
for e in s["ensembles"]:
    print(f'{e["name"]:24} {e["sampling"]:8} epochs {e["epochs"]}  fitted on {e["fit_curve"]}')
for g in s["groups"]:
    print(f'\n{g["with"]} vs {g["without"]} (paired {g["paired"]})')
    for d in g["directions"]:
        if not d["source"].startswith("flat"):
            continue
        r = d["ratio"]; lo, hi = d["ratio_ci"]
        print(f'  {d["source"]:8} with {d["late_slope_with"]} (eta^2 c {d["flat_slope_with"]})  without {d["late_slope_without"]}  ratio {r} [{lo}, {hi}]')
for sc in s["scans"]:
    ex = sc["per_step_exponent"]
    print(f'\neta exponent, {sc["sampling"]}: {ex and round(ex["Est"], 3)} [{ex and round(ex["Lo"], 3)}, {ex and round(ex["Hi"], 3)}] over {sc["directions"]} {sc["basis"]} directions ({sc["theory"]})')
PY
fi

#!/usr/bin/env bash
# test-local.sh: run scripts/slurm/ensemble.sbatch on a real, throwaway,
# one-node Slurm cluster on this machine and check what a cluster user relies
# on. Not part of `go test`: it needs root, installs packages and starts
# daemons.
#
#   sudo scripts/slurm/test-local.sh        # KEEP=1 keeps the temp dir
#
# It installs Debian's slurm-wlm and munge if they are missing, starts munged
# (a fresh key), slurmctld and slurmd (a minimal slurm.conf: node localhost
# with this machine's CPUs and memory, one partition, proctrack/linuxproc,
# task/none, no cgroups, all state in a temp dir), builds sgdyn, makes a tiny
# run (linear regression on generated data, then its Hessian survey), and:
#
#   A  --array=0-3: 4 shards; task 2 is requeued (scontrol requeue) while it
#      runs and must resume from its replica checkpoints; the merge is a job
#      with --dependency=afterok on the array;
#   B  --array=1-4%2: an array not starting at 0 (tasks 1..4 must run shards
#      0..3 of 4) and throttled to 2 at once (checked while it runs); task 1
#      gets the time-limit warning signal (USR1) mid-run and must requeue
#      itself and finish;
#   C  --array=0,1,3: a list with a gap, which the template must refuse;
#
# and checks that the merged arrays of A and B are byte-identical (cmp) to an
# unsharded `sgdyn ensemble` of the same ensemble in another copy of the run.
# Every daemon it started is stopped on exit and the temp dir removed; the
# last lines are a PASS/FAIL summary and the exit status is non-zero on any
# failure. Settings: STEPS (default 2000000 per replica), REPLICAS (8),
# LOG_EVERY (1000); each replica takes a few seconds of one core, about a
# minute of CPU in all. It takes about 6 minutes, most of them waiting: Slurm
# holds each requeued task for 2 minutes (Reason=BeginTime) before rerunning it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
template=$here/ensemble.sbatch
STEPS=${STEPS:-2000000}
REPLICAS=${REPLICAS:-8}
LOG_EVERY=${LOG_EVERY:-1000}
SHARDS=4
NAME=ens
GO=${GO:-go}

log() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
passed=() failed=()
pass() { passed+=("$1"); log "ok    $1"; }
fail() { failed+=("$1"); log "FAIL  $1"; }
check() { # check DESCRIPTION COMMAND...: pass or fail on the command's status
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
die() {
	fail "$1"
	exit 1
}

if [[ $(id -u) != 0 ]]; then
	echo "test-local.sh: run as root: it installs packages and runs slurmctld and slurmd as root" >&2
	exit 2
fi

# --- packages ---------------------------------------------------------------
need=()
for cmd in slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-wlm munged:munge mungekey:munge; do
	command -v "${cmd%%:*}" >/dev/null || need+=("${cmd#*:}")
done
if ((${#need[@]})); then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	log "installing ${need[*]} (apt-get)"
	apt-get update -qq
	# policy-rc.d exit 101: the packages' postinst must not start the
	# system's own munged/slurmd; this script starts private ones.
	added_policy=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi
log "$(slurmctld -V), munge $(munged --version 2>&1 | awk '{print $2; exit}')"

# --- temp dir, cleanup ---------------------------------------------------------
tmp=$(mktemp -d /tmp/sgdyn-slurm-test.XXXXXX)
mkdir -p "$tmp"/{munge,state,spool,log,bin,runs,jobs}
chmod 700 "$tmp/munge"
daemons=() # "name:pid", in start order

stop_daemons() {
	local i name pid n
	for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
		name=${daemons[i]%%:*} pid=${daemons[i]#*:}
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null
		for ((n = 0; n < 40; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) ignored SIGTERM; SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? n
	set +e
	trap - EXIT INT TERM HUP
	if [[ -n ${SLURM_CONF:-} ]] && scontrol ping >/dev/null 2>&1; then
		# Cancel whatever is left, and let slurmd reap its job processes
		# before it stops (a slurmstepd outlives slurmd otherwise).
		scancel --quiet --full --user=root 2>/dev/null
		for ((n = 0; n < 60; n++)); do
			[[ -z $(squeue -h -t PD,R,CG,CF,RQ,RS,S -o %i 2>/dev/null) && -z $(scontrol listpids 2>/dev/null | awk 'NR > 1') ]] && break
			sleep 0.5
		done
	fi
	if ((${#failed[@]})) || ((rc != 0)); then
		for f in "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log; do
			[[ -s $f ]] || continue
			echo "--- last lines of $f"
			grep -E 'error|fatal|Requeu|requeu' "$f" | tail -n 15
		done
	fi
	stop_daemons
	local left=()
	for d in "${daemons[@]}"; do kill -0 "${d#*:}" 2>/dev/null && left+=("$d"); done
	if ((${#left[@]})); then
		failed+=("daemons still running: ${left[*]}")
	else
		log "stopped ${#daemons[@]} daemons (${daemons[*]:-none})"
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	echo
	echo "=== summary: ${#passed[@]} passed, ${#failed[@]} failed"
	for p in "${passed[@]}"; do echo "  PASS  $p"; done
	for f in "${failed[@]}"; do echo "  FAIL  $f"; done
	if ((${#failed[@]} == 0 && rc == 0)); then
		echo "PASS"
		exit 0
	fi
	echo "FAIL"
	exit $((rc != 0 ? rc : 1))
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# wait_for SECONDS DESCRIPTION COMMAND...: poll until the command succeeds.
wait_for() {
	local limit=$1 what=$2 end
	shift 2
	end=$((SECONDS + limit))
	until "$@"; do
		((SECONDS < end)) || {
			log "timed out after ${limit}s waiting for $what"
			return 1
		}
		sleep 0.25
	done
}

# free_port N: the first port from N on that nothing listens on.
free_port() {
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

# --- munge --------------------------------------------------------------------
sock=$tmp/munge/munge.socket
mungekey --create --keyfile="$tmp/munge/munge.key" >/dev/null
chmod 600 "$tmp/munge/munge.key"
munged --foreground --force --socket="$sock" --key-file="$tmp/munge/munge.key" \
	--pid-file="$tmp/munge/munged.pid" --log-file="$tmp/log/munged.log" \
	--seed-file="$tmp/munge/munged.seed" 2>>"$tmp/log/munged.log" &
daemons+=("munged:$!")
munge_ok() { munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1; }
wait_for 20 "munged" munge_ok || die "munged starts (see $tmp/log/munged.log)"
pass "munged runs with a fresh key (munge | unmunge round trip)"

# --- slurm.conf, slurmctld, slurmd ------------------------------------------
# The node's real CPUs and memory, as slurmd itself sees them: a node
# configured with more than it has is drained.
hw=$(slurmd -C | head -n 1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
: "${cpus:=$(nproc)}" "${mem:=$(free -m | awk '/^Mem:/ {print $2}')}"
ctl_port=$(free_port 6817)
d_port=$(free_port $((ctl_port + 1)))
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
# Written by scripts/slurm/test-local.sh for a throwaway one-node cluster.
ClusterName=sgdyntest
SlurmctldHost=localhost
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: containers usually cannot use the cgroup plugins.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to scontrol and squeue for the checks.
MinJobAge=3600
KillWait=10
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
# Two jobs per core: room for all 4 tasks of an array at once, so that the
# %2 throttle, not the node's size, is what limits array B.
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:2
EOF
log "slurm.conf: node localhost, CPUs=$cpus RealMemory=${mem}M, ports $ctl_port/$d_port"
slurmctld -D -i -f "$SLURM_CONF" >>"$tmp/log/slurmctld.out" 2>&1 &
daemons+=("slurmctld:$!")
wait_for 30 "slurmctld" scontrol ping >/dev/null ||
	die "slurmctld answers scontrol ping (see $tmp/log/slurmctld.log)"
slurmd -D -f "$SLURM_CONF" -N localhost >>"$tmp/log/slurmd.out" 2>&1 &
daemons+=("slurmd:$!")
node_idle() { [[ $(sinfo -h -N -n localhost -o %T 2>/dev/null) == idle ]]; }
wait_for 60 "node localhost idle" node_idle || die "sinfo shows node localhost idle (it shows: $(sinfo -h -N -o '%N %T %E' 2>&1))"
pass "slurmctld + slurmd up; sinfo: $(sinfo -h -N -o '%N %T %c CPUs %m MB')"

# --- sgdyn and a tiny run -------------------------------------------------------
log "building sgdyn"
(cd "$repo" && "$GO" build -o "$tmp/bin/sgdyn" ./cmd/sgdyn) || die "go build ./cmd/sgdyn"
sgdyn=$tmp/bin/sgdyn
cat >"$tmp/tiny.yaml" <<'EOF'
seed: 1
model: {kind: linreg, dtype: float64}
data:
  kind: synthetic
  synthetic: {n: 400, d: 4, noise: 0.5, scales: [1.5, 1, 0.6, 0.3]}
sgd: {lr: 0.05, batch: 16, steps: 200, sampling: with}
EOF
base=$tmp/runs/base
{
	"$sgdyn" train --config "$tmp/tiny.yaml" --run "$base" &&
		"$sgdyn" hessian --run "$base" --eval-examples 360 --top 4 --bottom -1 --bulk -1 \
			--noise-batches 16 --density-starts -1
} >"$tmp/log/prepare.log" 2>&1 || {
	cat "$tmp/log/prepare.log"
	die "sgdyn train + hessian make the tiny run"
}
for copy in direct A B C; do cp -a "$base" "$tmp/runs/$copy"; done
pass "tiny run: linreg d=4 trained, 4 survey directions ($(grep -o 'lambda_max [0-9.e+-]*' "$tmp/log/prepare.log"))"

ens=(--replicas "$REPLICAS" --steps "$STEPS" --name "$NAME" --log-every "$LOG_EVERY")
log "unsharded reference: sgdyn ensemble ${ens[*]} --workers 1"
"$sgdyn" ensemble --run "$tmp/runs/direct" "${ens[@]}" --workers 1 >"$tmp/log/direct.log" 2>/dev/null ||
	die "unsharded sgdyn ensemble ($(tail -n 3 "$tmp/log/direct.log"))"
sed 's/^/      /' "$tmp/log/direct.log"

# --- job helpers ----------------------------------------------------------------
# submit_array LABEL ARRAY: submit the template on run copy LABEL, print the job id.
submit_array() {
	local label=$1 array=$2
	sbatch --parsable --chdir="$tmp/jobs" --array="$array" --cpus-per-task=1 --mem=256M \
		--time=00:20:00 --job-name="sgdyn-$label" --output="$tmp/jobs/$label-%a.log" \
		--export="ALL,RUN=$tmp/runs/$label,STEPS=$STEPS,REPLICAS=$REPLICAS,NAME=$NAME,LOG_EVERY=$LOG_EVERY,CHECKPOINT_AFTER=0,SGDYN=$sgdyn" \
		"$template" | cut -d';' -f1
}
# submit_merge LABEL JOBID: the merge, after every task of the array succeeded.
submit_merge() {
	sbatch --parsable --chdir="$tmp/jobs" --dependency="afterok:$2" --kill-on-invalid-dep=yes \
		--cpus-per-task=1 --mem=256M --job-name="merge-$1" --output="$tmp/jobs/$1-merge.log" \
		--wrap "exec '$sgdyn' ensemble merge --run '$tmp/runs/$1' --name '$NAME'" | cut -d';' -f1
}
# states JOBID: "task state" lines of an array (or "N/A state" for a job).
states() { squeue -h -r -t all -j "$1" -o '%K %T' 2>/dev/null | sort -n; }
job_state() { squeue -h -t all -j "$1" -o %T 2>/dev/null | head -n 1; }
task_field() { # task_field JOBID TASK FIELD: a field of scontrol show job
	scontrol -o show job "${1}_$2" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$3=//p" | head -n 1
}
# finished JOBID: true when no task is pending, running or requeueing.
finished() { ! states "$1" | grep -qvE ' (COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|DEADLINE|PREEMPTED)$'; }
all_completed() { [[ -n $(states "$1") ]] && ! states "$1" | grep -qv ' COMPLETED$'; }
# replica_running RUN SHARD: some replica of the shard has a checkpoint but is not done.
replica_running() {
	local r d
	for ((r = $2; r < REPLICAS; r += SHARDS)); do
		d=$tmp/runs/$1/ensemble/$NAME/$(printf 'replica-%04d' "$r")
		[[ -f $d/state.json && ! -f $d/done.json ]] && return 0
	done
	return 1
}
running_count() { states "$1" | grep -c ' RUNNING$' || true; }
# track JOBID: record in max_running the most tasks seen running at once.
max_running=0
track() {
	local n
	n=$(running_count "$1")
	if ((n > max_running)); then max_running=$n; fi
}
task_running() { [[ $(states "$1" | awk -v t="$2" '$1 == t {print $2}') == RUNNING ]]; }
# compare_merged LABEL: the merged arrays and every trajectory equal the unsharded run's.
compare_merged() {
	local label=$1 f bad=0 a=$tmp/runs/$1/ensemble/$NAME b=$tmp/runs/direct/ensemble/$NAME
	for f in projections.npy loss.npy distance.npy steps.npy merged.json; do
		cmp "$a/$f" "$b/$f" || bad=1
	done
	for f in "$b"/replica-*/trajectory.npy; do
		cmp "$a/${f#"$b"/}" "$f" || bad=1
	done
	return $bad
}
show_logs() { # the tasks' logs, indented
	local f
	for f in "$tmp/jobs/$1"-*.log; do
		echo "      --- ${f##*/}"
		sed 's/^/      /' "$f"
	done
}

# --- A: --array=0-3, requeue of task 2 mid-run, dependent merge -------------------
log "A: sbatch --array=0-3 (4 shards), merge with --dependency=afterok"
jobA=$(submit_array A 0-3) || die "A: sbatch of the array"
mergeA=$(submit_merge A "$jobA") || die "A: sbatch of the merge"
log "A: array job $jobA, merge job $mergeA"
max_running=0
if wait_for 120 "A task 2 mid-replica" eval 'track "$jobA"; task_running "$jobA" 2 && replica_running A 2'; then
	step=$(sed -n 's/.*"step": *\([0-9]*\).*/\1/p' "$tmp"/runs/A/ensemble/$NAME/replica-000[26]/state.json 2>/dev/null | head -n 1)
	log "A: task 2 has checkpointed a replica at step ${step:-?}; scontrol requeue ${jobA}_2"
	check "A: scontrol requeue ${jobA}_2 accepted while it runs" scontrol requeue "${jobA}_2"
	wait_for 30 "A task 2 pending again" eval '[[ $(task_field "$jobA" 2 JobState) == PENDING ]]' || true
	log "A: task 2 $(task_field "$jobA" 2 JobState) ($(task_field "$jobA" 2 Reason)), eligible at $(task_field "$jobA" 2 EligibleTime)"
else
	fail "A: task 2 seen running mid-replica (states: $(states "$jobA" | tr '\n' ' '))"
fi
wait_for 300 "A array" eval 'track "$jobA"; finished "$jobA"' || true
maxA=$max_running
wait_for 120 "A merge" eval '[[ $(job_state "$mergeA") =~ ^(COMPLETED|FAILED|CANCELLED)$ ]]' || true
show_logs A
check "A: all 4 tasks COMPLETED ($(states "$jobA" | tr '\n' ' '))" all_completed "$jobA"
restarts=$(task_field "$jobA" 2 Restarts)
check "A: the node ran more than 2 tasks at once ($maxA), so B's throttle is what limits B" test "$maxA" -ge 3
check "A: task 2 ran twice (Restarts=${restarts:-?})" test "${restarts:-0}" -ge 1
# The second run of task 2 must have resumed: fewer replica-steps than a
# fresh run of the shard's replicas.
last_steps=$(grep -o '[0-9]* replica-steps in' "$tmp/jobs/A-2.log" | tail -n 1 | cut -d' ' -f1)
per_shard=$(((REPLICAS + SHARDS - 1 - 2) / SHARDS * STEPS))
check "A: requeued task 2 resumed from checkpoints (${last_steps:-?} of $per_shard replica-steps rerun)" \
	test "${last_steps:-$per_shard}" -lt "$per_shard"
check "A: merge job ran after the array and COMPLETED ($(job_state "$mergeA"))" test "$(job_state "$mergeA")" = COMPLETED
sed 's/^/      /' "$tmp/jobs/A-merge.log"
check "A: merged arrays and trajectories byte-identical to the unsharded run" compare_merged A

# --- B: --array=1-4%2, USR1 (time-limit warning) to task 1 -------------------------
log "B: sbatch --array=1-4%2 (offset and throttled), merge with --dependency=afterok"
jobB=$(submit_array B 1-4%2) || die "B: sbatch of the array"
mergeB=$(submit_merge B "$jobB") || die "B: sbatch of the merge"
log "B: array job $jobB, merge job $mergeB"
max_running=0 signalled=0
deadline=$((SECONDS + 300))
while ! finished "$jobB" && ((SECONDS < deadline)); do
	track "$jobB"
	if ((!signalled)) && task_running "$jobB" 1 && replica_running B 0; then
		# The task's own job id: scancel retries "can not be altered now"
		# for a while when given the array form JOB_TASK.
		task_job=$(squeue -h -j "${jobB}_1" -o %A)
		log "B: task 1 (shard 0, job $task_job) mid-replica; scancel --batch --signal=USR1 $task_job (what --signal=B:USR1@180 sends)"
		signalled=1
		# Slurm 22.05 delivers the signal but answers "Job can not be
		# altered now" and scancel retries for minutes: its status means
		# nothing here, the task's log and restart count below do.
		timeout 5 scancel --batch --signal=USR1 "$task_job" >>"$tmp/log/scancel.log" 2>&1 || true
	fi
	sleep 0.25
done
wait_for 120 "B merge" eval '[[ $(job_state "$mergeB") =~ ^(COMPLETED|FAILED|CANCELLED)$ ]]' || true
show_logs B
check "B: all 4 tasks COMPLETED ($(states "$jobB" | tr '\n' ' '))" all_completed "$jobB"
check "B: throttle %2 held (at most $max_running tasks running at once)" test "$max_running" -ge 1 -a "$max_running" -le 2
shards=$(for t in 1 2 3 4; do sed -n 's/.* runs shard \([0-9]*\/[0-9]*\) .*/\1/p' "$tmp/jobs/B-$t.log" | head -n 1; done | tr '\n' ' ')
check "B: tasks 1..4 ran shards 0/4..3/4 (got: $shards)" test "$shards" = "0/4 1/4 2/4 3/4 "
check "B: USR1 made task 1 checkpoint and requeue itself" grep -q 'requeueing job' "$tmp/jobs/B-1.log"
restarts=$(task_field "$jobB" 1 Restarts)
check "B: task 1 ran twice (Restarts=${restarts:-?})" test "${restarts:-0}" -ge 1
check "B: merge job COMPLETED ($(job_state "$mergeB"))" test "$(job_state "$mergeB")" = COMPLETED
check "B: merged arrays and trajectories byte-identical to the unsharded run" compare_merged B

# --- C: a list with a gap is refused ------------------------------------------------
log "C: sbatch --array=0,1,3 (a list with a gap: not the shards of one split)"
jobC=$(submit_array C 0,1,3) || die "C: sbatch of the array"
wait_for 120 "C array" finished "$jobC" || true
show_logs C
check "C: every task FAILED ($(states "$jobC" | tr '\n' ' '))" eval '[[ -n $(states "$jobC") ]] && ! states "$jobC" | grep -qv " FAILED$"'
check "C: each task says why" test "$(cat "$tmp"/jobs/C-*.log | grep -c 'not an evenly spaced range')" -eq 3
check "C: no replica was run" test ! -e "$tmp/runs/C/ensemble/$NAME"

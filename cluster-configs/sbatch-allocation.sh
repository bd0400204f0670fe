#!/bin/bash
# Scheduler, workers and your program inside ONE SLURM allocation ("sbatch
# submission"; dask-jobqueue #186). They meet through a scheduler file on a file
# system every node sees.
#
#   sbatch cluster-configs/sbatch-allocation.sh ./my-program --its-args
#
# Your program finds the scheduler with `rask::ConnectOptions::scheduler_file(
# std::env::var("RASK_SCHEDULER_FILE")?)`. When it exits, the workers and the
# scheduler are stopped and the job ends with your program's exit code.
# Environment: RASK (the rask binary, default `rask`).
#SBATCH -J rask-allocation
#SBATCH -N 1
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH -t 00:30:00
set -euo pipefail
rask=${RASK:-rask}
export RASK_SCHEDULER_FILE=${RASK_SCHEDULER_FILE:-$PWD/rask-scheduler-$SLURM_JOB_ID.json}
rm -f "$RASK_SCHEDULER_FILE"

# The scheduler runs on the batch host, beside your program.
"$rask" scheduler --host "$(hostname)" --port 0 --dashboard-port 0 \
  --scheduler-file "$RASK_SCHEDULER_FILE" &
scheduler=$!
for _ in $(seq 600); do [ -s "$RASK_SCHEDULER_FILE" ] && break; sleep 0.1; done
[ -s "$RASK_SCHEDULER_FILE" ] || { echo "the scheduler did not start" >&2; exit 1; }

# One worker per task of the allocation, each with its task's CPUs.
srun --ntasks="$SLURM_NTASKS" --cpus-per-task="$SLURM_CPUS_PER_TASK" --kill-on-bad-exit=0 \
  bash -c 'exec "$0" worker --scheduler-file "$RASK_SCHEDULER_FILE" \
    --nthreads "$SLURM_CPUS_PER_TASK" --name "rask-$SLURM_JOB_ID-$SLURM_PROCID" \
    --death-timeout 60' "$rask" &
workers=$!

status=0
"$@" || status=$?
kill -TERM "$workers" "$scheduler" 2>/dev/null || true
wait 2>/dev/null || true
rm -f "$RASK_SCHEDULER_FILE"
exit "$status"

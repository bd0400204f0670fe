#!/usr/bin/env bash
# Side-by-side scheduling throughput: `rask microbench` and the same two workloads on
# dask.distributed (LocalCluster, 2 workers x 1 thread, in-process), same machine,
# same run, plus rask at a million tasks. Usage: benches/microbench.sh [N]   (default N = 20000;
# Dask needs minutes per 10,000 tasks here, and did not finish N = 100000 in 11 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
venv=benches/.venv
if ! "$venv/bin/python" -c 'import dask.distributed' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'dask[distributed]'
fi
cargo build --release --locked --quiet
rask=$(./target/release/rask microbench --tasks "$n" --workers 2 --threads 1 --json)
# A million tasks: throughput at scale, and the scheduler state's memory per task.
million=$(./target/release/rask microbench --tasks 1000000 --workers 2 --threads 1 --json --scheduler-memory)
dask=$("$venv/bin/python" benches/dask_microbench.py "$n" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "rask (1M tasks): $million"
echo "dask: $dask"
python3 - "$rask" "$dask" "$million" <<'PY'
import json, sys
r, d, m = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
for k in ("map_tasks_per_s", "tree_tasks_per_s"):
    print(f"{k}: rask {r[k]:,.0f} vs dask {d[k]:,.0f} -> {r[k] / d[k]:.1f}x")
print(f"1M tasks: map {m['map_tasks_per_s']:,.0f} tasks/s, tree {m['tree_tasks_per_s']:,.0f} tasks/s, "
      f"scheduler memory {m['scheduler_bytes_per_task']:.0f} bytes/task")
PY

#!/usr/bin/env bash
# Side-by-side scheduling throughput: `rask microbench` and the same two workloads on
# dask.distributed (LocalCluster, 2 workers x 1 thread, in-process), same machine,
# same run. Usage: benches/microbench.sh [N]   (default N = 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
venv=benches/.venv
if ! "$venv/bin/python" -c 'import dask.distributed' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'dask[distributed]'
fi
cargo build --release --locked --quiet
rask=$(./target/release/rask microbench --tasks "$n" --workers 2 --threads 1 --json --scheduler-memory)
dask=$("$venv/bin/python" benches/dask_microbench.py "$n" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "dask: $dask"
python3 - "$rask" "$dask" <<'PY'
import json, sys
r, d = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("map_tasks_per_s", "tree_tasks_per_s"):
    print(f"{k}: rask {r[k]:,.0f} vs dask {d[k]:,.0f} -> {r[k] / d[k]:.1f}x")
print(f"scheduler memory: {r['scheduler_bytes_per_task']:.0f} bytes/task (rask)")
PY

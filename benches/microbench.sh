#!/usr/bin/env bash
# Side-by-side scheduling throughput: `rask microbench` and the same two workloads on
# dask.distributed, same machine, same run: in-process (LocalCluster, 2 workers x 1
# thread) and with 2 worker processes x 1 thread (rask scheduler + 2 rask workers over
# TCP vs LocalCluster(processes=True)); plus rask at a million tasks. Usage: benches/microbench.sh [N]   (default N = 20000;
# Dask needs minutes per 10,000 tasks here, and did not finish N = 100000 in 11 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
. benches/venv.sh
cargo build --release --locked --quiet
rask=$(./target/release/rask microbench --tasks "$n" --workers 2 --threads 1 --json)
# A million tasks: throughput at scale, and the scheduler state's memory per task.
million=$(./target/release/rask microbench --tasks 1000000 --workers 2 --threads 1 --json --scheduler-memory)
# Two worker processes over TCP.
dir=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
./target/release/rask scheduler --port 0 --no-dashboard --scheduler-file "$dir/s.json" 2>"$dir/s.log" &
for _ in $(seq 100); do [ -s "$dir/s.json" ] && break; sleep 0.1; done
for i in 1 2; do
  ./target/release/rask worker --scheduler-file "$dir/s.json" --nthreads 1 2>"$dir/w$i.log" &
done
tcp=$(./target/release/rask microbench --scheduler-file "$dir/s.json" --wait-for-workers 2 --tasks "$n" --json)
dask=$("$venv/bin/python" benches/dask_microbench.py "$n" 2>/dev/null | tail -n 1)
dask_tcp=$("$venv/bin/python" benches/dask_microbench.py "$n" processes 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "rask (2 worker processes): $tcp"
echo "rask (1M tasks): $million"
echo "dask: $dask"
echo "dask (2 worker processes): $dask_tcp"
python3 - "$rask" "$dask" "$million" "$tcp" "$dask_tcp" <<'PY'
import json, sys
r, d, m, rt, dt = (json.loads(a) for a in sys.argv[1:6])
for k in ("map_tasks_per_s", "tree_tasks_per_s"):
    print(f"{k} (in-process): rask {r[k]:,.0f} vs dask {d[k]:,.0f} -> {r[k] / d[k]:.1f}x")
for k in ("map_tasks_per_s", "tree_tasks_per_s"):
    print(f"{k} (2 worker processes): rask {rt[k]:,.0f} vs dask {dt[k]:,.0f} -> {rt[k] / dt[k]:.1f}x")
print(f"1M tasks: map {m['map_tasks_per_s']:,.0f} tasks/s, tree {m['tree_tasks_per_s']:,.0f} tasks/s, "
      f"scheduler memory {m['scheduler_bytes_per_task']:.0f} bytes/task")
PY

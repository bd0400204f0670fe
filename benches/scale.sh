#!/usr/bin/env bash
# Graph scale: how rask's throughput and memory hold up from ten thousand to ten
# million tasks, beside Dask at the size it still manages here. Usage:
#   benches/scale.sh            # full run (about 5 minutes, most of it Dask)
#   benches/scale.sh quick      # rask only, without the 10M-task map
# Prints one line per figure; medians where the VM's noise (±30%) matters.
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
cargo build --release --locked --quiet
rask=./target/release/rask

# The median of the JSON field $2 over $1 runs of `rask microbench ${@:3}`.
median() {
  local runs=$1 field=$2
  shift 2
  for _ in $(seq "$runs"); do
    "$rask" microbench --json "$@" | python3 -c "import json,sys; print(json.load(sys.stdin)['$field'])"
  done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "== in-process map + gather, 2 workers x 1 thread"
small=$(median 11 map_tasks_per_s --workload map --workers 2 --threads 1 --tasks 10000)
large=$(median 3 map_tasks_per_s --workload map --workers 2 --threads 1 --tasks 4000000)
echo "N = 10,000:    $small tasks/s (median of 11)"
echo "N = 4,000,000: $large tasks/s (median of 3)"
python3 -c "print(f'10k / 4M: {$small / $large:.2f}x (goal: at most 1.5x)')"

echo "== whole-process peak memory, 1M-task map + gather"
peak=$(median 3 peak_rss_bytes --workload map --workers 2 --threads 1 --tasks 1000000)
python3 -c "print(f'peak RSS {$peak / 2**20:,.0f} MiB = {$peak / 1e6:,.0f} bytes/task (median of 3; goal: at most 1 KB)')"

if [ "$quick" != quick ]; then
  echo "== a 10M-task map"
  "$rask" microbench --json --workload map --workers 2 --threads 1 --tasks 10000000 | python3 -c "
import json, sys
r = json.load(sys.stdin)
print(f\"10,000,000 tasks: {r['map_tasks_per_s']:,.0f} tasks/s, peak RSS {r['peak_rss_bytes'] / 2**30:.1f} GiB \"
      f\"({r['peak_rss_bytes'] / 1e7:,.0f} bytes/task)\")"
fi

echo "== tree reduction over TCP, N = 100,000 leaves, scheduler + 2 worker processes x 1 thread"
dir=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
"$rask" scheduler --port 0 --no-dashboard --scheduler-file "$dir/s.json" 2>"$dir/s.log" &
for _ in $(seq 100); do [ -s "$dir/s.json" ] && break; sleep 0.1; done
for i in 1 2; do
  "$rask" worker --scheduler-file "$dir/s.json" --nthreads 1 2>"$dir/w$i.log" &
done
tree=$(median 5 tree_tasks_per_s --workload tree --scheduler-file "$dir/s.json" --wait-for-workers 2 --tasks 100000)
echo "tree: $tree tasks/s (199,999 tasks, median of 5; goal: at least 100,000)"

if [ "$quick" != quick ]; then
  . benches/venv.sh
  n=50000
  echo "== Dask beside rask: in-process map + gather, N = $n (Dask takes about 90 s)"
  ours=$("$rask" microbench --json --workload map --workers 2 --threads 1 --tasks $n)
  theirs=$("$venv/bin/python" benches/dask_microbench.py $n --workload map 2>/dev/null | tail -n 1)
  python3 - "$ours" "$theirs" <<'PY'
import json, sys
r, d = (json.loads(a) for a in sys.argv[1:3])
n = r["n"]
print(f"rask {r['map_tasks_per_s']:,.0f} vs dask {d['map_tasks_per_s']:,.0f} tasks/s -> {r['map_tasks_per_s'] / d['map_tasks_per_s']:.0f}x")
print(f"peak RSS: rask {r['peak_rss_bytes'] / 2**20:,.0f} MiB vs dask {d['peak_rss_bytes'] / 2**20:,.0f} MiB "
      f"(whole processes; {r['peak_rss_bytes'] / n:,.0f} vs {d['peak_rss_bytes'] / n:,.0f} bytes/task)")
PY
fi

#!/usr/bin/env bash
# What an open dashboard costs the scheduler: `rask microbench` (map + gather
# of 200k tasks) against a scheduler process with two worker processes, with
# no page open and with a dashboard page open in headless Chromium (on the
# same two cores), alternated RUNS times each in one run; prints each
# throughput and the medians' ratio.
# Usage: benches/dashboardbench.sh [TASKS [RUNS [PAGE]]] (defaults 200000, 5
# and status; PAGE is any of the dashboard's pages: status, workers, graph, system).
# Needs Debian's chromium (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-200000}"
runs="${2:-5}"
page="${3:-status}"
cargo build --release --locked --quiet
rask=./target/release/rask
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir" 2>/dev/null || true
}
trap cleanup EXIT

"$rask" scheduler --port 0 --dashboard-port 0 --scheduler-file "$dir/scheduler.json" 2>"$dir/scheduler.log" &
pids+=($!)
while [ ! -s "$dir/scheduler.json" ]; do sleep 0.1; done
for name in w0 w1; do
  "$rask" worker --scheduler-file "$dir/scheduler.json" --nthreads 1 --name "$name" \
    --local-directory "$dir" 2>"$dir/$name.log" &
  pids+=($!)
done
link=$("$rask" dashboard --scheduler-file "$dir/scheduler.json" | sed "s#/status#/$page#")
port=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).port)' "$link")

throughput() {
  "$rask" microbench --scheduler-file "$dir/scheduler.json" --wait-for-workers 2 \
    --tasks "$tasks" --workload map --json | python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["map_tasks_per_s"])'
}

open_page() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --window-size=1400,1000 --user-data-dir="$dir/profile-$RANDOM" \
    "$link" >/dev/null 2>&1 &
  browser=$!
  pids+=($browser)
  # The page is open once its event stream is connected to the dashboard port.
  for _ in $(seq 300); do
    if ss -Htn state established "( sport = :$port )" | grep -q .; then return; fi
    sleep 0.1
  done
  echo "the page never connected to $link" >&2
  exit 1
}

close_page() {
  kill "$browser"
  wait "$browser" 2>/dev/null || true
  # (Each page has a profile of its own: the browser's helper processes may
  # still be writing into the last one; the temporary directory goes at exit.)
}

throughput >/dev/null # warm-up: workers connected, ops loaded
closed=()
opened=()
for i in $(seq "$runs"); do
  closed+=("$(throughput)")
  open_page
  sleep 2 # the page's first draw
  opened+=("$(throughput)")
  close_page
  echo "run $i: closed ${closed[-1]} tasks/s, $page page open ${opened[-1]} tasks/s"
done
python3 - "${closed[*]}" "${opened[*]}" "$page" <<'PY'
import statistics, sys
closed = [float(x) for x in sys.argv[1].split()]
opened = [float(x) for x in sys.argv[2].split()]
c, o = statistics.median(closed), statistics.median(opened)
print(f"median: page closed {c:.0f} tasks/s, {sys.argv[3]} page open {o:.0f} tasks/s "
      f"-> {100 * (c - o) / c:+.1f}% drop with the page open")
PY

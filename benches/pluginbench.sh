#!/usr/bin/env bash
# Op plugins (issue 16): the per-task overhead of a plugin op against the same op
# compiled into the worker — the fixture's `score` mapped over 100k items on 2 worker
# processes of 1 thread: stock `rask worker`s with the plugin uploaded, against
# `pluginbench worker`s with the fixture crate compiled in (same scheduler, same
# client). Then `rask plugin build` of the fixture, cold (a fresh target directory)
# and after a one-line change. Usage: benches/pluginbench.sh [TASKS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-100000}"
rounds="${2:-3}"
token=pluginbench
cargo build --release --locked --quiet -p rask-cli -p rask-pluginbench
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  git checkout --quiet tests/plugin-fixture/src/lib.rs 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Build times: cold, then after a one-line change.
start=$(date +%s.%N)
CARGO_TARGET_DIR="$work/target" ./target/release/rask plugin build \
  --manifest-path tests/plugin-fixture/Cargo.toml >"$work/build.out" 2>"$work/build.log"
cold=$(echo "$(date +%s.%N) - $start" | bc)
echo "// touched by benches/pluginbench.sh" >>tests/plugin-fixture/src/lib.rs
start=$(date +%s.%N)
CARGO_TARGET_DIR="$work/target" ./target/release/rask plugin build \
  --manifest-path tests/plugin-fixture/Cargo.toml >"$work/build.out" 2>>"$work/build.log"
warm=$(echo "$(date +%s.%N) - $start" | bc)
git checkout --quiet tests/plugin-fixture/src/lib.rs
plugin=$(tail -n 1 "$work/build.out")
printf 'rask plugin build: cold %.1f s, after a one-line change %.1f s, library %d MB\n' \
  "$cold" "$warm" "$(( $(stat -c %s "$plugin") >> 20 ))"

# One timed run: a scheduler, 2 workers started by `$1`, the client.
run() {
  local file="$work/scheduler-$RANDOM.json"
  ./target/release/rask scheduler --port 0 --no-dashboard --token "$token" \
    --scheduler-file "$file" 2>>"$work/cluster.log" &
  pids+=("$!")
  local scheduler=$!
  for _ in $(seq 200); do [ -s "$file" ] && break; sleep 0.05; done
  local address
  address=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["address"])' "$file")
  local workers=()
  for _ in 1 2; do
    if [ "$1" = plugin ]; then
      ./target/release/rask worker "$address" --nthreads 1 --no-nanny --token "$token" 2>>"$work/cluster.log" &
    else
      ./target/release/pluginbench worker "$address" "$token" 2>>"$work/cluster.log" &
    fi
    workers+=("$!")
    pids+=("$!")
  done
  if [ "$1" = plugin ]; then
    ./target/release/pluginbench client "$address" "$token" "$tasks" "$plugin"
  else
    ./target/release/pluginbench client "$address" "$token" "$tasks"
  fi
  kill "${workers[@]}" "$scheduler" 2>/dev/null || true
  wait "${workers[@]}" "$scheduler" 2>/dev/null || true
}

plugin_times=() compiled_times=()
for _ in $(seq "$rounds"); do
  plugin_times+=("$(run plugin | python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])')")
  compiled_times+=("$(run compiled | python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])')")
done
python3 - "$tasks" "${plugin_times[*]}" "${compiled_times[*]}" <<'PY'
import statistics, sys
tasks = int(sys.argv[1])
plugin = [float(x) for x in sys.argv[2].split()]
compiled = [float(x) for x in sys.argv[3].split()]
p, c = statistics.median(plugin), statistics.median(compiled)
print(f"{tasks} tasks on 2 workers, medians of {len(plugin)} rounds (each the median of 3 maps):")
print(f"  plugin op (stock rask worker):       {p:.3f} s  {1e6 * p / tasks:.1f} us/task  {plugin}")
print(f"  compiled-in op (pluginbench worker): {c:.3f} s  {1e6 * c / tasks:.1f} us/task  {compiled}")
print(f"  plugin / compiled: {p / c:.3f}")
PY

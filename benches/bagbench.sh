#!/usr/bin/env bash
# rask.bag against dask.bag (and Polars alone as a reference), same machine,
# same run, same files (issue 15): word frequencies over 1 GB of JSON lines,
# the ten commonest. rask best of 3; dask.bag once (RASK_BENCH_DASK_REPEAT to
# change). The data is generated once under $RASK_BENCH_DATA (default
# /tmp/rask-bagbench).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${RASK_BENCH_DATA:-/tmp/rask-bagbench}"
threads=2
. benches/venv.sh
if ! "$venv/bin/python" -c 'import dask.bag, polars' 2>/dev/null; then
  "$venv/bin/pip" install --quiet 'dask[bag]' polars
fi
cargo build --release --locked --quiet
"$venv/bin/python" benches/dask_bagbench.py generate "$data"
rask=$(./target/release/rask bagbench --data "$data" --workers 1 --threads "$threads" --json)
others=$(POLARS_MAX_THREADS=$threads "$venv/bin/python" benches/dask_bagbench.py run "$data" "$threads" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "others: $others"
python3 - "$rask" "$others" <<'PY'
import json, sys
r, o = (json.loads(a) for a in sys.argv[1:3])
same = r["top"] == o["dask_top"]
line = f"words: rask {r['words_s']:.3f} s"
for peer in ("dask", "polars"):
    t = o[f"{peer}_words_s"]
    line += f", {peer} {t:.3f} s ({t / r['words_s']:.2f}x)"
print(line)
print(f"(x: the peer's time over rask's; above 1 rask is faster; same top ten as dask.bag: {same})")
PY

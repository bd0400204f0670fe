#!/usr/bin/env bash
# rask.dataframe against dask.dataframe, Daft's native runner and Polars alone,
# same machine, same run, same Parquet files, same thread count (issue 15):
# groupby-mean of 50M rows, join of 10M x 1M rows, sort_values of 10M rows.
# Best of 3 each. Usage: benches/dataframebench.sh [WORKLOADS] (comma-separated;
# all by default). The data (~1.3 GB) is generated once under $RASK_BENCH_DATA
# (default /tmp/rask-dataframebench).
set -euo pipefail
cd "$(dirname "$0")/.."
workloads="${1:-groupby,join,sort}"
data="${RASK_BENCH_DATA:-/tmp/rask-dataframebench}"
threads=2
. benches/venv.sh
if ! "$venv/bin/python" -c 'import dask.dataframe, daft, polars, pyarrow' 2>/dev/null; then
  "$venv/bin/pip" install --quiet 'dask[dataframe,distributed]' polars daft pyarrow
fi
cargo build --release --locked --quiet
"$venv/bin/python" benches/dask_dataframebench.py generate "$data"
rask=$(./target/release/rask dataframebench --data "$data" --workers 1 --threads "$threads" --only "$workloads" --json)
others=$(POLARS_MAX_THREADS=$threads "$venv/bin/python" benches/dask_dataframebench.py run "$data" "$threads" "$workloads" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "others: $others"
python3 - "$rask" "$others" <<'PY'
import json, sys
r, o = (json.loads(a) for a in sys.argv[1:3])
for w in ("groupby", "join", "sort"):
    if f"{w}_s" not in r:
        continue
    line = f"{w}: rask {r[w + '_s']:.3f} s"
    for peer in ("dask", "daft", "polars"):
        t = o.get(f"{peer}_{w}_s")
        if t is not None:
            line += f", {peer} {t:.3f} s ({t / r[w + '_s']:.2f}x)"
    print(line)
print("(x: the peer's time over rask's; above 1 rask is faster)")
PY

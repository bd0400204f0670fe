#!/usr/bin/env bash
# rask.array against dask.array, same machine, same run, same thread count:
# `rask arraybench` and benches/dask_arraybench.py run the five workloads of
# issue 4 and this prints the ratios. Usage: benches/arraybench.sh [FRACTION]
# (default 1: the full sizes, ~8 GB of data at the peak; 0.05 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
fraction="${1:-1}"
. benches/venv.sh
cargo build --release --locked --quiet
rask=$(./target/release/rask arraybench --fraction "$fraction" --workers 1 --threads 2 --json)
dask=$("$venv/bin/python" benches/dask_arraybench.py "$fraction" 2 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "dask: $dask"
python3 - "$rask" "$dask" <<'PY'
import json, sys
r, d = (json.loads(a) for a in sys.argv[1:3])
names = {
    "transpose_mean_s": "(1) (x + x.T).mean(axis=0)",
    "persisted_sum_s": "(2) sum() of persisted",
    "persisted_std_s": "(2) std() of persisted",
    "rechunk_s": "(3) rechunk rows -> columns",
    "matmul_s": "(4) matmul",
    "normal_std_s": "(5) std() of random normal",
}
for key, label in names.items():
    if key in r and key in d:
        print(f"{label}: rask {r[key]:.3f} s, dask {d[key]:.3f} s -> {d[key] / r[key]:.2f}x faster")
if "bandwidth_sum_s" in r:
    print(f"memory-bandwidth bound for the sum: {r['bandwidth_sum_s']:.3f} s "
          f"({r['bandwidth_gb_per_s']:.1f} GB/s); rask's sum is "
          f"{r['persisted_sum_s'] / r['bandwidth_sum_s']:.2f}x the bound")
PY

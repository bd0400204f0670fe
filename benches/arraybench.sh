#!/usr/bin/env bash
# rask.array against dask.array, same machine, same run, same thread count:
# `rask arraybench` and benches/dask_arraybench.py run the five workloads of
# issue 4 and this prints the ratios. Usage: benches/arraybench.sh [FRACTION [ONLY]]
# (FRACTION 1, the default: the full sizes, ~8 GB of data at the peak; 0.05 for a quick
# look. ONLY picks workloads, e.g. 4 for the matmul alone).
set -euo pipefail
cd "$(dirname "$0")/.."
fraction="${1:-1}"
. benches/venv.sh
cargo build --release --locked --quiet
only="${2:-}"
rask=$(./target/release/rask arraybench --fraction "$fraction" --workers 1 --threads 2 --json ${only:+--only "$only"})
dask=$("$venv/bin/python" benches/dask_arraybench.py "$fraction" 2 "$only" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "dask: $dask"
python3 - "$rask" "$dask" "$fraction" <<'PY'
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
if "numpy_matmul_s" in d and "matmul_s" in r:
    n = round(8000 * float(sys.argv[3]) ** 0.5)
    flops = 2 * n**3
    print(f"one NumPy (OpenBLAS) matmul of the same matrices: {d['numpy_matmul_s']:.3f} s "
          f"({flops / d['numpy_matmul_s'] / 1e9:.0f} GFLOP/s); rask reaches "
          f"{flops / r['matmul_s'] / 1e9:.0f} GFLOP/s ({d['numpy_matmul_s'] / r['matmul_s']:.2f}x the call's speed), "
          f"Dask {flops / d['matmul_s'] / 1e9:.0f}; OPENBLAS_CORETYPE: {d.get('openblas_coretype')}")
    print(f"rask's block products: {r.get('gemm')}")
if "bandwidth_sum_s" in r:
    print(f"read-bandwidth bound for the sum (the same blocks, plain threads): {r['bandwidth_sum_s']:.3f} s "
          f"({r['bandwidth_gb_per_s']:.1f} GB/s); rask's sum is "
          f"{r['persisted_sum_s'] / r['bandwidth_sum_s']:.2f}x the bound")
PY

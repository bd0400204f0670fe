#!/usr/bin/env bash
# rask.dataframe against dask.dataframe, Daft's native runner and Polars alone,
# same machine, same run, same Parquet files, same thread count (issue 15):
# groupby-mean of 50M rows (from local files, and from a moto S3 server on
# 127.0.0.1 started here: groupby_s3), join of 10M x 1M rows, sort_values of 10M
# rows. Best of 3 each. polars_rs is the same queries on the Polars crate rask
# links, without rask (`rask dataframebench --polars-alone`): the per-node limit
# of rask's engine, an older Polars than Python's. Usage: benches/dataframebench.sh [WORKLOADS]
# (comma-separated; all by default). The data (~1.3 GB) is generated once under
# $RASK_BENCH_DATA (default /tmp/rask-dataframebench).
set -euo pipefail
cd "$(dirname "$0")/.."
workloads="${1:-groupby,join,sort,groupby_s3}"
data="${RASK_BENCH_DATA:-/tmp/rask-dataframebench}"
threads=2
. benches/venv.sh
if ! "$venv/bin/python" -c 'import dask.dataframe, daft, polars, pyarrow, s3fs, moto, boto3' 2>/dev/null; then
  "$venv/bin/pip" install --quiet 'dask[dataframe,distributed]' polars daft pyarrow s3fs 'moto[server]' boto3
fi
cargo build --release --locked --quiet
"$venv/bin/python" benches/dask_dataframebench.py generate "$data"
local_workloads=$(echo "$workloads" | tr ',' '\n' | grep -v '^groupby_s3$' | paste -sd, || true)
rask='{}' others='{}' rask_s3='{}' others_s3='{}'
if [ -n "$local_workloads" ]; then
  rask=$(./target/release/rask dataframebench --data "$data" --workers 1 --threads "$threads" --only "$local_workloads" --json)
  others=$(POLARS_MAX_THREADS=$threads "$venv/bin/python" benches/dask_dataframebench.py run "$data" "$threads" "$local_workloads" 2>/dev/null | tail -n 1)
  alone=$(POLARS_MAX_THREADS=$threads ./target/release/rask dataframebench --data "$data" --polars-alone --only "$local_workloads" --json)
  others=$(python3 -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:3]); a.update(b); print(json.dumps(a))' "$others" "$alone")
fi
if [[ ",$workloads," == *",groupby_s3,"* ]]; then
  # The groupby files in a moto S3 server on 127.0.0.1, read by every engine.
  port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$data/moto.log" 2>&1 &
  moto=$!
  trap 'kill $moto 2>/dev/null' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true
  for _ in $(seq 100); do
    "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
  done
  "$venv/bin/python" benches/dask_dataframebench.py upload "$data" rask-bench
  rask_s3=$(./target/release/rask dataframebench --data s3://rask-bench --workers 1 --threads "$threads" --only groupby --json)
  others_s3=$(POLARS_MAX_THREADS=$threads "$venv/bin/python" benches/dask_dataframebench.py run s3://rask-bench "$threads" groupby 2>/dev/null | tail -n 1)
fi
echo "rask: $rask $rask_s3 (S3)"
echo "others: $others $others_s3 (S3)"
python3 - "$rask" "$others" "$rask_s3" "$others_s3" <<'PY'
import json, sys
r, o, r3, o3 = (json.loads(a) for a in sys.argv[1:5])
for label, rr, oo, w in (("groupby", r, o, "groupby"), ("join", r, o, "join"),
                         ("sort", r, o, "sort"), ("groupby from S3", r3, o3, "groupby")):
    if f"{w}_s" not in rr:
        continue
    line = f"{label}: rask {rr[w + '_s']:.3f} s"
    for peer in ("dask", "daft", "polars", "polars_rs"):
        t = oo.get(f"{peer}_{w}_s")
        if t is not None:
            line += f", {peer} {t:.3f} s ({t / rr[w + '_s']:.2f}x)"
    print(line)
print("(x: the peer's time over rask's; above 1 rask is faster)")
PY

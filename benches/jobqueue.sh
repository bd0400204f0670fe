#!/usr/bin/env bash
# `rask cluster up` against dask-jobqueue's SLURMCluster on the same single-node
# SLURM (started here with scripts/infra/slurm-up.sh if it is not running):
# time until N workers are connected, and adaptive scale-up after a burst of work.
# Usage: benches/jobqueue.sh [WORKERS] [REPEAT]   (defaults 4 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-4}"
repeat="${2:-5}"
. benches/venv.sh
if ! "$venv/bin/python" -c 'import dask_jobqueue' 2>/dev/null; then
  "$venv/bin/pip" install --quiet dask-jobqueue
fi
bash scripts/infra/slurm-up.sh
cargo build --release --locked --quiet
config=$(mktemp --suffix=.yaml)
trap 'rm -f "$config"' EXIT
cat > "$config" <<YAML
slurm:
  cores: 1
  memory: 400MiB
  walltime: "00:10:00"
  rask: $PWD/target/release/rask
YAML
rask=$(./target/release/rask jobqueuebench "$config" --workers "$workers" --repeat "$repeat" --json)
dask=$("$venv/bin/python" benches/dask_jobqueuebench.py "$workers" "$repeat" 2>/dev/null | tail -n 1)
echo "rask: $rask"
echo "dask: $dask"
python3 - "$rask" "$dask" <<'PY'
import json, sys
r, d = (json.loads(a) for a in sys.argv[1:3])
n = r["workers"]
for key, label in [("up_s", f"cluster up until {n} workers"),
                   ("adapt_first_s", "adaptive: burst until the first worker"),
                   ("adapt_all_s", f"adaptive: burst until {n} workers")]:
    print(f"{label}: rask {r[key]:.3f} s, dask-jobqueue {d[key]:.3f} s -> {d[key] / r[key]:.1f}x faster")
PY

#!/bin/bash
# PBS-style qsub/qstat/qdel over the running SLURM: Debian's slurm-wlm-torque
# wrappers. The package conflicts with gridengine-client (both ship qsub), so it
# is unpacked into DIR (default target/torque) instead of installed; the PBS
# tests put DIR/usr/bin first on PATH. Idempotent. Prints the bin directory.
set -euo pipefail
DIR=${1:-target/torque}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
if [ ! -x "$DIR/usr/bin/qsub" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libslurm-perl libslurmdb-perl libswitch-perl >/dev/null
  (cd "$DIR" && rm -f slurm-wlm-torque_*.deb && apt-get download -q slurm-wlm-torque >/dev/null 2>&1 \
    && dpkg -x slurm-wlm-torque_*.deb . && rm -f slurm-wlm-torque_*.deb)
fi
# The wrappers call sbatch and friends from their own directory.
for c in sbatch squeue scancel scontrol; do ln -sf "$(command -v $c)" "$DIR/usr/bin/$c"; done
echo "$DIR/usr/bin"

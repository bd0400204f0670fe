#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (release profile, the same one
# `cargo run --release -- demo` uses, so one build serves both). Idempotent; installs
# what the tests need. Later issues add real services here (SLURM, S3, Jupyter).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --release --all-targets --locked -- -D warnings

echo "== tests"
cargo test --release --locked --workspace --all-targets 2>&1 | tee -a "$log"
cargo test --release --locked -p rask --doc 2>&1 | tee -a "$log"

# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "rask test suite: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"

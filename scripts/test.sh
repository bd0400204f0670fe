#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (release profile, the same one
# `cargo run --release -- demo` uses, so one build serves both). Idempotent; installs
# what the tests need. Later issues add real services here (SLURM, S3, Jupyter).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --release --all-targets --locked -- -D warnings

echo "== tests"
cargo test --release --locked --workspace --all-targets
cargo test --release --locked --workspace --doc

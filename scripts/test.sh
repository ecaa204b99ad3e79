#!/bin/bash
# Run every test tier: lints, unit tests, then (as root) real containers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

#!/bin/bash
# Runs every test tier in one pass (as root): lints, unit tests, integration tests with
# real containers (root and rootless tiers), and crun's conformance suite against
# liana-runtime. One build profile (`ci`) serves all tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests run real containers: run as root" >&2; exit 1; }
./scripts/setup.sh

echo "== lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --profile ci -q -- -D warnings

echo "== unit and integration tests"
cargo test --workspace --profile ci

echo "== conformance: crun's test-suite against liana-runtime"
cargo build --profile ci -q -p liana-runtime
python3 tests/conformance/crun_suite.py target/ci/liana-runtime \
  --expect tests/conformance/expected.txt
echo "== clients: podman, containerd and the CRI driving liana-runtime, then runc (tests the tests)"
tests/clients/run.sh target/ci/liana-runtime
tests/clients/run.sh "$(command -v runc)"
echo "== all tiers passed"

#!/bin/bash
# Builds the release binaries as they are meant to be installed, into target/release:
#   liana-runtime   static (glibc and libseccomp linked in): no dynamic loader, no symbol
#                   binding at each of its two execs per container start; about 20% less
#                   CPU per `run` than the dynamic build (bench/runtime.sh)
#   liana-monitor   static, libc only: the resident per-container monitor stays small
#   liana-init      static: it is bind-mounted into containers that have no libc of ours
#   liana           dynamic (registry host names go through the system resolver, NSS)
# `cargo build --release` still works; it builds all of them dynamically.
set -euo pipefail
cd "$(dirname "$0")/.."
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/$multiarch
cargo build --release -q -p liana
static() { cargo rustc --release -q -p "$1" --bin "$2" -- -C target-feature=+crt-static; }
static liana-runtime liana-runtime
static liana-monitor liana-monitor
static liana-monitor liana-init

#!/usr/bin/env bash
# bench/runtime-cgroups/run.sh [WORKDIR]
#
# create + start + delete of a busybox container running /bin/true, liana-runtime (this
# tree's release build) vs runc (/usr/sbin/runc), side by side in one hyperfine run:
#   limits     linux.resources with a memory limit (64 MiB) and a pids limit (64)
#   no limits  the same config without them (the default device rules remain)
#   disabled   liana-runtime --cgroup-manager disabled (no cgroup at all; runc has no
#              such mode): what the whole cgroup set-up costs
# Both runtimes get the same invocation: RT --root DIR create --bundle B ID, start ID,
# delete -f ID (one `sh -c`, identical for all). Prints the hyperfine table, then
# liana/runc ratios and the cost of the cgroup set-up. Results: WORKDIR/results.{md,json}.
# Needs root, hyperfine, jq, runc and /bin/busybox (busybox-static).
# Env: BENCH_RUNS (default 30), BENCH_WARMUP (default 3), RUNC (default /usr/sbin/runc).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
W=${1:-/tmp/liana-bench-runtime-cgroups}
RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
RUNC=${RUNC:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for t in hyperfine jq "$RUNC" /bin/busybox; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install hyperfine jq runc busybox-static)" >&2; exit 1; }
done
mkdir -p "$W"
W=$(cd "$W" && pwd)

echo "== building liana-runtime (release)"
"$REPO/scripts/build-release.sh"
LIANA=${CARGO_TARGET_DIR:-$REPO/target}/release/liana-runtime

# bundle NAME JQ-FILTER: busybox rootfs, `runc spec` with /bin/true and no terminal.
bundle() {
  local b=$W/$1
  rm -rf "$b"
  mkdir -p "$b/rootfs/bin"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  ln -s busybox "$b/rootfs/bin/true"
  (cd "$b" && "$RUNC" spec)
  jq ".process.args = [\"/bin/true\"] | .process.terminal = false | $2" "$b/config.json" >"$b/c.json"
  mv "$b/c.json" "$b/config.json"
}
bundle limits '.linux.resources.memory = {"limit": 67108864} | .linux.resources.pids = {"limit": 64}'
bundle nolimits '.'

ID=bench-cg-$$
mkdir -p "$W/state-liana" "$W/state-runc"
# csd RUNTIME STATE BUNDLE [GLOBAL FLAGS]: the measured command.
csd() {
  local rt="$1 --root $2 ${4:-}"
  echo "sh -c '$rt create --bundle $3 $ID && $rt start $ID && $rt delete -f $ID'"
}
clean="sh -c '$LIANA --root $W/state-liana delete -f $ID >/dev/null 2>&1; $RUNC --root $W/state-runc delete -f $ID >/dev/null 2>&1; true'"
trap "$LIANA --root $W/state-liana delete -f $ID >/dev/null 2>&1; $RUNC --root $W/state-runc delete -f $ID >/dev/null 2>&1; true" EXIT

hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --prepare "$clean" \
  --export-json "$W/results.json" --export-markdown "$W/results.md" \
  -n "liana limits" "$(csd "$LIANA" "$W/state-liana" "$W/limits")" \
  -n "runc limits" "$(csd "$RUNC" "$W/state-runc" "$W/limits")" \
  -n "liana no limits" "$(csd "$LIANA" "$W/state-liana" "$W/nolimits")" \
  -n "runc no limits" "$(csd "$RUNC" "$W/state-runc" "$W/nolimits")" \
  -n "liana cgroups disabled" "$(csd "$LIANA" "$W/state-liana" "$W/nolimits" "--cgroup-manager disabled")"

echo
cat "$W/results.md"
echo
# Ratios on medians: the 2-core machines are noisy and runc's spread is wide.
jq -r '
  (.results | map({(.command): .}) | add) as $r
  | def ms(n): ($r[n].median * 10000 | round) / 10;
    def diff(a; b): (($r[a].median - $r[b].median) * 10000 | round) / 10;
    def ratio(a; b): ($r[a].median / $r[b].median * 100 | round) / 100;
  "medians, ms",
  "liana/runc with limits:    \(ratio("liana limits"; "runc limits"))  (\(ms("liana limits")) vs \(ms("runc limits")))",
  "liana/runc without limits: \(ratio("liana no limits"; "runc no limits"))  (\(ms("liana no limits")) vs \(ms("runc no limits")))",
  "memory+pids limits cost:   liana \(diff("liana limits"; "liana no limits")), runc \(diff("runc limits"; "runc no limits"))",
  "whole cgroup set-up (liana, limits vs disabled): \(diff("liana limits"; "liana cgroups disabled")) of \(ms("liana limits"))"
' "$W/results.json" | tee "$W/ratios.txt"

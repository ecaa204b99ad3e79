#!/bin/bash
# bench/runtime.sh [YOUKI]: liana-runtime vs runc vs youki, side by side in one
# hyperfine run, on the same busybox bundle running /bin/true:
#   run             `RUNTIME run` of /bin/true (foreground, deleted on exit)
#   create+start+delete
#   baseline        unshare + chroot + exec, what a container costs at the very least
# Prints median, mean and min wall times and liana's ratios (of medians). YOUKI (optional) is a youki binary
# built with `cargo install youki --features v1 --root DIR` (cgroup v1 support is needed
# on this machine); without it youki is left out. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
YOUKI=${1:-${YOUKI:-}}
RUNS=${RUNS:-30}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v runc >/dev/null || apt-get install -y -qq runc >/dev/null
./scripts/build-release.sh
LIANA=$PWD/target/release/liana-runtime
W=$(mktemp -d /tmp/liana-bench.XXXXXX); trap 'rm -rf "$W"' EXIT
./scripts/busybox-rootfs.sh "$W/rootfs.tar" >/dev/null
mkdir -p "$W/bundle/rootfs" && tar -C "$W/bundle/rootfs" -xf "$W/rootfs.tar"
(cd "$W/bundle" && "$LIANA" spec)
python3 - "$W/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"))
PY
B=$W/bundle
# Two hyperfine runs, each side by side: `run` and the baseline without a shell (-N),
# create+start+delete through sh. youki's commands go through timeout(1): its foreground
# `run` sometimes waits forever for a SIGCHLD here (about 1 ms more for youki).
RUN_ARGS=() CSD_ARGS=() PREP=()
for rt in liana runc youki; do
  case $rt in
    liana) bin=$LIANA; T="" ;;
    runc) bin=$(command -v runc); T="" ;;
    youki) [ -n "$YOUKI" ] && [ -x "$YOUKI" ] || continue; bin=$YOUKI; T="timeout -k 1 10 " ;;
  esac
  root=$W/state-$rt
  RUN_ARGS+=(-n "$rt run" "$T$bin --root $root run --bundle $B bench-run")
  # Not timed: clears what a run cut by timeout(1) left behind.
  PREP+=(--prepare "sh -c '$bin --root $root delete --force bench-run >/dev/null 2>&1 || true'")
  CSD_ARGS+=(-n "$rt create+start+delete"
    "$T$bin --root $root create --bundle $B c1 && $T$bin --root $root start c1 && $T$bin --root $root delete --force c1")
done
RUN_ARGS+=(-n "baseline unshare+chroot" "unshare --mount --pid --fork --ipc --uts --net chroot $B/rootfs /bin/true")
PREP+=(--prepare "true")
hyperfine -N -i --warmup 3 --runs "$RUNS" "${PREP[@]}" --export-json "$W/run.json" "${RUN_ARGS[@]}" >/dev/null 2>&1
hyperfine -i --warmup 3 --runs "$RUNS" --export-json "$W/csd.json" "${CSD_ARGS[@]}" >/dev/null 2>&1
python3 -c 'import json,sys; r=[json.load(open(f))["results"] for f in sys.argv[2:]]; json.dump({"results": r[0]+r[1]}, open(sys.argv[1],"w"))' \
  "$W/out.json" "$W/run.json" "$W/csd.json"
python3 - "$W/out.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
# Medians: a run now and then stalls on a loaded 2-core machine (or youki hangs and is
# cut by timeout(1)); the median is what a user sees.
r = {x["command"]: x["median"] for x in res}
print(f"{'command':<32} {'median ms':>10} {'mean ms':>9} {'min ms':>8} {'failed':>7}")
for x in res:
    failed = sum(1 for c in x.get("exit_codes", []) if c)
    print(f"{x['command']:<32} {x['median']*1000:>10.2f} {x['mean']*1000:>9.2f} "
          f"{x['min']*1000:>8.2f} {failed:>7}")
def ratio(a, b):
    if a in r and b in r:
        print(f"{a} / {b}: {r[a]/r[b]:.2f}x")
for op in ("run", "create+start+delete"):
    for other in ("runc", "youki"):
        ratio(f"liana {op}", f"{other} {op}")
ratio("liana run", "baseline unshare+chroot")
PY

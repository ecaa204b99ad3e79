#!/bin/bash
# bench/runtime.sh [YOUKI]: liana-runtime vs runc vs youki, side by side in one
# hyperfine run, on the same busybox bundle running /bin/true:
#   run             `RUNTIME run` of /bin/true (foreground, deleted on exit)
#   create+start+delete
#   baseline        unshare + chroot + exec, what a container costs at the very least
# Prints the mean wall times and liana's ratios. YOUKI (optional) is a youki binary
# built with `cargo install youki --features v1 --root DIR` (cgroup v1 support is needed
# on this machine); without it youki is left out. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
YOUKI=${1:-${YOUKI:-}}
RUNS=${RUNS:-30}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v runc >/dev/null || apt-get install -y -qq runc >/dev/null
cargo build --release -q -p liana-runtime
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
declare -a CMDS NAMES
add() { NAMES+=("$1"); CMDS+=("$2"); }
for rt in liana runc youki; do
  case $rt in
    liana) bin=$LIANA ;;
    runc) bin=$(command -v runc) ;;
    youki) [ -n "$YOUKI" ] && [ -x "$YOUKI" ] || continue; bin=$YOUKI ;;
  esac
  root=$W/state-$rt
  # Every command runs under timeout(1) (the same cost for all): youki's foreground
  # `run` now and then waits forever for a SIGCHLD here.
  T="timeout -k 1 10"
  add "$rt run" "$T $bin --root $root run --bundle $B bench-run"
  add "$rt create+start+delete" "$T $bin --root $root create --bundle $B c1 && $T $bin --root $root start c1 && $T $bin --root $root delete --force c1"
done
add "baseline unshare+chroot" "timeout -k 1 10 unshare --mount --pid --fork --ipc --uts --net chroot $B/rootfs /bin/true"
args=()
for i in "${!CMDS[@]}"; do args+=(-n "${NAMES[$i]}" "${CMDS[$i]}"); done
hyperfine --warmup 3 --runs "$RUNS" --export-json "$W/out.json" "${args[@]}" >/dev/null
python3 - "$W/out.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"{'command':<32} {'mean ms':>9}")
for k, v in r.items():
    print(f"{k:<32} {v*1000:>9.2f}")
def ratio(a, b):
    if a in r and b in r:
        print(f"{a} / {b}: {r[a]/r[b]:.2f}x")
for op in ("run", "create+start+delete"):
    for other in ("runc", "youki"):
        ratio(f"liana {op}", f"{other} {op}")
ratio("liana run", "baseline unshare+chroot")
PY

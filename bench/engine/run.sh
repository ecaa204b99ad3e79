#!/usr/bin/env bash
# bench/engine/run.sh [WORKDIR]
#
# `run --rm IMAGE true` side by side in one hyperfine run, each engine with its own
# private storage and state, the busybox test image from a local registry
# (Debian's docker-registry on 127.0.0.1:$BENCH_PORT, default 15600), pulled first:
#   liana run --rm --network none IMAGE true      (release build, built-in runtime)
#   podman --runtime runc run --rm IMAGE true     (podman 4.3 + conmon + runc)
#   ctr run --rm IMAGE ID true                    (containerd 1.6 + runc shim)
# then the resident memory (RSS) of the per-container monitor of a detached
# `sleep 1000` container: liana-monitor (built static, as packaged) vs podman's conmon
# (and containerd's shim for reference). Results: WORKDIR/results.{md,json} and a
# summary with ratios on stdout (also WORKDIR/summary.txt). Needs root. Everything it
# starts is stopped at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/tests/images/lib.sh"
W=${1:-/tmp/liana-bench-engine}
PORT=${BENCH_PORT:-15600}
RUNS=${BENCH_RUNS:-30}
mkdir -p "$W"
W=$(cd "$W" && pwd)
IMG=127.0.0.1:$PORT/busybox:latest

need hyperfine hyperfine
need docker-registry docker-registry
need skopeo skopeo
need podman podman
need conmon conmon
need runc runc
need containerd containerd
need python3 python3
need /bin/busybox busybox-static

CTR_SOCK=$W/containerd/containerd.sock
cleanup() {
  set +e
  [ -x "${LIANA:-}" ] && for id in $("$LIANA" --root "$W/liana/root" --runroot "$W/liana/run" ps -aq); do
    "$LIANA" --root "$W/liana/root" --runroot "$W/liana/run" rm -f "$id" >/dev/null 2>&1
  done
  if [ -f "$W/podman/storage.conf" ]; then podman_ rm -a -f >/dev/null 2>&1; fi
  if [ -S "$CTR_SOCK" ]; then
    ctr -a "$CTR_SOCK" tasks kill -s KILL bench-rss >/dev/null 2>&1; sleep 0.5
    ctr -a "$CTR_SOCK" tasks rm -f bench-rss >/dev/null 2>&1
    ctr -a "$CTR_SOCK" containers rm bench-rss >/dev/null 2>&1
  fi
  stop "$W/containerd.pid"
  awk -v d="$W/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  stop "$W/registry/registry.pid"
}
trap cleanup EXIT

echo "== building liana (release) and a static liana-monitor"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
"$REPO/scripts/build-release.sh"
mkdir -p "$W/bin"
cp "$TARGET/release/liana" "$TARGET/release/liana-monitor" "$W/bin/"
LIANA=$W/bin/liana
L=("$LIANA" --root "$W/liana/root" --runroot "$W/liana/run")

echo "== test image and registry"
[ -f "$W/images/busybox/index.json" ] || python3 "$REPO/tests/images/make-images.py" "$W/images" >/dev/null
"$REPO/tests/images/registry.sh" "$W/registry" "$PORT" plain
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/policy.json"
skopeo --policy "$W/policy.json" copy -q --dest-tls-verify=false "oci:$W/images/busybox:latest" "docker://$IMG"
printf 'unqualified-search-registries = []\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$W/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf

echo "== podman (private storage and config, no network, runc)"
mkdir -p "$W/podman"/{root,runroot,tmp}
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat >"$W/podman/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$W/podman/root"
runroot = "$W/podman/runroot"
CONF
cat >"$W/podman/containers.conf" <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/podman/events.log"
tmp_dir = "$W/podman/tmp"
CONF
PODMAN_ENV="CONTAINERS_CONF=$W/podman/containers.conf CONTAINERS_STORAGE_CONF=$W/podman/storage.conf"
podman_() { env $PODMAN_ENV podman "$@"; }

echo "== containerd (private socket)"
mkdir -p "$W/containerd"/{root,state}
cat >"$W/containerd/config.toml" <<CONF
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
CONF
rm -f "$CTR_SOCK" "$CTR_SOCK.ttrpc"
setsid containerd --config "$W/containerd/config.toml" </dev/null >>"$W/containerd/containerd.log" 2>&1 &
echo $! >"$W/containerd.pid"
for _ in $(seq 100); do ctr -a "$CTR_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$CTR_SOCK" version >/dev/null

echo "== pulling the image into each engine"
"${L[@]}" pull -q "$IMG" >/dev/null
podman_ pull -q "$IMG" >/dev/null
ctr -a "$CTR_SOCK" images pull -q --plain-http "$IMG" >/dev/null
# one untimed run each (page cache, seccomp cache, cgroup parents)
"${L[@]}" run --rm --network none "$IMG" true
podman_ --runtime /usr/sbin/runc run --rm "$IMG" true
ctr -a "$CTR_SOCK" run --rm "$IMG" warm-$$ true

echo "== benchmark: run --rm IMAGE true ($RUNS rounds, the three commands interleaved)"
# Interleaved rounds rather than hyperfine's one-command-after-the-other, so that load
# from other work on the machine hits the three alike; hyperfine's table follows too.
LIANA_CMD="${L[*]} run --rm --network none $IMG true"
PODMAN_CMD="env $PODMAN_ENV podman --runtime /usr/sbin/runc run --rm $IMG true"
CTR_CMD="ctr -a $CTR_SOCK run --rm $IMG"
python3 - "$W/interleaved.json" "$RUNS" "$LIANA_CMD" "$PODMAN_CMD" "$CTR_CMD" <<'PY'
import json, shlex, subprocess, sys, time, statistics
out, runs = sys.argv[1], int(sys.argv[2])
cmds = {"liana run --rm": shlex.split(sys.argv[3]),
        "podman --runtime runc run --rm": shlex.split(sys.argv[4]),
        "ctr run --rm": shlex.split(sys.argv[5])}
times = {k: [] for k in cmds}
for i in range(runs + 3):
    for name, argv in cmds.items():
        if name == "ctr run --rm":
            argv = argv + [f"bench-{i}", "true"]
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        if i >= 3:
            times[name].append(time.perf_counter() - t)
json.dump(times, open(out, "w"))
PY
hyperfine --runs "$RUNS" --warmup 3 -N \
  --export-markdown "$W/results.md" --export-json "$W/results.json" \
  -n "liana run --rm" "$LIANA_CMD" \
  -n "podman --runtime runc run --rm" "$PODMAN_CMD" \
  -n "ctr run --rm" "sh -c 'exec $CTR_CMD b\$\$ true'"

echo "== monitor memory of a detached container"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
id=$("${L[@]}" run -d --network none "$IMG" sleep 1000)
mon=$("${L[@]}" inspect "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["MonitorPid"])')
sleep 1
liana_rss=$(rss "$mon")
pid=$(podman_ --runtime /usr/sbin/runc run -d "$IMG" sleep 1000)
sleep 1
conmon_pid=$(pgrep -f "conmon .*-c $pid" | head -1)
conmon_rss=$(rss "$conmon_pid")
ctr -a "$CTR_SOCK" run -d "$IMG" bench-rss sleep 1000 >/dev/null
sleep 1
shim_pid=$(pgrep -f "containerd-shim-runc-v2 .*-address $CTR_SOCK" | head -1 || true)
shim_rss=$([ -n "$shim_pid" ] && rss "$shim_pid" || echo 0)

python3 - "$W/interleaved.json" "$W/results.json" "$liana_rss" "$conmon_rss" "$shim_rss" <<'PY' | tee "$W/summary.txt"
import json, statistics, sys
inter = json.load(open(sys.argv[1]))
hf = {x["command"]: x for x in json.load(open(sys.argv[2]))["results"]}
base_med = statistics.median(inter["podman --runtime runc run --rm"])
base_hf = hf["podman --runtime runc run --rm"]["mean"]
print("\n%-32s %11s %9s %11s %12s" % ("run --rm IMAGE true", "median ms", "vs podman", "hyperfine", "vs podman"))
for name, ts in inter.items():
    med = statistics.median(ts)
    h = hf[name]["mean"]
    print("%-32s %11.1f %8.3fx %9.1f ms %11.3fx" % (name, med * 1e3, med / base_med, h * 1e3, h / base_hf))
liana, conmon, shim = (int(v) for v in sys.argv[3:6])
print("\n%-32s %11s %12s" % ("monitor of a -d container", "RSS KiB", "vs conmon"))
print("%-32s %11d %11.3fx" % ("liana-monitor (static)", liana, liana / conmon))
print("%-32s %11d %11.3fx" % ("conmon (podman)", conmon, 1.0))
if shim:
    print("%-32s %11d %11.3fx" % ("containerd-shim-runc-v2 (ctr)", shim, shim / conmon))
PY

#!/usr/bin/env bash
# bench/pull/run.sh [WORKDIR]
#
# Pull + unpack of the multi-layer image with a 64 MiB incompressible layer from a
# local registry (Debian's docker-registry on 127.0.0.1:$BENCH_PORT, default 15500),
# side by side in one hyperfine run:
#   liana pull              (this tree's release build, its own --root)
#   podman pull             (podman 4.3, private storage/config, overlay driver)
#   ctr images pull         (containerd 1.6 started here on its own socket; unpacks)
#   skopeo copy + umoci unpack
# Before every run each tool's store is emptied and the page cache dropped, so every
# run downloads and unpacks everything. Results: WORKDIR/results.{md,json} and a
# ratio table on stdout. Needs root. Everything it starts is stopped at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/tests/images/lib.sh"
W=${1:-/tmp/liana-bench-pull}
PORT=${BENCH_PORT:-15500}
RUNS=${BENCH_RUNS:-5}
mkdir -p "$W"
W=$(cd "$W" && pwd)
IMG=127.0.0.1:$PORT/big:latest

need hyperfine hyperfine
need docker-registry docker-registry
need skopeo skopeo
need umoci umoci
need podman podman
need conmon conmon
need runc runc
need containerd containerd
need curl curl
need python3 python3
need /bin/busybox busybox-static

cleanup() {
  set +e
  [ -n "${CTR_SOCK:-}" ] && ctr -a "$CTR_SOCK" images rm --sync "$IMG" >/dev/null 2>&1
  stop "$W/containerd.pid"
  if [ -f "$W/podman/storage.conf" ]; then podman_ rmi -a -f >/dev/null 2>&1; fi
  awk -v d="$W/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  stop "$W/registry/registry.pid"
}
trap cleanup EXIT

echo "== building liana (release)"
"$REPO/scripts/build-release.sh"
LIANA=${CARGO_TARGET_DIR:-$REPO/target}/release/liana

echo "== test image and registry"
[ -f "$W/images/big/index.json" ] || python3 "$REPO/tests/images/make-images.py" "$W/images" >/dev/null
"$REPO/tests/images/registry.sh" "$W/registry" "$PORT" plain
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/policy.json"
skopeo --policy "$W/policy.json" copy -q --dest-tls-verify=false "oci:$W/images/big:latest" "docker://$IMG"

echo "== podman (private storage and config)"
mkdir -p "$W/podman"/{root,runroot,tmp}
cat >"$W/podman/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$W/podman/root"
runroot = "$W/podman/runroot"
CONF
cat >"$W/podman/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/podman/events.log"
tmp_dir = "$W/podman/tmp"
CONF
printf 'unqualified-search-registries = []\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$W/podman/registries.conf"
podman_() {
  CONTAINERS_CONF=$W/podman/containers.conf CONTAINERS_REGISTRIES_CONF=$W/podman/registries.conf \
    CONTAINERS_STORAGE_CONF=$W/podman/storage.conf podman "$@"
}
export -f podman_ 2>/dev/null || true
PODMAN_ENV="CONTAINERS_CONF=$W/podman/containers.conf CONTAINERS_REGISTRIES_CONF=$W/podman/registries.conf CONTAINERS_STORAGE_CONF=$W/podman/storage.conf"

echo "== containerd (private socket)"
mkdir -p "$W/containerd"/{root,state}
CTR_SOCK=$W/containerd/containerd.sock
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
setsid containerd --config "$W/containerd/config.toml" </dev/null >>"$W/containerd/containerd.log" 2>&1 &
echo $! >"$W/containerd.pid"
for _ in $(seq 100); do ctr -a "$CTR_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$CTR_SOCK" version >/dev/null

DROP='sync; echo 3 > /proc/sys/vm/drop_caches'
echo "== benchmark ($RUNS runs each)"
hyperfine --runs "$RUNS" --warmup 1 \
  --export-markdown "$W/results.md" --export-json "$W/results.json" \
  -n "liana pull" --prepare "rm -rf $W/liana-root; $DROP" \
    "$LIANA --root $W/liana-root pull -q --tls-verify=false $IMG" \
  -n "podman pull" --prepare "env $PODMAN_ENV podman rmi -a -f >/dev/null 2>&1; $DROP" \
    "env $PODMAN_ENV podman pull -q $IMG" \
  -n "ctr images pull" --prepare "ctr -a $CTR_SOCK images rm --sync $IMG >/dev/null 2>&1; ctr -a $CTR_SOCK content prune references >/dev/null 2>&1; $DROP" \
    "ctr -a $CTR_SOCK images pull --plain-http $IMG" \
  -n "skopeo copy + umoci unpack" --prepare "rm -rf $W/oci $W/bundle; $DROP" \
    "skopeo --policy $W/policy.json copy -q --src-tls-verify=false docker://$IMG oci:$W/oci:latest && umoci unpack --image $W/oci:latest $W/bundle >/dev/null"

python3 - "$W/results.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["podman pull"]["mean"]
print("\n%-28s %10s %10s %14s" % ("tool", "mean s", "stddev", "vs podman"))
for name, x in r.items():
    print("%-28s %10.3f %10.3f %13.2fx" % (name, x["mean"], x["stddev"] or 0, x["mean"] / base))
PY

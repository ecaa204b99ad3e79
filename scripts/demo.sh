#!/bin/bash
# The main job, end to end on a fresh machine with no internet, as root:
#   1. build liana (engine + built-in runtime) and liana-monitor;
#   2. make a busybox image from Debian's busybox-static and serve it from a real
#      registry (Debian's docker-registry) on 127.0.0.1;
#   3. `liana pull` it, `liana run` it (foreground and detached: ps, exec, logs, stop),
#      on a bridge network (a name resolved between containers, a port published on
#      127.0.0.1), then the same image through `liana-runtime` alone (`spec` + `run`).
# Everything lives in a temporary directory (private --root/--runroot, removed at exit); the registry and
# the containers are stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (the rootless walkthrough is in README.md)" >&2; exit 1; }
pkgs="busybox-static uidmap libseccomp-dev pkg-config docker-registry python3 nftables gcc curl"
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null || { apt-get update -qq && apt-get install -y -qq $missing >/dev/null; }
fi

echo "== building liana, liana-monitor and liana-runtime (release)"
./scripts/build-release.sh
bin=$REPO/target/release
demo=$(mktemp -d /tmp/liana-demo.XXXXXX)
PORT=${DEMO_PORT:-15900}
WEBPORT=${DEMO_WEB_PORT:-15980}
L=("$bin/liana" --root "$demo/root" --runroot "$demo/run")
cleanup() {
  set +e
  for id in $("${L[@]}" ps -aq 2>/dev/null); do "${L[@]}" rm -f "$id" >/dev/null 2>&1; done
  "${L[@]}" network rm demo-net >/dev/null 2>&1
  [ -f "$demo/registry/registry.pid" ] && kill "$(cat "$demo/registry/registry.pid")" 2>/dev/null
  awk -v d="$demo/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  grep -q " $demo/" /proc/mounts || rm -rf "$demo"
}
trap cleanup EXIT

echo "== an image from busybox-static, served by docker-registry on 127.0.0.1:$PORT"
python3 tests/images/make-images.py "$demo/images" >/dev/null
tests/images/registry.sh "$demo/registry" "$PORT" plain
IMG=127.0.0.1:$PORT/demo/busybox:latest
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$demo/registries.conf"
L+=(--registries-conf "$demo/registries.conf")
"${L[@]}" load -q -i "$demo/images/busybox" >/dev/null
loaded=$("${L[@]}" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | head -1 || true)
"${L[@]}" tag "${loaded:-busybox:latest}" "$IMG"
"${L[@]}" push "$IMG"
"${L[@]}" rmi "$IMG" "${loaded:-busybox:latest}" >/dev/null

# `$ liana ...` as a user types it (the private --root/--runroot/--registries-conf are implied).
liana() { printf "\n\$ liana %s\n" "$*"; "${L[@]}" "$@"; }
liana pull "$IMG"
liana run --rm "$IMG" sh -c 'echo hello from liana; id; hostname; ls /'
liana run -d --name demo -m 64M "$IMG" sh -c 'echo started; exec sleep 1000'
liana ps
liana exec demo sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
liana logs demo
liana stop -t 1 demo
liana rm demo
# Networking: a bridge network with name resolution, and a port published on the host.
liana network create --subnet 10.199.0.0/24 --interface-name lianademo0 demo-net
liana run -d --name web --network demo-net -p "127.0.0.1:$WEBPORT:80" "$IMG" \
  sh -c 'echo hello through the bridge > /tmp/index.html; exec httpd -f -p 80 -h /tmp'
liana run --rm --network demo-net "$IMG" wget -qO- http://web/
echo "\$ curl http://127.0.0.1:$WEBPORT/"
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$WEBPORT/" && break; sleep 0.1; done
liana rm -f web
liana network rm demo-net

echo "== the same root filesystem through liana-runtime alone (runc's commands)"
mkdir -p "$demo/bundle/rootfs"
"$REPO/scripts/busybox-rootfs.sh" "$demo/rootfs.tar" >/dev/null
tar -C "$demo/bundle/rootfs" -xf "$demo/rootfs.tar"
cd "$demo/bundle"
"$bin/liana-runtime" spec
# Non-interactive: replace the spec's shell with a command.
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"sh", "-c", "echo hello from liana-runtime"/' config.json
"$bin/liana-runtime" --root "$demo/state" run demo

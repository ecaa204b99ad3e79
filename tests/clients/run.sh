#!/usr/bin/env bash
# tests/clients/run.sh RUNTIME [SUITE...]
#
# Drives the real clients of an OCI runtime (Debian 12's podman 4.3 + conmon, containerd
# 1.6 with its io.containerd.runc.v2 shim, the CRI plugin as kubelet uses it) with
# RUNTIME, and checks what they print. Run it against runc too: the same suite passes
# there, which tests the tests.
#
#   sudo tests/clients/run.sh target/release/liana-runtime
#   sudo tests/clients/run.sh /usr/sbin/runc
#   sudo tests/clients/run.sh target/release/liana-runtime podman cri
#
# SUITE: podman, podman-rootless, containerd, cri, protocol (the *.bats files beside this
# script; all by default). Everything lives in one temporary directory ($CLIENTS_WORKDIR,
# default mktemp under /tmp): podman's storage and config, the rootless user's, private
# containerd daemons on their own sockets, the test images (busybox-static, imported from
# tarballs: no registry, no network). It is removed at the end unless KEEP=1.
# Needs root, the user `lianatest` with /etc/subuid ranges (scripts/setup.sh) for the
# rootless suite, and the Debian packages: podman conmon containerd runc uidmap bats
# busybox-static jq util-linux (script) python3-grpcio protobuf-compiler.
# Prints bats' TAP lines, then "clients: N passed, M failed, K skipped".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: the client tests start daemons and containers: run as root" >&2; exit 1; }
RT_IN=$(readlink -f "$1"); shift
[ -x "$RT_IN" ] || { echo "run.sh: $RT_IN is not an executable" >&2; exit 1; }
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(protocol podman podman-rootless containerd cri)

missing=()
for t in podman conmon containerd ctr containerd-shim-runc-v2 runc bats script jq protoc newuidmap /bin/busybox /usr/bin/python3; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
/usr/bin/python3 -c 'import grpc' 2>/dev/null || missing+=("python3-grpcio")
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: missing ${missing[*]}: apt-get install podman conmon containerd runc uidmap bats busybox-static jq util-linux python3-grpcio protobuf-compiler" >&2
  exit 1
fi

W=${CLIENTS_WORKDIR:-$(mktemp -d /tmp/liana-clients.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
chmod 755 "$W"
# shellcheck source=lib/podman-env.sh
. "$HERE/lib/podman-env.sh"
# shellcheck source=lib/containerd.sh
. "$HERE/lib/containerd.sh"

cleanup() {
  local d
  for d in "$W"/containerd-*; do [ -d "$d" ] && containerd_stop "$d"; done
  [ -f "$W/rootless/env" ] && "$HERE/lib/rootless.sh" clean "$W/rootless" >/dev/null 2>&1
  podman_clean "$W/podman" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else unmount_under "$W"; rm -rf "$W"; fi
}
trap cleanup EXIT

# The runtime is copied where the unprivileged user can run it (a build tree under
# /root is not), under its own name: podman and containerd log it by that name.
mkdir -p "$W/bin"
RT=$W/bin/$(basename "$RT_IN")
cp "$RT_IN" "$RT"; chmod 755 "$RT"

echo "# runtime: $RT_IN ($("$RT" --version | sed -n 1p))"
echo "# workdir: $W"
# Images: busybox-static as a one-layer image, its Cmd `sh`; "pause" (the CRI sandbox
# image) sleeps. Imported by podman from the rootfs tarball, saved as docker archives for
# containerd.
"$REPO/scripts/busybox-rootfs.sh" "$W/rootfs.tar" >/dev/null
podman_env "$W/podman"
podman import -q --change 'CMD=["/bin/sh"]' "$W/rootfs.tar" localhost/liana-test/busybox:latest >/dev/null
podman import -q --change 'ENTRYPOINT=["/bin/sleep","1000000"]' "$W/rootfs.tar" localhost/liana-test/pause:latest >/dev/null
podman save -q --format docker-archive -o "$W/busybox.tar" localhost/liana-test/busybox:latest
podman save -q --format docker-archive -o "$W/pause.tar" localhost/liana-test/pause:latest
mkdir -p "$W/cri-pb2"
protoc -I "$HERE/cri" --python_out="$W/cri-pb2" "$HERE/cri/cri.proto"

export CLIENTS_W=$W CLIENTS_RUNTIME=$RT CLIENTS_REPO=$REPO CRI_PB2_DIR=$W/cri-pb2
export IMAGE=localhost/liana-test/busybox:latest PAUSE_IMAGE=localhost/liana-test/pause:latest

files=()
for s in "${SUITES[@]}"; do
  [ -f "$HERE/$s.bats" ] || { echo "run.sh: no suite $s" >&2; exit 2; }
  files+=("$HERE/$s.bats")
done
set +e
bats --tap "${files[@]}" | tee "$W/tap.txt"
rc=${PIPESTATUS[0]}
set -e
pass=$(grep -c '^ok ' "$W/tap.txt" || true)
skip=$(grep -c '^ok .* # skip' "$W/tap.txt" || true)
fail=$(grep -c '^not ok ' "$W/tap.txt" || true)
echo "clients: $((pass - skip)) passed, $fail failed, $skip skipped"
[ "$rc" = 0 ] && [ "$fail" = 0 ]

#!/usr/bin/env bash
# bench/clients/run.sh [WORKDIR]
#
# The runtime as its clients see it: one short container, start to finish, through
#   podman run --rm IMAGE true            (podman 4.3 + conmon)
#   ctr run --rm --runc-binary RT IMAGE ID true   (containerd 1.6 + io.containerd.runc.v2 shim)
# with liana-runtime (this tree's release build) and with runc (/usr/sbin/runc), the four
# side by side in one hyperfine run; then liana/runc ratios on medians. The image is
# busybox-static imported from a tarball; podman and containerd are private instances set
# up by tests/clients/lib (temp storage, own socket, cgroupfs, network none).
# Needs root, hyperfine, jq and the packages of tests/clients/run.sh.
# Env: BENCH_RUNS (default 30), BENCH_WARMUP (default 3), RUNC (default /usr/sbin/runc),
# LIANA (default: build it with cargo into $CARGO_TARGET_DIR or target/).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
RUNC=${RUNC:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for t in hyperfine jq podman conmon containerd ctr "$RUNC"; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install hyperfine jq podman conmon containerd runc)" >&2; exit 1; }
done
if [ -z "${LIANA:-}" ]; then
  echo "== building liana-runtime (release)"
  "$REPO/scripts/build-release.sh"
  LIANA=${CARGO_TARGET_DIR:-$REPO/target}/release/liana-runtime
fi
W=${1:-$(mktemp -d /tmp/liana-bench-clients.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
# shellcheck source=../../tests/clients/lib/podman-env.sh
. "$REPO/tests/clients/lib/podman-env.sh"
# shellcheck source=../../tests/clients/lib/containerd.sh
. "$REPO/tests/clients/lib/containerd.sh"
cleanup() { containerd_stop "$W/containerd"; podman_clean "$W/podman" >/dev/null 2>&1; rm -rf "$W/containerd" "$W/rootfs.tar" "$W/busybox.tar"; rmdir /sys/fs/cgroup/*/"$NS" 2>/dev/null || true; }
trap cleanup EXIT

IMAGE=localhost/liana-bench/busybox:latest
"$REPO/scripts/busybox-rootfs.sh" "$W/rootfs.tar" >/dev/null
podman_env "$W/podman"
podman import -q "$W/rootfs.tar" "$IMAGE" >/dev/null
podman save -q --format docker-archive -o "$W/busybox.tar" "$IMAGE"
containerd_start "$W/containerd"
SOCK=$W/containerd/containerd.sock NS=liana-bench-$$
ctr -a "$SOCK" -n "$NS" images import "$W/busybox.tar" >/dev/null

pm() { echo "podman --runtime $1 run --rm $IMAGE true"; }
cr() { echo "ctr -a $SOCK -n $NS run --rm --runc-binary $1 $IMAGE bench-$2 true"; }
hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
  --export-json "$W/results.json" --export-markdown "$W/results.md" \
  -n "podman liana" "$(pm "$LIANA")" \
  -n "podman runc" "$(pm "$RUNC")" \
  -n "ctr liana" "$(cr "$LIANA" liana)" \
  -n "ctr runc" "$(cr "$RUNC" runc)"
rmdir "/run/containerd/runc/$NS" 2>/dev/null || true

echo
cat "$W/results.md"
echo
jq -r '
  (.results | map({(.command): .}) | add) as $r
  | def ms(n): ($r[n].median * 10000 | round) / 10;
    def ratio(a; b): ($r[a].median / $r[b].median * 100 | round) / 100;
  "medians, ms",
  "podman run --rm: liana/runc \(ratio("podman liana"; "podman runc"))  (\(ms("podman liana")) vs \(ms("podman runc")))",
  "ctr run --rm:    liana/runc \(ratio("ctr liana"; "ctr runc"))  (\(ms("ctr liana")) vs \(ms("ctr runc")))"
' "$W/results.json" | tee "$W/ratios.txt"
echo "results in $W"

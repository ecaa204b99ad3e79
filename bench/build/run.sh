#!/usr/bin/env bash
# bench/build/run.sh [WORKDIR]
#
# A small multi-stage build (three stages, four RUN and four COPY steps, no network,
# FROM scratch with busybox-static so that no registry is involved), cold (--no-cache)
# and fully cached, side by side with hyperfine:
#   liana build                      (built-in runtime, overlay snapshotter)
#   buildah bud --layers             (Debian's buildah 1.28, overlay storage, runc)
#   podman build --layers            (Debian's podman 4.3, overlay storage, runc)
# each with private storage in WORKDIR. Results: WORKDIR/{cold,cached}.md and a summary
# with ratios on stdout (also WORKDIR/summary.txt). Needs root. LIANA_BIN picks the
# liana binary (default: the release build of scripts/build-release.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/tests/images/lib.sh"
W=${1:-/tmp/liana-bench-build}
RUNS=${BENCH_RUNS:-10}
mkdir -p "$W"
W=$(cd "$W" && pwd)
need hyperfine hyperfine
need buildah buildah
need podman podman
need runc runc
need /bin/busybox busybox-static

cleanup() {
  set +e
  awk -v d="$W/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap cleanup EXIT

if [ -z "${LIANA_BIN:-}" ]; then "$REPO/scripts/build-release.sh"; fi
LIANA=${LIANA_BIN:-$REPO/target/release/liana}

echo "== context"
C=$W/ctx
rm -rf "$C"; mkdir -p "$C/src"
cp /bin/busybox "$C/busybox"
for i in $(seq 1 50); do head -c 4096 /dev/urandom | base64 >"$C/src/file$i.txt"; done
cat >"$C/Dockerfile" <<'DF'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM tools AS build
WORKDIR /src
COPY src/ ./
RUN cat *.txt > /all.txt && mkdir -p /out && sha256sum /all.txt > /out/sum
RUN for i in $(seq 1 200); do echo $i > /out/f$i; done && rm /all.txt

FROM tools
COPY --from=build /out /app
RUN ls /app | wc -l > /count
CMD ["cat", "/count"]
DF

L="$LIANA --root $W/liana/root --runroot $W/liana/run"
B="buildah --root $W/buildah/root --runroot $W/buildah/run --storage-driver overlay"
BR="--runtime runc"
P="podman --root $W/podman/root --runroot $W/podman/run --storage-driver overlay --cgroup-manager cgroupfs --runtime runc"
export BUILDAH_ISOLATION=oci

echo "== sanity: each builds and the image runs"
$L build -q -t bench "$C" >/dev/null
test "$($L run --rm bench)" = 201
$B bud $BR -q --layers --network none -t bench "$C" >/dev/null
$P build -q --layers --network none -t bench "$C" >/dev/null

echo "== cold (--no-cache)"
hyperfine --runs "$RUNS" --warmup 1 -N --export-markdown "$W/cold.md" --export-json "$W/cold.json" \
  -n "liana build" "$L build -q --no-cache -t bench $C" \
  -n "buildah bud" "$B bud $BR -q --layers --no-cache --network none -t bench $C" \
  -n "podman build" "$P build -q --layers --no-cache --network none -t bench $C"

echo "== fully cached"
hyperfine --runs "$RUNS" --warmup 1 -N --export-markdown "$W/cached.md" --export-json "$W/cached.json" \
  -n "liana build" "$L build -q -t bench $C" \
  -n "buildah bud" "$B bud $BR -q --layers --network none -t bench $C" \
  -n "podman build" "$P build -q --layers --network none -t bench $C"

python3 - "$W" <<'PY' | tee "$W/summary.txt"
import json, sys
w = sys.argv[1]
def load(n):
    return {r["command"]: r for r in json.load(open(f"{w}/{n}.json"))["results"]}
cold, cached = load("cold"), load("cached")
print("%-14s %12s %12s %14s" % ("", "cold ms", "cached ms", "cached/cold"))
for k in ["liana build", "buildah bud", "podman build"]:
    c, h = cold[k]["median"] * 1000, cached[k]["median"] * 1000
    print("%-14s %12.0f %12.0f %13.1f%%" % (k, c, h, 100 * h / c))
for k in ["buildah bud", "podman build"]:
    print("liana / %-12s cold %.2fx   cached %.2fx" % (k,
          cold["liana build"]["median"] / cold[k]["median"],
          cached["liana build"]["median"] / cached[k]["median"]))
PY

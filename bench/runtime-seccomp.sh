#!/usr/bin/env bash
# bench/runtime-seccomp.sh [WORKDIR]
#
# Start time of a container with podman's default seccomp profile (the OCI conversion
# in crates/liana-seccomp/tests/fixtures/podman-default-x86_64.json, ~470 syscall
# names), liana-runtime vs runc, side by side in one hyperfine run. Every command is a
# full `run` of /bin/true (busybox) in a fresh container: create, cgroup, namespaces,
# rootfs, seccomp, exec, wait, delete.
#   liana-runtime                 this tree's release build; its compiled-filter cache
#                                 warm (the normal case after the first container)
#   liana-runtime, cold cache     the cache emptied before every run: compiles the profile
#   runc                          Debian's runc (libseccomp at every start)
#   ... and both without seccomp, to show what the profile costs each runtime.
# Results: WORKDIR/results.{md,json} and a ratio table on stdout. Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=${1:-/tmp/liana-bench-runtime-seccomp}
RUNS=${BENCH_RUNS:-50}
mkdir -p "$W"
W=$(cd "$W" && pwd)

for c in hyperfine runc python3 /bin/busybox; do
  if ! command -v "$c" >/dev/null 2>&1 && [ ! -e "$c" ]; then
    echo "missing $c (apt-get install hyperfine runc python3 busybox-static)" >&2
    exit 1
  fi
done

echo "== building liana-runtime (release)"
"$REPO/scripts/build-release.sh"
LIANA=${CARGO_TARGET_DIR:-$REPO/target}/release/liana-runtime
RUNC=$(command -v runc)

echo "== bundles"
make_bundle() { # DIR WITH_SECCOMP
  local b=$1
  rm -rf "$b" && mkdir -p "$b/rootfs/bin"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  ln -s busybox "$b/rootfs/bin/true"
  (cd "$b" && "$LIANA" spec)
  python3 - "$b/config.json" "$2" "$REPO/crates/liana-seccomp/tests/fixtures/podman-default-x86_64.json" <<'PY'
import json, sys
path, with_seccomp, profile = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
if with_seccomp:
    c["linux"]["seccomp"] = json.load(open(profile))
else:
    c["linux"].pop("seccomp", None)
json.dump(c, open(path, "w"), indent=1)
PY
}
make_bundle "$W/seccomp" 1
make_bundle "$W/plain" 0
rm -rf "$W/state-liana" "$W/state-runc"

# Sanity: both runtimes run both bundles.
for rt in "$LIANA" "$RUNC"; do
  for b in seccomp plain; do
    "$rt" --root "$W/state-check" run --bundle "$W/$b" check-$$ </dev/null
  done
done
rm -rf "$W/state-check"

echo "== hyperfine ($RUNS runs each)"
hyperfine -N --runs "$RUNS" --warmup 3 \
  --export-markdown "$W/results.md" --export-json "$W/results.json" \
  -n "liana-runtime, podman profile" \
    "$LIANA --root $W/state-liana run --bundle $W/seccomp bench-liana" \
  -n "runc, podman profile" \
    "$RUNC --root $W/state-runc run --bundle $W/seccomp bench-runc" \
  -n "liana-runtime, podman profile, cold cache" \
    --prepare "rm -rf $W/state-liana-cold/.seccomp-cache" \
    "$LIANA --root $W/state-liana-cold run --bundle $W/seccomp bench-liana-cold" \
  -n "liana-runtime, no seccomp" \
    "$LIANA --root $W/state-liana run --bundle $W/plain bench-liana-plain" \
  -n "runc, no seccomp" \
    "$RUNC --root $W/state-runc run --bundle $W/plain bench-runc-plain"

python3 - "$W/results.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda name: r[name]["mean"] * 1000
sd = lambda name: r[name]["stddev"] * 1000
print()
print("| command | mean (ms) | ± (ms) | vs runc, same profile |")
print("|---|---:|---:|---:|")
for name in r:
    base = "runc, no seccomp" if "no seccomp" in name else "runc, podman profile"
    print(f"| {name} | {ms(name):.1f} | {sd(name):.1f} | {ms(name) / ms(base):.2f} |")
print()
lp, rp = ms("liana-runtime, podman profile"), ms("runc, podman profile")
print(f"liana-runtime / runc with podman's profile: {lp / rp:.2f}")
print(f"cost of the profile: liana {lp - ms('liana-runtime, no seccomp'):+.1f} ms "
      f"(cold cache {ms('liana-runtime, podman profile, cold cache') - ms('liana-runtime, no seccomp'):+.1f} ms), "
      f"runc {rp - ms('runc, no seccomp'):+.1f} ms")
PY

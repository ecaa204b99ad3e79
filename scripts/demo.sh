#!/bin/bash
# The main job, end to end on a fresh machine: build liana-runtime, make a busybox root
# filesystem from Debian's busybox-static, write a config with `liana-runtime spec`, and
# run a container from it. Run as root, or as a user for a rootless container.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /bin/busybox ] || ! command -v newuidmap >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static uidmap libseccomp-dev pkg-config >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static uidmap libseccomp-dev pkg-config >/dev/null; }
  else
    echo "demo.sh: install busybox-static, uidmap and libseccomp-dev first (as root)" >&2; exit 1
  fi
fi
cargo build --release -q -p liana-runtime
rt=$PWD/target/release/liana-runtime
demo=$(mktemp -d /tmp/liana-demo.XXXXXX)
./scripts/busybox-rootfs.sh "$demo/rootfs.tar" >/dev/null
mkdir "$demo/rootfs" && tar -C "$demo/rootfs" -xf "$demo/rootfs.tar"
cd "$demo"
if [ "$(id -u)" = 0 ]; then "$rt" spec; else "$rt" spec --rootless; fi
# Non-interactive demo: replace the shell with a command (`run demo` on a terminal
# with the unmodified config gives an interactive shell).
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"sh", "-c", "echo hello from liana; id; hostname; ls \/"/' config.json
echo "+ liana-runtime run demo   (bundle $demo)"
"$rt" --root "$demo/state" run demo

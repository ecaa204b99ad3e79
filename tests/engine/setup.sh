#!/usr/bin/env bash
# setup.sh DIR [--owner PID]
#
# Everything the engine tests need, on top of the image tests' set-up: the Debian
# packages for real containers (runsc for gVisor, uidmap for rootless user namespaces,
# busybox-static, binutils for `strip`), the unprivileged user `lianatest` with
# subordinate ids in /etc/subuid and /etc/subgid, then tests/images/setup.sh (test
# images and registries on 127.0.0.1, ports from $LIANA_TEST_PORT, default 15400 here
# so that they never meet the image tests' 15000). Prints the same KEY=VALUE env.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/tests/images/lib.sh"
exec 8>/tmp/liana-engine-setup.lock
flock 8
need runsc runsc
need newuidmap uidmap
need /bin/busybox busybox-static
need strip binutils
need setpriv util-linux
need nft nftables
need pasta passt
need slirp4netns slirp4netns
need ip iproute2
if ! id lianatest >/dev/null 2>&1; then
  useradd -m lianatest
fi
if ! grep -q '^lianatest:' /etc/subuid; then
  usermod --add-subuids 300000-365535 --add-subgids 300000-365535 lianatest
fi
export LIANA_TEST_PORT=${LIANA_TEST_PORT:-15400}
exec "$REPO/tests/images/setup.sh" "$@"

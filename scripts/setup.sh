#!/bin/bash
# Prepares this machine for liana's tests (idempotent; run as root):
#  - Debian packages the tests use (real runtimes, registries, helpers),
#  - the unprivileged test user `lianatest` with /etc/subuid and /etc/subgid ranges,
#  - /dev/net/tun usable by unprivileged users (Debian's udev default is 0666; this
#    machine kind ships 0600), for rootless slirp4netns.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }

mapfile -t PKGS < <(grep -v '^#' "$(dirname "$0")/packages.txt" | grep -v '^$')
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  # Packages must not start their services (docker-registry would take :5000).
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -n "$created_policy" ] && rm -f "$policy"
  # Stop a registry the package may have started anyway.
  pkill -x docker-registry 2>/dev/null || true
fi

if ! id lianatest >/dev/null 2>&1; then
  useradd -m -s /bin/sh lianatest
fi
for f in /etc/subuid /etc/subgid; do
  grep -q '^lianatest:' "$f" 2>/dev/null || echo "lianatest:100000:65536" >> "$f"
done
[ -c /dev/net/tun ] && chmod 0666 /dev/net/tun
echo "setup.sh: ready"

#!/usr/bin/env bash
# lib/rootless.sh setup DIR RUNTIME ROOTFS_TAR | exec DIR CMD... | clean DIR
#
# Rootless podman as the unprivileged user `lianatest` (created by scripts/setup.sh,
# with /etc/subuid and /etc/subgid ranges): its own XDG_RUNTIME_DIR (0700, owned by the
# user: podman keeps its user namespace's pause process, conmon sockets and the runtime's
# state there), HOME and podman configuration under DIR, storage driver vfs (no
# fuse-overlayfs needed), the busybox image imported by the user from ROOTFS_TAR.
#   setup  writes DIR/env and imports the image
#   exec   runs CMD as the user with that environment (and only it)
#   clean  removes the user's containers, stops its pause process (pid from podman's
#          tmp dir), deletes DIR
set -euo pipefail
USER_NAME=lianatest
HERE=$(cd "$(dirname "$0")" && pwd)
verb=${1:?usage: rootless.sh setup|exec|clean DIR ...}
DIR=${2:?usage: rootless.sh setup|exec|clean DIR ...}
shift 2

as_user() {
  # shellcheck disable=SC2046
  runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    $(cat "$DIR/env") "$@"
}

case "$verb" in
setup)
  rt=$1 tar=$2
  id "$USER_NAME" >/dev/null 2>&1 || { echo "rootless.sh: user $USER_NAME missing (scripts/setup.sh)" >&2; exit 1; }
  mkdir -p "$DIR"
  install -d -m 0700 "$DIR/run"
  chown -R "$USER_NAME:" "$DIR"
  cat >"$DIR/env" <<EOC
HOME=$DIR
USER=$USER_NAME
XDG_RUNTIME_DIR=$DIR/run
CONTAINERS_CONF=$DIR/podman/containers.conf
CONTAINERS_STORAGE_CONF=$DIR/podman/storage.conf
CONTAINERS_REGISTRIES_CONF=$DIR/podman/registries.conf
EOC
  as_user bash -c ". '$HERE/podman-env.sh' && podman_env '$DIR/podman' vfs"
  cp "$tar" "$DIR/rootfs.tar"; chown "$USER_NAME:" "$DIR/rootfs.tar"
  as_user podman import -q --change 'CMD=["/bin/sh"]' "$DIR/rootfs.tar" \
    localhost/liana-test/busybox:latest >/dev/null
  ;;
exec)
  as_user "$@"
  ;;
clean)
  [ -f "$DIR/env" ] && as_user podman rm -a -f -t 0 >/dev/null 2>&1
  pidfile=$DIR/podman/tmp/pause.pid
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    # Only the user's podman pause process, by the pid podman recorded.
    if [ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = "$USER_NAME" ]; then kill "$pid" 2>/dev/null || true; fi
  fi
  . "$HERE/podman-env.sh"
  unmount_under "$DIR"
  rm -rf "$DIR"
  ;;
*) echo "rootless.sh: unknown verb $verb" >&2; exit 2 ;;
esac

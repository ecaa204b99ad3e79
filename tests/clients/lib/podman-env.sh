# shellcheck shell=bash
# podman_env DIR: writes an isolated podman 4.3 configuration under DIR and exports
# CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF so that podman
# uses it (storage, runroot, tmp dir, events, networks: all under DIR).
#
# Choices for this kind of machine (no systemd, cgroups v1 hybrid, no CAP_SYS_RESOURCE,
# no network but loopback):
#   - cgroup_manager cgroupfs, events_logger file (no systemd, no journald);
#   - default_ulimits clamped to this shell's hard limits: podman asks for nofile=1048576
#     and nproc=4194304 by default, which a runtime cannot set without CAP_SYS_RESOURCE;
#     conmon runs the runtime with nproc at most 32768 here;
#   - netns "none": no netavark bridge, no iptables changes on the host;
#   - storage driver overlay as root, vfs rootless (no fuse-overlayfs needed);
#   - no registries: tests import their images from tarballs.
# Rootless: run it as the user, with XDG_RUNTIME_DIR set; DIR must belong to the user.
podman_env() {
  local dir=$1 driver=${2:-overlay}
  mkdir -p "$dir"/{root,runroot,tmp,networks,volumes} || return 1
  dir=$(cd "$dir" && pwd)
  local nofile nproc
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  cat >"$dir/storage.conf" <<EOC
[storage]
driver = "$driver"
graphroot = "$dir/root"
runroot = "$dir/runroot"
EOC
  cat >"$dir/containers.conf" <<EOC
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[network]
network_config_dir = "$dir/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
EOC
  printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' >"$dir/registries.conf"
  export CONTAINERS_CONF=$dir/containers.conf
  export CONTAINERS_STORAGE_CONF=$dir/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$dir/registries.conf
}

# podman_clean DIR: removes the containers of the podman set up in DIR, unmounts what is
# mounted under DIR (deepest first) and deletes DIR. Best effort.
podman_clean() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/containers.conf" ]; then
    CONTAINERS_CONF=$dir/containers.conf CONTAINERS_STORAGE_CONF=$dir/storage.conf \
      CONTAINERS_REGISTRIES_CONF=$dir/registries.conf podman rm -a -f -t 0 >/dev/null 2>&1
  fi
  unmount_under "$dir"
  rm -rf "$dir"
}

# unmount_under DIR: unmounts every mount point below DIR, deepest first.
unmount_under() {
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

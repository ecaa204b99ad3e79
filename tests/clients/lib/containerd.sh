# shellcheck shell=bash
# containerd_start DIR [EXTRA_TOML]: starts a private containerd 1.6 whose config, root,
# state and sockets are under DIR (DIR/containerd.sock), so that a system containerd is
# not disturbed. EXTRA_TOML is appended to the generated config.toml (a plugin section,
# such as the CRI plugin's runtimes). Without EXTRA_TOML the CRI plugin is disabled: ctr
# talks to containerd's own API and needs no CNI, pause image or kubelet.
# Waits until the socket answers; the daemon's pid is in DIR/containerd.pid, its log in
# DIR/containerd.log.
# Shims put their sockets in /run/containerd/s/<hash of socket path, namespace and id>,
# which does not clash with a system containerd's.
containerd_start() {
  local dir=$1 extra=${2:-}
  mkdir -p "$dir"/{root,state} || return 1
  dir=$(cd "$dir" && pwd)
  local sock=$dir/containerd.sock disabled='"io.containerd.grpc.v1.cri", '
  [ -n "$extra" ] && disabled=
  cat >"$dir/config.toml" <<EOC
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [${disabled}"io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

$extra
EOC
  rm -f "$sock" "$sock.ttrpc"
  setsid containerd --config "$dir/config.toml" </dev/null >>"$dir/containerd.log" 2>&1 &
  echo $! >"$dir/containerd.pid"
  local i
  for i in $(seq 1 100); do
    ctr -a "$sock" version >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not start ($dir/containerd.log):" >&2
  tail -20 "$dir/containerd.log" >&2
  containerd_stop "$dir"
  return 1
}

# containerd_stop DIR: kills and deletes the tasks and containers of every namespace of
# the containerd started in DIR (so their shims exit), stops containerd by its pid,
# unmounts what is left under DIR. Best effort; keeps DIR (logs).
containerd_stop() {
  local dir=$1 sock=$1/containerd.sock pid ns t c
  [ -s "$dir/containerd.pid" ] || return 0
  pid=$(cat "$dir/containerd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    for ns in $(ctr -a "$sock" namespaces ls -q 2>/dev/null); do
      for t in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        ctr -a "$sock" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1
        ctr -a "$sock" -n "$ns" tasks delete -f "$t" >/dev/null 2>&1
      done
      for c in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
        ctr -a "$sock" -n "$ns" containers delete "$c" >/dev/null 2>&1
      done
    done
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$dir/containerd.pid"
  unmount_under "$dir"
}

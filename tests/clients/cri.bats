#!/usr/bin/env bats
# The Kubernetes path without a kubelet: containerd 1.6 with its CRI plugin, configured
# with the named runtime of docs/containerd.md (BinaryName = the runtime under test), and
# driven over the CRI gRPC socket as kubelet does, with the handler of the RuntimeClass in
# docs/kubernetes.md. Pods use the host network (no CNI plugin here).
load helpers

setup_file() {
  . "$BATS_TEST_DIRNAME/lib/podman-env.sh"
  . "$BATS_TEST_DIRNAME/lib/containerd.sh"
  export CRI_DIR=$CLIENTS_W/containerd-cri
  mkdir -p "$CRI_DIR"/{cni-conf,cni-bin,pods}
  # Test-only CRI settings first: a local sandbox ("pause") image; no CNI; and
  # restrict_oom_score_adj, as this machine cannot lower oom_score_adj (no
  # CAP_SYS_RESOURCE) and the CRI asks -998 for sandboxes. Then the documented config
  # (its `version = 2` line is already in the generated file).
  local extra
  extra=$(cat <<EOC
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CRI_DIR/cni-bin"
  conf_dir = "$CRI_DIR/cni-conf"
$(snippet containerd.md config-toml | grep -v '^version = ')
EOC
)
  containerd_start "$CRI_DIR" "$extra"
  local i
  for i in busybox pause; do
    ctr -a "$CRI_DIR/containerd.sock" -n k8s.io images import "$CLIENTS_W/$i.tar" >/dev/null
  done
  export HANDLER
  HANDLER=$(snippet kubernetes.md runtimeclass | awk '$1 == "handler:" {print $2}')
  export SHIM_ROOT=/run/containerd/runc/k8s.io
}

teardown_file() {
  . "$BATS_TEST_DIRNAME/lib/podman-env.sh"
  . "$BATS_TEST_DIRNAME/lib/containerd.sh"
  containerd_stop "$CRI_DIR"
  rmdir "$SHIM_ROOT" 2>/dev/null || true   # only if empty: other CRIs may share it
}

cri() { /usr/bin/python3 "$BATS_TEST_DIRNAME/cri/crictl.py" "$CRI_DIR/containerd.sock" "$@"; }
rtstate() { "$RT" --root "$SHIM_ROOT" state "$1" | jq -r .status; }

@test "CRI: the documented config loads, the RuntimeClass handler is liana" {
  [ "$HANDLER" = liana ]
  run -0 cri version
  [[ "$output" == containerd* ]]
  ! grep -q 'failed to load plugin io.containerd.grpc.v1.cri' "$CRI_DIR/containerd.log"
}

@test "CRI: RunPodSandbox with the handler runs the sandbox with the runtime under test" {
  run -0 --separate-stderr cri runp pod-a "$HANDLER" "$CRI_DIR/pods"
  echo "$output" >"$BATS_FILE_TMPDIR/pod"
  [ "$(rtstate "$output")" = running ]
}

@test "CRI: create, start, exec into and inspect a container; its log" {
  local pod; pod=$(cat "$BATS_FILE_TMPDIR/pod")
  run -0 --separate-stderr cri create "$pod" c-a "$IMAGE" "$CRI_DIR/pods" sh -c 'echo hello-log; exec sleep 1000'
  local cid=$output
  echo "$cid" >"$BATS_FILE_TMPDIR/cid"
  run -0 cri start "$cid"
  run -0 cri inspect "$cid"
  [ "$output" = "RUNNING 0 -" ]
  [ "$(rtstate "$cid")" = running ]
  run -0 --separate-stderr cri exec "$cid" sh -c 'echo exec-out; id -u'
  [ "$output" = "$(printf 'exec-out\n0')" ]
  run -4 cri exec "$cid" sh -c 'exit 4'
  wait_until 10 grep -q 'stdout F hello-log$' "$CRI_DIR/pods/c-a.log"
}

@test "CRI: StopContainer kills after the grace period (137); an exit status is reported" {
  local pod cid; pod=$(cat "$BATS_FILE_TMPDIR/pod") cid=$(cat "$BATS_FILE_TMPDIR/cid")
  # sleep as pid 1 ignores SIGTERM: SIGKILL after 1 s
  run -0 cri stop "$cid" 1
  run -0 cri inspect "$cid"
  [ "$output" = "EXITED 137 Error" ]
  run -0 --separate-stderr cri create "$pod" c-b "$IMAGE" "$CRI_DIR/pods" sh -c 'exit 3'
  local cid2=$output
  run -0 cri start "$cid2"
  wait_until 10 sh -c "/usr/bin/python3 $BATS_TEST_DIRNAME/cri/crictl.py $CRI_DIR/containerd.sock inspect $cid2 | grep -q EXITED"
  run -0 cri inspect "$cid2"
  [ "$output" = "EXITED 3 Error" ]
  run -0 cri rm "$cid2"
}

@test "CRI: remove the container and the pod: nothing left in the runtime's state" {
  local pod cid; pod=$(cat "$BATS_FILE_TMPDIR/pod") cid=$(cat "$BATS_FILE_TMPDIR/cid")
  run -0 cri rm "$cid"
  run -0 cri stopp "$pod"
  run -0 cri rmp "$pod"
  run -0 "$RT" --root "$SHIM_ROOT" list -q
  [[ "$output" != *"$pod"* ]] && [[ "$output" != *"$cid"* ]]
}

@test "CRI: a handler containerd does not know is refused" {
  run -1 --separate-stderr cri runp pod-x no-such-handler "$CRI_DIR/pods"
  [[ "$stderr" == *no-such-handler* ]]
}

#!/usr/bin/env bats
# containerd 1.6 (private daemon on its own socket, CRI disabled) with its
# io.containerd.runc.v2 shim using the runtime under test as the runc binary
# (`ctr run --runc-binary PATH`). The shim keeps the runtime's state in
# /run/containerd/runc/NAMESPACE: the runtime's own `state` there proves which binary ran.
load helpers

setup_file() {
  . "$BATS_TEST_DIRNAME/lib/podman-env.sh"
  . "$BATS_TEST_DIRNAME/lib/containerd.sh"
  export CTRD_DIR=$CLIENTS_W/containerd-ctr
  containerd_start "$CTRD_DIR"
  # A namespace of our own: the shims' state root is shared with other containerds.
  export CONTAINERD_ADDRESS=$CTRD_DIR/containerd.sock CONTAINERD_NAMESPACE=liana-clients-$$
  ctr images import "$CLIENTS_W/busybox.tar" >/dev/null
  export SHIM_ROOT=/run/containerd/runc/$CONTAINERD_NAMESPACE
}

teardown_file() {
  . "$BATS_TEST_DIRNAME/lib/podman-env.sh"
  . "$BATS_TEST_DIRNAME/lib/containerd.sh"
  containerd_stop "$CTRD_DIR"
  rmdir "$SHIM_ROOT" 2>/dev/null || true
  # containerd makes /NAMESPACE the parent cgroup of its containers and leaves it.
  rmdir /sys/fs/cgroup/*/"$CONTAINERD_NAMESPACE" /sys/fs/cgroup/"$CONTAINERD_NAMESPACE" 2>/dev/null || true
}

teardown() {
  local t
  for t in $(ctr tasks ls -q 2>/dev/null); do
    ctr tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
    wait_until 10 sh -c "ctr tasks ls | grep -q '^$t .*STOPPED'"
    ctr tasks delete -f "$t" >/dev/null 2>&1
  done
  for t in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$t" >/dev/null 2>&1; done
}

crun() { ctr run --runc-binary "$RT" "$@"; }
status_of() { ctr tasks ls | awk -v t="$1" '$1 == t {print $3}'; }

@test "ctr run --rm: output, exit status, nothing left behind" {
  run -0 --separate-stderr crun --rm "$IMAGE" c-rm echo hello
  [ "$output" = hello ]
  run -3 crun --rm "$IMAGE" c-rm3 sh -c 'exit 3'
  run -0 ctr containers ls -q
  [ -z "$output" ]
  run -0 "$RT" --root "$SHIM_ROOT" list -q
  [ -z "$output" ]
}

@test "ctr run -d, then task exec (exit status, output), task ps; the runtime's state" {
  run -0 crun -d "$IMAGE" c-exec sleep 1000
  run -0 "$RT" --root "$SHIM_ROOT" state c-exec
  [ "$(jq -r .status <<<"$output")" = running ]
  [ "$(jq -r .pid <<<"$output")" = "$(ctr tasks ls | awk '$1 == "c-exec" {print $2}')" ]
  run -0 --separate-stderr ctr task exec --exec-id e1 c-exec sh -c 'echo in-exec; id -u'
  [ "$output" = "$(printf 'in-exec\n0')" ]
  run -6 ctr task exec --exec-id e2 c-exec sh -c 'exit 6'
  # The shim reports the runtime's error (from its --log JSON file) to ctr.
  run -1 ctr task exec --exec-id e3 c-exec /nonexistent
  [[ "$output" == *"/nonexistent"*"no such file or directory"* ]]
  run -0 ctr task exec --exec-id e4 -d c-exec sleep 999
  run -0 ctr task ps c-exec
  # init and the detached exec, which ps names by its exec id
  [ "$(tail -n +2 <<<"$output" | wc -l)" -eq 2 ]
  [[ "$output" == *"ExecID:e4"* ]]
}

@test "ctr run -t and task exec -t: a terminal through the console socket" {
  run with_tty "ctr run -t --rm --runc-binary $RT $IMAGE c-tty sh -c 'tty; test -t 0 && echo is-tty; exit 5'" </dev/null
  [ "$status" -eq 5 ]
  [[ "$output" == *"/dev/pts/0"* ]] && [[ "$output" == *is-tty* ]]
  run -0 crun -d "$IMAGE" c-tty2 sleep 1000
  run with_tty "ctr task exec -t --exec-id et c-tty2 sh -c 'tty; exit 2'" </dev/null
  [ "$status" -eq 2 ]
  [[ "$output" == *"/dev/pts/"* ]]
}

@test "ctr task kill: a signal reaches the init, its exit status is reported" {
  run -0 crun -d "$IMAGE" c-kill sh -c 'trap "exit 9" USR1; touch /tmp/ready; while :; do sleep 0.1; done'
  wait_until 10 ctr task exec --exec-id ready c-kill test -e /tmp/ready
  run -0 ctr task kill -s SIGUSR1 c-kill
  wait_until 10 sh -c '[ "$(ctr tasks ls | awk '\''$1 == "c-kill" {print $3}'\'')" = STOPPED ]'
  run -0 ctr task delete c-kill
  [[ "$output" == *"exit code 9"* ]]
  run -0 "$RT" --root "$SHIM_ROOT" list -q
  [[ "$output" != *c-kill* ]]
}

@test "ctr task kill -a: every process of the container, exec'd ones too" {
  run -0 crun -d "$IMAGE" c-killall sleep 1000
  run -0 ctr task exec --exec-id ek -d c-killall sleep 998
  wait_until 10 sh -c '[ "$(ctr task ps c-killall | tail -n +2 | wc -l)" -eq 2 ]'
  local pids; pids=$(ctr task ps c-killall | tail -n +2 | awk '{print $1}')
  run -0 ctr task kill -a -s SIGKILL c-killall
  wait_until 10 sh -c '[ "$(ctr tasks ls | awk '\''$1 == "c-killall" {print $3}'\'')" = STOPPED ]'
  local p
  for p in $pids; do wait_until 10 sh -c "! kill -0 $p"; done
}

@test "ctr task pause and resume" {
  run -0 crun -d "$IMAGE" c-pause sleep 1000
  run -0 ctr task pause c-pause
  [ "$(status_of c-pause)" = PAUSED ]
  run -0 "$RT" --root "$SHIM_ROOT" state c-pause
  [ "$(jq -r .status <<<"$output")" = paused ]
  run -0 ctr task resume c-pause
  [ "$(status_of c-pause)" = RUNNING ]
  run -0 "$RT" --root "$SHIM_ROOT" state c-pause
  [ "$(jq -r .status <<<"$output")" = running ]
}

@test "ctr task metrics: the container's cgroup (memory limit, pids)" {
  run -0 crun -d --memory-limit 67108864 "$IMAGE" c-metrics sh -c 'sleep 1000 & sleep 1000 & wait'
  wait_until 10 sh -c '[ "$(ctr task ps c-metrics | tail -n +2 | wc -l)" -eq 3 ]'
  run -0 ctr task metrics c-metrics
  [[ "$output" =~ memory.limit_in_bytes\ +67108864 ]] || [[ "$output" =~ memory.limit\ +67108864 ]]
  [[ "$output" =~ pids.current\ +3 ]]
  run -0 ctr task metrics --format json c-metrics
  [ "$(jq -r .pids.current <<<"$output")" = 3 ]
}

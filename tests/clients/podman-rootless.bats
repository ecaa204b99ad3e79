#!/usr/bin/env bats
# Rootless podman 4.3 as the unprivileged user lianatest, with the same runtime: podman
# runs it as uid 0 in the user's namespace (subordinate ids from /etc/subuid), with the
# user's XDG_RUNTIME_DIR. On this cgroup v1 host rootless containers get no cgroup
# (runc: the same), so limits, stats and pause are left to the root suite.
load helpers

setup_file() {
  export RL_DIR=$CLIENTS_W/rootless
  "$BATS_TEST_DIRNAME/lib/rootless.sh" setup "$RL_DIR" "$RT" "$CLIENTS_W/rootfs.tar"
}

teardown_file() {
  "$BATS_TEST_DIRNAME/lib/rootless.sh" clean "$RL_DIR"
}

teardown() { upm rm -a -f -t 0 >/dev/null 2>&1 || true; }

# upm ARGS...: podman as the user, with the runtime under test.
upm() { "$BATS_TEST_DIRNAME/lib/rootless.sh" exec "$RL_DIR" podman --runtime "$RT" "$@"; }

@test "rootless podman run --rm: root in the container is the user outside" {
  run -0 --separate-stderr upm run --rm "$IMAGE" sh -c 'id -u; cat /proc/self/uid_map'
  local uid; uid=$(id -u lianatest)
  [ "$(sed -n 1p <<<"$output")" = 0 ]
  [[ "$(sed -n 2p <<<"$output")" =~ ^\ +0\ +$uid\ +1$ ]]
  run -3 upm run --rm "$IMAGE" sh -c 'exit 3'
}

@test "rootless podman: the runtime keeps its state under the user's XDG_RUNTIME_DIR" {
  run -0 upm run -d --name r-state "$IMAGE" sleep 1000
  local id; id=$(upm inspect -f '{{.Id}}' r-state)
  local name; name=$(basename "$RT")
  [ "$name" = runc ] || name=liana
  [ -d "$RL_DIR/run/$name/$id" ]
  [ "$(stat -c %U "$RL_DIR/run/$name/$id")" = lianatest ]
}

@test "rootless podman run -d, exec, top, logs, stop, rm" {
  run -0 upm run -d --name r-detach "$IMAGE" sh -c 'trap "exit 7" TERM; echo started; while :; do sleep 0.1; done'
  wait_until 10 sh -c "$BATS_TEST_DIRNAME/lib/rootless.sh exec $RL_DIR podman logs r-detach | grep -qx started"
  run -0 --separate-stderr upm exec r-detach sh -c 'echo in-exec; id -u'
  [ "$output" = "$(printf 'in-exec\n0')" ]
  run -5 upm exec r-detach sh -c 'exit 5'
  run -0 upm top r-detach pid args
  [[ "$output" == *"sleep 0.1"* ]] || [[ "$output" == *"trap"* ]]
  run -0 upm stop -t 10 r-detach
  run -0 upm inspect -f '{{.State.ExitCode}}' r-detach
  [ "$output" = 7 ]
  run -0 --separate-stderr upm logs r-detach
  [ "$output" = started ]
  run -0 upm rm r-detach
}

@test "rootless podman run -it: a terminal through the console socket" {
  # The sleep: under load podman 4.3 can attach to conmon after a quick process has
  # already written (with runc too); the output then only reaches the log.
  run with_tty "$BATS_TEST_DIRNAME/lib/rootless.sh exec $RL_DIR podman --runtime $RT run -it --rm $IMAGE sh -c 'sleep 0.5; tty; exit 4'" </dev/null
  echo "$output"
  [ "$status" -eq 4 ]
  [[ "$output" == *"/dev/pts/0"* ]]
}

@test "rootless podman: --read-only, --cap-drop, default seccomp, devices" {
  run --separate-stderr upm run --rm --read-only --cap-drop CHOWN "$IMAGE" sh -c \
    'touch /x || echo ro; grep -E "^(CapEff|Seccomp):" /proc/self/status; echo hi > /dev/null && test -c /dev/null && echo dev-ok'
  [ "$status" -eq 0 ]
  [[ "$output" == *ro* ]] && [[ "$output" == *dev-ok* ]]
  [[ "$output" == *"Seccomp:"$'\t'"2"* ]]
  [ $(($(capeff "$output") & 1)) -eq 0 ]
}

@test "rootless podman kill: SIGKILL by default (137)" {
  run -0 upm run -d --name r-kill "$IMAGE" sleep 1000
  run -0 upm kill r-kill
  run -0 timeout 30 "$BATS_TEST_DIRNAME/lib/rootless.sh" exec "$RL_DIR" podman wait r-kill
  [ "$output" = 137 ]
}

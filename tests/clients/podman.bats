#!/usr/bin/env bats
# podman 4.3 (conmon calls the runtime) with `--runtime PATH`, as root. Limits are read
# from inside the container, through its cgroup namespace view of /sys/fs/cgroup.
load helpers

teardown() {
  # A container made with the docs' config needs it to be removed (its runtime's name).
  [ -f "$CLIENTS_W/podman-docs/containers.conf" ] &&
    CONTAINERS_CONF=$CLIENTS_W/podman-docs/containers.conf podman rm -a -f -t 0 >/dev/null 2>&1
  podman rm -a -f -t 0 >/dev/null 2>&1 || true
}

@test "podman run --rm: output and exit status" {
  run --separate-stderr pm run --rm "$IMAGE" echo hello
  [ "$status" -eq 0 ] && [ "$output" = hello ]
  run pm run --rm "$IMAGE" sh -c 'exit 3'
  [ "$status" -eq 3 ]
}

@test "podman run: a missing command exits 127, a non-executable one 126" {
  run -127 pm run --rm "$IMAGE" /nonexistent
  run -126 pm run --rm "$IMAGE" /etc/passwd
}

@test "podman run -d, logs, stop (SIGTERM reaches the process), rm" {
  run -0 pm run -d --name c-detach "$IMAGE" sh -c \
    'trap "echo got-term; exit 7" TERM; echo started; while :; do sleep 0.1; done'
  wait_until 10 sh -c 'podman logs c-detach | grep -qx started'
  run -0 pm inspect -f '{{.State.Status}}' c-detach
  [ "$output" = running ]
  run -0 pm stop -t 10 c-detach
  run -0 pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' c-detach
  [ "$output" = "exited 7" ]
  run -0 --separate-stderr pm logs c-detach
  [ "$output" = "$(printf 'started\ngot-term')" ]
  run -0 pm rm c-detach
  run pm inspect c-detach
  [ "$status" -ne 0 ]
}

@test "podman run -it: a terminal through the console socket" {
  # The sleep: under load podman 4.3 can attach to conmon after a quick process has
  # already written (with runc too); the output then only reaches the log.
  run with_tty "podman --runtime $RT run -it --rm $IMAGE sh -c 'sleep 0.5; tty; test -t 0 && test -t 1 && echo both-ttys; exit 4'" </dev/null
  [ "$status" -eq 4 ]
  [[ "$output" == *"/dev/pts/0"* ]]
  [[ "$output" == *both-ttys* ]]
}

@test "podman run -i: stdin reaches the container without a terminal" {
  run -0 --separate-stderr pm run -i --rm "$IMAGE" sh -c 'tty || true; cat' <<<"from-stdin"
  [ "$output" = "$(printf 'not a tty\nfrom-stdin')" ]
}

@test "podman exec: plain (exit status, environment, user) and -t" {
  run -0 pm run -d --name c-exec "$IMAGE" sleep 1000
  run -0 --separate-stderr pm exec c-exec sh -c 'echo in-exec; tty || true'
  [ "$output" = "$(printf 'in-exec\nnot a tty')" ]
  run pm exec c-exec sh -c 'exit 5'
  [ "$status" -eq 5 ]
  run -0 --separate-stderr pm exec -e FOO=bar -u 65534 -w /tmp c-exec sh -c 'echo $FOO $(id -u) $PWD'
  [ "$output" = "bar 65534 /tmp" ]
  run with_tty "podman --runtime $RT exec -t c-exec sh -c 'tty; exit 6'" </dev/null
  [ "$status" -eq 6 ]
  [[ "$output" == *"/dev/pts/"* ]]
  run -127 pm exec c-exec /nonexistent
}

@test "podman pause and unpause" {
  run -0 pm run -d --name c-pause "$IMAGE" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done'
  run -0 pm pause c-pause
  run -0 pm inspect -f '{{.State.Status}}' c-pause
  [ "$output" = paused ]
  # Frozen: the counter does not move.
  local mnt; mnt=$(podman mount c-pause)
  local a b; a=$(cat "$mnt/tmp/n"); sleep 0.5; b=$(cat "$mnt/tmp/n")
  [ "$a" = "$b" ]
  run -0 pm unpause c-pause
  run -0 pm inspect -f '{{.State.Status}}' c-pause
  [ "$output" = running ]
  sleep 0.5
  [ "$(cat "$mnt/tmp/n")" != "$b" ]
}

@test "podman kill: SIGKILL by default (137), a named signal reaches the process" {
  run -0 pm run -d --name c-kill "$IMAGE" sleep 1000
  run -0 pm kill c-kill
  run -0 timeout 30 podman wait c-kill
  [ "$output" = 137 ]
  run -0 pm run -d --name c-usr1 "$IMAGE" sh -c 'trap "exit 9" USR1; echo ready; while :; do sleep 0.1; done'
  wait_until 10 sh -c 'podman logs c-usr1 | grep -qx ready'
  run -0 pm kill -s USR1 c-usr1
  run -0 timeout 30 podman wait c-usr1
  [ "$output" = 9 ]
}

@test "podman top: the container's processes (runtime ps)" {
  run -0 pm run -d --name c-top "$IMAGE" sh -c 'sleep 1001 & sleep 1002'
  wait_until 10 sh -c "podman --runtime $RT top c-top | grep -q 'sleep 1002'"
  run -0 pm top c-top pid args
  [[ "$output" == *"sleep 1001"* ]]
  [[ "$output" == *"sleep 1002"* ]]
  [ "$(grep -c sleep <<<"$output")" -eq 2 ]
}

@test "podman stats: memory and pids of the container's cgroup" {
  run -0 pm run -d --name c-stats --memory 64m "$IMAGE" sh -c 'sleep 1000 & sleep 1000 & wait'
  run -0 --separate-stderr pm stats --no-stream --format '{{.Name}} {{.PIDs}} {{.MemUsage}}' c-stats
  [[ "$output" =~ ^c-stats\ 3\ [0-9.]+[kM]B\ /\ 67.11MB$ ]]
}

@test "podman run --memory, --pids-limit, --cpuset-cpus: limits seen inside" {
  run -0 --separate-stderr pm run --rm --memory 64m --pids-limit 42 --cpuset-cpus 0 "$IMAGE" sh -c \
    "$(cgfile memory/memory.limit_in_bytes memory.max); $(cgfile pids/pids.max pids.max); $(cgfile cpuset/cpuset.cpus cpuset.cpus)"
  [ "$output" = "$(printf '67108864\n42\n0')" ]
}

@test "podman run --read-only: the root is read-only, /tmp and /run are writable" {
  run --separate-stderr pm run --rm --read-only "$IMAGE" sh -c 'touch /x; echo rc=$?; touch /tmp/x /run/x && echo tmp-ok'
  [ "$status" -eq 0 ]
  [[ "$output" == *"rc=1"* ]] && [[ "$output" == *tmp-ok* ]]
  [[ "$stderr" == *"Read-only file system"* ]]
}

@test "podman run --cap-drop: the dropped capabilities are gone, the others stay" {
  run -0 --separate-stderr pm run --rm "$IMAGE" cat /proc/self/status
  local full; full=$(capeff "$output")
  run -0 --separate-stderr pm run --rm --cap-drop NET_RAW,CHOWN "$IMAGE" cat /proc/self/status
  local dropped; dropped=$(capeff "$output")
  # CHOWN is bit 0, NET_RAW bit 13, KILL bit 5.
  [ $((full & 1)) -eq 1 ] && [ $((full >> 13 & 1)) -eq 1 ]
  [ "$dropped" -eq $((full & ~1 & ~(1 << 13))) ]
  [ $((dropped >> 5 & 1)) -eq 1 ]
  run --separate-stderr pm run --rm --cap-drop CHOWN "$IMAGE" chown 65534 /tmp
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"Operation not permitted"* ]]
}

@test "podman's default seccomp profile is applied unless seccomp=unconfined" {
  run -0 --separate-stderr pm run --rm "$IMAGE" grep -E '^Seccomp(_filters)?:' /proc/self/status
  [ "$output" = "$(printf 'Seccomp:\t2\nSeccomp_filters:\t1')" ]
  run -0 --separate-stderr pm run --rm --security-opt seccomp=unconfined "$IMAGE" grep '^Seccomp:' /proc/self/status
  [ "$output" = "$(printf 'Seccomp:\t0')" ]
}

@test "podman update --memory --cpus: the runtime's update, seen inside" {
  run -0 pm run -d --name c-update --memory 64m "$IMAGE" sleep 1000
  run -0 pm update --memory 128m --cpus 0.5 c-update
  run -0 --separate-stderr pm exec c-update sh -c \
    "$(cgfile memory/memory.limit_in_bytes memory.max); $(cgfile cpu/cpu.cfs_quota_us cpu.max)"
  [[ "$output" == "134217728"$'\n'"50000"* ]]
}

@test "runtime update --pids-limit on a podman container (podman 4.3 has no --pids-limit to update)" {
  run -0 pm run -d --name c-rtupdate --pids-limit 10 "$IMAGE" sleep 1000
  local id root
  id=$(podman inspect -f '{{.Id}}' c-rtupdate)
  # podman leaves the runtime's state in its default root (no --root): /run/<name>.
  run -0 "$RT" state "$id"
  [ "$(jq -r .status <<<"$output")" = running ]
  run -0 "$RT" update --pids-limit 20 "$id"
  run -0 --separate-stderr pm exec c-rtupdate sh -c "$(cgfile pids/pids.max pids.max)"
  [ "$output" = 20 ]
}

@test "docs/podman.md: containers.conf [engine.runtimes] names the runtime" {
  local d=$CLIENTS_W/podman-docs
  mkdir -p "$d"
  # The test's containers.conf plus the documented table; then the runtime by name,
  # and as the default runtime.
  { cat "$CONTAINERS_CONF"; echo; snippet podman.md containers-conf; } >"$d/containers.conf"
  grep -q '^\[engine.runtimes\]' "$d/containers.conf"
  run -0 --separate-stderr env CONTAINERS_CONF="$d/containers.conf" podman --runtime liana run --rm "$IMAGE" echo by-name
  [ "$output" = by-name ]
  sed -i 's/^\[engine\]$/[engine]\nruntime = "liana"/' "$d/containers.conf"
  run -0 --separate-stderr env CONTAINERS_CONF="$d/containers.conf" podman run -d --name c-docs "$IMAGE" sleep 1000
  run -0 env CONTAINERS_CONF="$d/containers.conf" podman inspect -f '{{.OCIRuntime}}' c-docs
  [ "$output" = liana ]
  # The state the runtime under test keeps proves that it ran the container.
  run -0 "$RT" state "$(podman inspect -f '{{.Id}}' c-docs)"
  run -0 env CONTAINERS_CONF="$d/containers.conf" podman rm -f -t 0 c-docs
}

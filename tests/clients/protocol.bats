#!/usr/bin/env bats
# The parts of runc's command-line protocol that podman (conmon) and containerd's shim
# rely on, checked on the runtime directly with the calls those clients make: --log
# JSON lines, state fields, events --stats, ps --format json, kill --all, delete --force,
# exec --process with --detach and --pid-file, exit codes, --systemd-cgroup accepted.
load helpers

setup() {
  B=$BATS_TEST_TMPDIR/bundle
  mkdir -p "$B/rootfs"
  tar -C "$B/rootfs" -xf "$CLIENTS_W/rootfs.tar"
  "$RT" spec --bundle "$B"
  jq '.process.terminal = false | .process.args = ["sleep", "1000"] | .root.readonly = false' \
    "$B/config.json" >"$B/c.json" && mv "$B/c.json" "$B/config.json"
  ROOT=$BATS_TEST_TMPDIR/state
  ID=proto-$BATS_TEST_NUMBER-$$
}

teardown() { "$RT" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true; }

rt() { "$RT" --root "$ROOT" "$@"; }
# rtd ARGS...: for create and run -d, whose container keeps the caller's stdio (no
# terminal): files, not the pipe bats reads to its end.
rtd() { "$RT" --root "$ROOT" "$@" </dev/null >>"$BATS_TEST_TMPDIR/ctr.out" 2>&1; }
args() { jq --argjson a "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '.process.args = $a' "$B/config.json" >"$B/c.json" && mv "$B/c.json" "$B/config.json"; }

@test "--log FILE --log-format json: errors are JSON lines with level, msg, time" {
  run -1 rt --log "$BATS_TEST_TMPDIR/log.json" --log-format json create --bundle /nonexistent-bundle "$ID"
  [ -s "$BATS_TEST_TMPDIR/log.json" ]
  run -0 jq -e -s 'all(has("level") and has("msg") and has("time"))' "$BATS_TEST_TMPDIR/log.json"
  run -0 jq -r -s 'map(select(.level == "error")) | .[0].msg' "$BATS_TEST_TMPDIR/log.json"
  [[ "$output" == *nonexistent-bundle* ]]
}

@test "state: runc's fields through created, running, stopped" {
  run -0 rtd create --bundle "$B" --pid-file "$BATS_TEST_TMPDIR/pid" "$ID"
  run -0 rt state "$ID"
  local s=$output
  [ "$(jq -r '[.ociVersion, .id, .status, .bundle, .rootfs] | join(" ")' <<<"$s")" = \
    "$(jq -r .ociVersion "$B/config.json") $ID created $B $B/rootfs" ]
  [ "$(jq -r .pid <<<"$s")" = "$(cat "$BATS_TEST_TMPDIR/pid")" ]
  jq -e '.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' <<<"$s"
  jq -e 'has("owner")' <<<"$s"
  run -0 rt start "$ID"
  [ "$(rt state "$ID" | jq -r .status)" = running ]
  run -0 rt kill "$ID" KILL
  wait_until 10 sh -c "'$RT' --root '$ROOT' state '$ID' | jq -e '.status == \"stopped\"'"
  run -1 --separate-stderr rt state no-such-container
  [ -n "$stderr" ]
}

@test "events --stats: one JSON object of type stats with cpu, memory and pids" {
  run -0 rtd run -d --bundle "$B" "$ID"
  run -0 --separate-stderr rt events --stats "$ID"
  jq -e --arg id "$ID" '.type == "stats" and .id == $id' <<<"$output"
  jq -e '.data | has("cpu") and has("memory") and has("pids")' <<<"$output"
  jq -e '.data.pids.current >= 1 and .data.memory.usage.usage > 0' <<<"$output"
}

@test "ps --format json: the container's pids" {
  run -0 rtd run -d --bundle "$B" --pid-file "$BATS_TEST_TMPDIR/pid" "$ID"
  run -0 --separate-stderr rt ps --format json "$ID"
  jq -e --argjson p "$(cat "$BATS_TEST_TMPDIR/pid")" '. == [$p]' <<<"$output"
}

@test "exec --process FILE --detach --pid-file (containerd's shim), then kill --all" {
  run -0 rtd run -d --bundle "$B" "$ID"
  jq -n '{terminal: false, user: {uid: 0, gid: 0}, args: ["sleep", "999"], env: ["PATH=/bin"], cwd: "/"}' \
    >"$BATS_TEST_TMPDIR/process.json"
  run -0 rtd exec --process "$BATS_TEST_TMPDIR/process.json" --detach --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$ID"
  local epid; epid=$(cat "$BATS_TEST_TMPDIR/exec.pid")
  kill -0 "$epid"
  [ "$(tr '\0' ' ' <"/proc/$epid/cmdline")" = "sleep 999 " ]
  run -0 --separate-stderr rt ps --format json "$ID"
  jq -e --argjson p "$epid" 'length == 2 and index($p) != null' <<<"$output"
  run -0 rt kill --all "$ID" KILL
  wait_until 10 sh -c "! kill -0 $epid"
  wait_until 10 sh -c "'$RT' --root '$ROOT' state '$ID' | jq -e '.status == \"stopped\"'"
}

@test "exec: the process' exit status, --env, --cwd; a missing command fails" {
  run -0 rtd run -d --bundle "$B" "$ID"
  run -5 rt exec "$ID" sh -c 'exit 5'
  run -0 --separate-stderr rt exec --env FOO=bar --cwd /tmp "$ID" sh -c 'echo $FOO $PWD'
  [ "$output" = "bar /tmp" ]
  run rt exec "$ID" /nonexistent
  [ "$status" -ne 0 ]
}

@test "run: the container's exit status" {
  args sh -c 'exit 42'
  run -42 rt run --bundle "$B" "$ID"
}

@test "delete --force: a running container, a created one; delete of a missing one fails" {
  run -0 rtd run -d --bundle "$B" --pid-file "$BATS_TEST_TMPDIR/pid" "$ID"
  local pid; pid=$(cat "$BATS_TEST_TMPDIR/pid")
  run -1 rt delete "$ID"
  run -0 rt delete --force "$ID"
  wait_until 10 sh -c "! kill -0 $pid"
  run -0 rt list -q
  [ -z "$output" ]
  run -0 rtd create --bundle "$B" --pid-file "$BATS_TEST_TMPDIR/pid" "$ID"
  pid=$(cat "$BATS_TEST_TMPDIR/pid")
  run -0 rt delete --force "$ID"
  wait_until 10 sh -c "! kill -0 $pid"
  run -0 rt list -q
  [ -z "$output" ]
  run -1 rt delete "$ID"
  run -0 rt delete --force "$ID"
}

@test "global --systemd-cgroup, --log-format text and --debug are accepted" {
  run -0 rt --systemd-cgroup list -q
  run -0 rt --log-format text --debug list -q
}

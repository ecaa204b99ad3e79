# shellcheck shell=bash
# Helpers of the client suites; run.sh exports CLIENTS_W (work dir), CLIENTS_RUNTIME (the
# runtime binary under test), CLIENTS_REPO, IMAGE, PAUSE_IMAGE and podman's config.
bats_require_minimum_version 1.5.0

RT=$CLIENTS_RUNTIME

# pm ARGS...: podman with the runtime under test, given as a path.
pm() { podman --runtime "$RT" "$@"; }

# snippet DOC NAME: the fenced block that follows `<!-- snippet: NAME -->` in docs/DOC,
# with the documented path of the runtime replaced by the one under test.
snippet() {
  awk -v mark="<!-- snippet: $2 -->" '
    $0 == mark { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    found && inside { print }' "$CLIENTS_REPO/docs/$1" |
    sed "s#/usr/local/bin/liana-runtime#$RT#g"
}

# In-container shell reading a cgroup file: the v1 path, else the v2 one.
cgfile() { echo "cat /sys/fs/cgroup/$1 2>/dev/null || cat /sys/fs/cgroup/$2"; }

# with_tty CMD: runs the shell command CMD on a new pseudo-terminal (util-linux
# `script`), feeding it this function's stdin; returns CMD's exit status.
with_tty() { timeout 60 script -qec "$1" /dev/null; }

# wait_until SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_until() {
  local n=$(($1 * 10)); shift
  while ! "$@" >/dev/null 2>&1; do
    n=$((n - 1)); [ "$n" -gt 0 ] || return 1
    sleep 0.1
  done
}

# capeff PID-STATUS-TEXT: the CapEff mask of a /proc/PID/status text, as a number.
capeff() { echo $((16#$(awk '/^CapEff:/ {print $2}' <<<"$1"))); }

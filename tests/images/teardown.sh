#!/usr/bin/env bash
# teardown.sh DIR [--rm]: stops the registries and token server setup.sh started under
# DIR (by their recorded PIDs), and the watcher; --rm also deletes DIR.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
DIR=${1:?usage: teardown.sh DIR [--rm]}
[ -d "$DIR" ] || exit 0
for m in plain basic token tls; do
  stop "$DIR/$m/registry.pid" &
  stop "$DIR/$m/token.pid" &
done
wait
if [ -s "$DIR/watcher.pid" ] && [ "$(cat "$DIR/watcher.pid")" != "$$" ]; then stop "$DIR/watcher.pid"; fi
rm -f "$DIR/env"
[ "${2:-}" = --rm ] && rm -rf "$DIR"
exit 0

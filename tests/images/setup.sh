#!/usr/bin/env bash
# setup.sh DIR [--owner PID]
#
# Everything the image tests need, under DIR: installs the Debian packages if missing,
# builds the test images (make-images.py), starts four registries on 127.0.0.1
# (plain, basic auth, token auth, TLS; ports from $LIANA_TEST_PORT, default 15000..15003,
# token server 15102) and pushes the images with skopeo. Writes DIR/env (KEY=VALUE).
# With --owner PID a watcher stops everything when PID exits (the test process), so a
# test run leaves neither servers nor DIR behind. Idempotent. Stop explicitly with
# teardown.sh DIR [--rm].
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
DIR=${1:?usage: setup.sh DIR [--owner PID]}
OWNER=""
[ "${2:-}" = --owner ] && OWNER=${3:?}
BASE=${LIANA_TEST_PORT:-15000}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
exec 9>"$DIR/setup.lock"
flock 9

need docker-registry docker-registry
need skopeo skopeo
need curl curl
need openssl openssl
need htpasswd apache2-utils
need python3 python3
need /bin/busybox busybox-static

if [ -f "$DIR/env" ] && alive "$DIR/plain/registry.pid" && alive "$DIR/tls/registry.pid"; then
  cat "$DIR/env"; exit 0
fi

[ -f "$DIR/images/bad-bigconfig/index.json" ] || python3 "$HERE/make-images.py" "$DIR/images" >/dev/null

"$HERE/registry.sh" "$DIR/plain" "$BASE" plain
"$HERE/registry.sh" "$DIR/basic" $((BASE + 1)) basic
"$HERE/registry.sh" "$DIR/token" $((BASE + 2)) token
"$HERE/registry.sh" "$DIR/tls" $((BASE + 3)) tls

if [ -n "$OWNER" ]; then
  # stops the servers and removes DIR when the owning process is gone
  setsid bash -c '
    while kill -0 '"$OWNER"' 2>/dev/null; do sleep 1; done
    exec "'"$HERE"'/teardown.sh" "'"$DIR"'" --rm' </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watcher.pid"
fi

POL=$DIR/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POL"
cp_() { skopeo --policy "$POL" copy -q "$@"; }
PLAIN=127.0.0.1:$BASE
for img in busybox layered big multiarch bad-dotdot bad-abslink bad-hardlink bad-mediatype victim-corrupt victim-truncate; do
  all=(); [ "$img" = multiarch ] && all=(--all)
  cp_ "${all[@]}" --dest-tls-verify=false "oci:$DIR/images/$img:latest" "docker://$PLAIN/$img:latest"
done
# skopeo refuses a config over 4 MiB: upload that one verbatim
python3 "$HERE/push-raw.py" "$DIR/images/bad-bigconfig" "$PLAIN" bad-bigconfig:latest
cp_ --dest-tls-verify=false --format v2s2 "oci:$DIR/images/busybox:latest" "docker://$PLAIN/busybox:v2s2"
CREDS=(--dest-creds liana:liana-secret)
for img in busybox multiarch; do
  all=(); [ "$img" = multiarch ] && all=(--all)
  cp_ "${all[@]}" --dest-tls-verify=false "${CREDS[@]}" "oci:$DIR/images/$img:latest" "docker://127.0.0.1:$((BASE + 1))/$img:latest"
  cp_ "${all[@]}" --dest-tls-verify=false "${CREDS[@]}" "oci:$DIR/images/$img:latest" "docker://127.0.0.1:$((BASE + 2))/$img:latest"
  cp_ "${all[@]}" --dest-cert-dir "$DIR/tls/certs.d" "oci:$DIR/images/$img:latest" "docker://127.0.0.1:$((BASE + 3))/$img:latest"
done

cat >"$DIR/env" <<ENV
IMAGES=$DIR/images
PLAIN=127.0.0.1:$BASE
PLAIN_DIR=$DIR/plain
BASIC=127.0.0.1:$((BASE + 1))
BASIC_DIR=$DIR/basic
TOKEN=127.0.0.1:$((BASE + 2))
TOKEN_DIR=$DIR/token
TLS=127.0.0.1:$((BASE + 3))
TLS_DIR=$DIR/tls
TLS_CERTS=$DIR/tls/certs.d
USER=liana
PASSWORD=liana-secret
POLICY=$POL
ENV
cat "$DIR/env"

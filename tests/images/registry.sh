#!/usr/bin/env bash
# registry.sh DIR PORT MODE   (MODE: plain | basic | token | tls)
#
# Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1:PORT with its
# storage, config, certificates and log under DIR:
#   plain  HTTP, no auth
#   basic  HTTP, htpasswd auth (user liana / password liana-secret)
#   token  HTTP, Bearer tokens from token-server.py on 127.0.0.1:PORT+100
#          (anonymous: pull; liana/liana-secret: pull+push)
#   tls    HTTPS with a certificate from a fresh CA (DIR/ca/ca.crt), no auth
# Writes DIR/registry.pid (and DIR/token.pid). Stop with teardown.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
DIR=$1 PORT=$2 MODE=$3
USER_=liana PASS_=liana-secret
mkdir -p "$DIR/storage" "$DIR/ca"
DIR=$(cd "$DIR" && pwd)
if alive "$DIR/registry.pid"; then exit 0; fi
if ! wait_port_free "$PORT" 20; then echo "127.0.0.1:$PORT is in use" >&2; exit 1; fi

{
  printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n'
  printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n  delete:\n    enabled: true\n' "$DIR"
  printf '  maintenance:\n    uploadpurging:\n      enabled: false\n'
  printf 'http:\n  addr: 127.0.0.1:%s\n  secret: liana-test-%s\n' "$PORT" "$PORT"
} >"$DIR/config.yml"

case "$MODE" in
  plain) ;;
  basic)
    htpasswd -Bbc "$DIR/htpasswd" "$USER_" "$PASS_" 2>/dev/null
    printf 'auth:\n  htpasswd:\n    realm: liana-test\n    path: %s/htpasswd\n' "$DIR" >>"$DIR/config.yml"
    ;;
  token)
    TPORT=$((PORT + 100))
    wait_port_free "$TPORT" 20 || { echo "127.0.0.1:$TPORT is in use" >&2; exit 1; }
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=liana-token-issuer" \
      -keyout "$DIR/ca/token.key" -out "$DIR/ca/token.crt" 2>/dev/null
    printf 'auth:\n  token:\n    realm: http://127.0.0.1:%s/token\n    service: liana-test\n    issuer: liana-test-issuer\n    rootcertbundle: %s/ca/token.crt\n' \
      "$TPORT" "$DIR" >>"$DIR/config.yml"
    setsid python3 "$HERE/token-server.py" --port "$TPORT" --key "$DIR/ca/token.key" \
      --cert "$DIR/ca/token.crt" --user "$USER_" --password "$PASS_" </dev/null >>"$DIR/token.log" 2>&1 &
    echo $! >"$DIR/token.pid"
    wait_url "http://127.0.0.1:$TPORT/token" 20
    ;;
  tls)
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=liana-test-ca" \
      -keyout "$DIR/ca/ca.key" -out "$DIR/ca/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$DIR/ca/server.key" -out "$DIR/ca/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$DIR/ca/ext.cnf"
    openssl x509 -req -in "$DIR/ca/server.csr" -CA "$DIR/ca/ca.crt" -CAkey "$DIR/ca/ca.key" \
      -CAcreateserial -days 30 -extfile "$DIR/ca/ext.cnf" -out "$DIR/ca/server.crt" 2>/dev/null
    printf '  tls:\n    certificate: %s/ca/server.crt\n    key: %s/ca/server.key\n' "$DIR" "$DIR" >>"$DIR/config.yml"
    mkdir -p "$DIR/certs.d" && cp "$DIR/ca/ca.crt" "$DIR/certs.d/ca.crt"
    ;;
  *) echo "unknown mode $MODE" >&2; exit 2;;
esac

setsid docker-registry serve "$DIR/config.yml" </dev/null >>"$DIR/registry.log" 2>&1 &
echo $! >"$DIR/registry.pid"
SCHEME=http CURL=()
if [ "$MODE" = tls ]; then SCHEME=https CURL=(--cacert "$DIR/ca/ca.crt"); fi
wait_url "$SCHEME://127.0.0.1:$PORT/v2/" 20 "${CURL[@]}" || { tail -20 "$DIR/registry.log" >&2; exit 1; }

# shellcheck shell=bash
# Helpers sourced by the image test set-up scripts. Loopback only; processes are
# stopped by the PIDs these scripts recorded, never by name.

# need CMD PKG...: install Debian packages when CMD is missing. Services that the
# packages would start on install (docker-registry listens on :5000, containerd on its
# default socket) are kept from starting with a temporary policy-rc.d.
need() {
  local cmd=$1; shift
  case "$cmd" in
    /*) [ -e "$cmd" ] && return 0;;
    *) command -v "$cmd" >/dev/null 2>&1 && return 0;;
  esac
  if [ "$(id -u)" != 0 ]; then
    echo "missing $cmd (Debian package $*); run as root to install it" >&2; return 1
  fi
  echo "[images-setup] apt-get install $*" >&2
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1 || true; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  local rc=$?
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop PIDFILE: TERM, wait up to 2 s, KILL
stop() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_url URL SECONDS [CURL_ARGS...]: until URL answers with any HTTP status
wait_url() {
  local url=$1 t=$2; shift 2
  for _ in $(seq $((t * 10))); do
    curl -s -o /dev/null --max-time 2 "$@" "$url" && return 0
    sleep 0.1
  done
  echo "no answer from $url after ${t}s" >&2; return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port_free PORT SECONDS: a previous run's servers may still be shutting down
wait_port_free() {
  for _ in $(seq $(($2 * 10))); do port_busy "$1" || return 0; sleep 0.1; done
  return 1
}

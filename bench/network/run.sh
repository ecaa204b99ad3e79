#!/bin/bash
# bench/network/run.sh: liana networking figures, all traffic on this machine.
#   1. TCP throughput container -> host with iperf3 (Debian), 5 s each:
#      bridge       container on a bench network (10.89.250.0/24, bridge lnt-bench)
#                   -> iperf3 server on the host at the gateway 10.89.250.1
#      slirp4netns  -> 10.0.2.2 (allow_host_loopback) = iperf3 server on 127.0.0.1
#      pasta        -> 127.0.0.1 in the container, forwarded to the host's (-T PORT)
#   2. Container start time (`run --rm ... true`, RUNS interleaved rounds so that
#      load from other work hits every mode alike; mean and median) with
#      --network none, bridge, slirp4netns and pasta, and podman 4.3 (netavark, runc,
#      private storage/config/network dir) with none and a bridge network, for ratios.
# The container's root file system is a directory with iperf3, its libraries and a
# static busybox. Run as root (builds the ci profile). Results: stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-20}
PORT=${PORT:-15201}
for p in iperf3:iperf3 busybox:busybox-static slirp4netns:slirp4netns pasta:passt nft:nftables; do
  command -v "${p%%:*}" >/dev/null || apt-get install -y -qq "${p#*:}" >/dev/null
done
cargo build --profile ci -q -p liana -p liana-monitor
W=$(mktemp -d /tmp/liana-netbench.XXXXXX)
L() { LIANA_MONITOR=$PWD/target/ci/liana-monitor "$PWD/target/ci/liana" --root "$W/root" --runroot "$W/run" "$@"; }
SERVERS=()
cleanup() {
  for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null || true; done
  for id in $(L ps -a -q 2>/dev/null); do L rm -f "$id" >/dev/null 2>&1 || true; done
  L network rm -f bench >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
# Root file system: busybox + iperf3 and the libraries it needs.
R=$W/rootfs; mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$R/bin/"; for a in sh true sleep cat; do ln -s busybox "$R/bin/$a"; done
cp "$(command -v iperf3)" "$R/bin/"
for lib in $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
L network create --subnet 10.89.250.0/24 --interface-name lnt-bench bench >/dev/null
iperf_server() { # ADDR: iperf3 server on the host
  iperf3 -s -1 -B "$1" -p "$PORT" >/dev/null 2>&1 & SERVERS+=($!); sleep 0.3
}
gbits() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))'; }
echo "== TCP throughput container -> host (iperf3 -t 5, Gbit/s)"
# The bridge's address exists once a container has been started on the network.
L run --rm --rootfs --network bench "$R" true
iperf_server 10.89.250.1
echo "bridge:      $(L run --rm --rootfs --network bench "$R" iperf3 -J -t 5 -c 10.89.250.1 -p "$PORT" | gbits)"
iperf_server 127.0.0.1
echo "slirp4netns: $(L run --rm --rootfs --network slirp4netns:allow_host_loopback=true "$R" iperf3 -J -t 5 -c 10.0.2.2 -p "$PORT" | gbits)"
iperf_server 127.0.0.1
echo "pasta:       $(L run --rm --rootfs --network "pasta:-T,$PORT" "$R" iperf3 -J -t 5 -c 127.0.0.1 -p "$PORT" | gbits)"
# podman 4.3 (netavark) for reference: private storage, config and network directory,
# runc, its own bridge network on 10.89.251.0/24; the same root file system as an image.
P=$W/podman; mkdir -p "$P"/{root,runroot,tmp,networks}
cat >"$P/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$P/root"
runroot = "$P/runroot"
CONF
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat >"$P/containers.conf" <<CONF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
[network]
network_config_dir = "$P/networks"
CONF
PD() { CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf podman --runtime /usr/sbin/runc "$@"; }
HAVE_PODMAN=
# podman 4.3 cannot name the bridge on its command line: the network's file, directly.
cat >"$P/networks/lntpbench.json" <<JSON
{"name": "lntpbench", "id": "$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)", "driver": "bridge",
 "network_interface": "lnt-pbench", "created": "2026-01-01T00:00:00Z",
 "subnets": [{"subnet": "10.89.251.0/24", "gateway": "10.89.251.1"}], "ipv6_enabled": false,
 "internal": false, "dns_enabled": false, "ipam_options": {"driver": "host-local"}}
JSON
if command -v podman >/dev/null && tar -C "$R" -c . | PD import -q - lnt-bench-rootfs >/dev/null 2>&1 &&
   PD run --rm --network lntpbench lnt-bench-rootfs true; then
  HAVE_PODMAN=1
fi
pcleanup() {
  PD rm -a -f >/dev/null 2>&1 || true
  PD network rm -f lntpbench >/dev/null 2>&1 || true
  PD rmi -a -f >/dev/null 2>&1 || true
  cleanup
}
trap pcleanup EXIT
echo "== start time: run --rm ... true, $RUNS interleaved rounds (ms: mean, median)"
MODES=(none bench slirp4netns pasta)
[ -n "$HAVE_PODMAN" ] && MODES+=(podman-none podman-bridge)
one() { # MODE
  case $1 in
    podman-none) PD run --rm --network none lnt-bench-rootfs true ;;
    podman-bridge) PD run --rm --network lntpbench lnt-bench-rootfs true ;;
    *) L run --rm --rootfs --network "$1" "$R" true ;;
  esac
}
for m in "${MODES[@]}"; do one "$m"; done # warm-up
for _ in $(seq "$RUNS"); do
  for m in "${MODES[@]}"; do
    s=$(date +%s%N); one "$m"; e=$(date +%s%N)
    echo "$m $(( (e - s) / 1000 ))" >>"$W/times"
  done
done
for m in "${MODES[@]}"; do
  printf '%-14s ' "$([ "$m" = bench ] && echo bridge || echo "$m")"
  awk -v n="$m" '$1 == n {print $2}' "$W/times" | sort -n |
    awk '{a[NR]=$1; s+=$1} END {printf "%.1f %.1f\n", s/NR/1000, a[int((NR+1)/2)]/1000}'
done
if [ -n "$HAVE_PODMAN" ]; then
  med() { awk -v n="$1" '$1 == n {print $2}' "$W/times" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  python3 -c 'import sys; a=[int(x) for x in sys.argv[1:]]; print("ratios of medians: liana/podman none %.2fx, bridge %.2fx; bridge cost: liana +%.0f ms, podman +%.0f ms" % (a[0]/a[2], a[1]/a[3], (a[1]-a[0])/1000, (a[3]-a[2])/1000))' \
    "$(med none)" "$(med bench)" "$(med podman-none)" "$(med podman-bridge)"
fi

#!/bin/bash
# busybox-rootfs.sh OUT.tar — a minimal root filesystem from Debian's busybox-static:
# /bin/busybox with its applets as symlinks, /etc/passwd and /etc/group.
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-rootfs.sh: install Debian's busybox-static" >&2; exit 1; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mkdir -p "$d"/{bin,etc,proc,sys,dev,tmp,root}
chmod 1777 "$d/tmp"
cp "$bb" "$d/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$d/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$d/etc/group"
tar -C "$d" -cf "$out" .
echo "$out"

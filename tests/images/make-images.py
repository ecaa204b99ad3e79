#!/usr/bin/env python3
"""Builds the OCI image layouts the image tests and the pull benchmark use.

    make-images.py OUT [--big-mb N]

Deterministic (fixed mtimes, owners, order; gzip without timestamps), offline, from
Debian's busybox-static. Each OUT/<name> is an OCI layout with one ref, "latest":

  busybox     1 layer: /bin/busybox, applet symlinks, /etc/passwd, /etc/group
  layered     busybox + a layer adding /data files (symlink, hardlink, uid 1000 file,
              an opaque-to-be dir) + a layer with a whiteout (.wh.todelete.txt) and an
              opaque dir (.wh..wh..opq)
  big         layered + a layer with N MiB (default 64) of incompressible data
  multiarch   index: linux/amd64 (busybox) and linux/arm64/v8 (fake: arm64 config)
  bad-dotdot, bad-abslink, bad-hardlink   one layer trying to escape the root
  bad-mediatype                           busybox with an unknown layer media type
  bad-bigconfig                           busybox with a 5 MiB config (over the bound)
  victim-corrupt, victim-truncate         one unique 256 KiB layer each (tests damage it)
"""
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile

EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layer:
    """A tar built entry by entry, in order."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, EPOCH
        ti.uname = ti.gname = ""
        return ti

    def dir(self, name, mode=0o755):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644, uid=0, gid=0):
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target):
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tar.addfile(ti)

    def finish(self):
        self.tar.close()
        return self.buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, out, name):
        self.dir = os.path.join(out, name)
        subprocess.run(["rm", "-rf", self.dir], check=True)
        os.makedirs(os.path.join(self.dir, "blobs", "sha256"))
        with open(os.path.join(self.dir, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data, media_type):
        d = sha(data)
        with open(os.path.join(self.dir, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def image(self, layers, arch="amd64", variant=None, layer_type=OCI_GZIP, comments=None, pad=0):
        """layers: list of uncompressed tars. Returns the manifest descriptor."""
        descs, diff_ids, history = [], [], []
        for i, tar in enumerate(layers):
            diff_ids.append(sha(tar))
            descs.append(self.blob(gzip.compress(tar, compresslevel=6, mtime=0), layer_type))
            history.append({"created": CREATED, "created_by": (comments or [])[i] if comments else "layer %d" % i})
        config = {"created": CREATED, "architecture": arch, "os": "linux",
                  "config": {"Env": PATH_ENV, "Cmd": ["sh"], "WorkingDir": "/",
                             "Labels": {"org.example.test-image": "1"}},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
        if variant:
            config["variant"] = variant
        if pad:
            config["config"]["Labels"]["padding"] = "x" * pad
        cdesc = self.blob(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": descs}
        return self.blob(json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)

    def index(self, top):
        top = dict(top, annotations={"org.opencontainers.image.ref.name": "latest"})
        with open(os.path.join(self.dir, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}, f)


def busybox_layer():
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    applets = subprocess.run(["/bin/busybox", "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    l = Layer()
    for d in ["bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp", "usr", "usr/bin",
              "usr/sbin", "var"]:
        l.dir(d, 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755)
    l.file("bin/busybox", bb, 0o755)
    for a in sorted(set(applets)):
        if a not in ("bin/busybox", "linuxrc"):
            l.symlink(a, "/bin/busybox")
    l.file("etc/group", b"root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n")
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    return l.finish()


def data_layer():
    l = Layer()
    l.dir("data")
    l.file("data/hello.txt", b"hello from layer 2\n")
    l.hardlink("data/hardlink", "data/hello.txt")
    l.symlink("data/symlink", "hello.txt")
    l.file("data/todelete.txt", b"deleted by layer 3\n")
    l.file("data/private.txt", b"secret\n", 0o600)
    l.file("data/run.sh", b"#!/bin/sh\necho script-ok \"$@\"\n", 0o755)
    l.dir("data/dir")
    l.dir("data/dir/sub")
    l.file("data/dir/sub/owned-1000.txt", b"owned\n", 0o644, 1000, 1000)
    l.dir("data/opaque")
    l.file("data/opaque/old1.txt", b"old1\n")
    l.file("data/opaque/old2.txt", b"old2\n")
    return l.finish()


def delete_layer():
    l = Layer()
    l.dir("data")
    l.file("data/.wh.todelete.txt", b"")
    l.dir("data/opaque")
    l.file("data/opaque/.wh..wh..opq", b"")
    l.file("data/opaque/new.txt", b"new\n")
    return l.finish()


def big_layer(mb):
    l = Layer()
    l.dir("data")
    l.file("data/big.bin", random.Random(20240101).randbytes(mb << 20))
    return l.finish()


def main():
    out = sys.argv[1]
    mb = int(sys.argv[sys.argv.index("--big-mb") + 1]) if "--big-mb" in sys.argv else 64
    os.makedirs(out, exist_ok=True)
    l1, l2, l3 = busybox_layer(), data_layer(), delete_layer()
    comments = ["busybox-static rootfs", "add /data files", "whiteout + opaque dir", "add big.bin"]
    for name, layers in [("busybox", [l1]), ("layered", [l1, l2, l3])]:
        lay = Layout(out, name)
        lay.index(lay.image(layers, comments=comments))
    if mb > 0:
        lay = Layout(out, "big")
        lay.index(lay.image([l1, l2, l3, big_layer(mb)], comments=comments))
    lay = Layout(out, "multiarch")
    amd = dict(lay.image([l1]), platform={"architecture": "amd64", "os": "linux"})
    arm = dict(lay.image([l1], arch="arm64", variant="v8"),
               platform={"architecture": "arm64", "os": "linux", "variant": "v8"})
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm]}
    lay.index(lay.blob(json.dumps(idx, sort_keys=True).encode(), OCI_INDEX))
    # hostile layers
    escape = os.environ.get("ESCAPE_TARGET", "/tmp/liana-escape-target")
    bad = {}
    l = Layer()
    l.file("../../../../tmp/liana-escape-dotdot", b"escaped\n")
    bad["bad-dotdot"] = l.finish()
    l = Layer()
    l.symlink("evil", escape)
    l.file("evil/pwned", b"escaped\n")
    bad["bad-abslink"] = l.finish()
    l = Layer()
    l.hardlink("shadow", "../../../../etc/passwd")
    bad["bad-hardlink"] = l.finish()
    for name, tar in bad.items():
        lay = Layout(out, name)
        lay.index(lay.image([tar]))
    # valid images with layers of their own, for tests that damage the registry's copy
    for victim in ["victim-corrupt", "victim-truncate"]:
        l = Layer()
        l.file("victim.bin", random.Random(victim).randbytes(256 << 10))
        lay = Layout(out, victim)
        lay.index(lay.image([l.finish()]))
    lay = Layout(out, "bad-bigconfig")
    lay.index(lay.image([l1], pad=5 << 20))
    lay = Layout(out, "bad-mediatype")
    lay.index(lay.image([l1], layer_type="application/vnd.example.unknown.layer"))
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name, "index.json")) as f:
            print(name, json.load(f)["manifests"][0]["digest"])


if __name__ == "__main__":
    main()

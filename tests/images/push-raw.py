#!/usr/bin/env python3
"""push-raw.py LAYOUT REGISTRY REPO:TAG  -- uploads an OCI layout's blobs and manifest
verbatim over plain HTTP (distribution-spec monolithic uploads), for test images that
real clients refuse to copy (e.g. a config over their size bound)."""
import hashlib
import json
import os
import sys
import urllib.request


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(r)


def main():
    layout, registry, target = sys.argv[1:4]
    repo, tag = target.rsplit(":", 1)
    base = "http://%s/v2/%s" % (registry, repo)
    with open(os.path.join(layout, "index.json")) as f:
        top = json.load(f)["manifests"][0]

    def blob(digest):
        with open(os.path.join(layout, "blobs", "sha256", digest[7:]), "rb") as f:
            return f.read()

    manifest = blob(top["digest"])
    m = json.loads(manifest)
    for d in [m["config"]] + m["layers"]:
        data = blob(d["digest"])
        assert "sha256:" + hashlib.sha256(data).hexdigest() == d["digest"]
        loc = req("POST", base + "/blobs/uploads/", b"").headers["Location"]
        if loc.startswith("/"):
            loc = "http://" + registry + loc
        loc += ("&" if "?" in loc else "?") + "digest=" + d["digest"]
        req("PUT", loc, data, {"Content-Type": "application/octet-stream"})
    req("PUT", base + "/manifests/" + tag, manifest, {"Content-Type": m["mediaType"]})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs crun's own conformance tests (tests/test_*.py of Debian's crun source package)
against an OCI runtime and prints a per-file table.

    tests/conformance/crun_suite.py RUNTIME [--files test_a.py,test_b.py]
                                    [--expect tests/conformance/expected.txt]
                                    [--cache DIR] [--timeout SECONDS]

crun's tests invoke `RUNTIME --cgroup-manager cgroupfs --root DIR run --config FILE ...`;
liana-runtime accepts those flags. With --expect, every test listed there (one
`file:test` per line, `#` comments) must pass, or the script exits 1: that is what CI
checks. Needs root, gcc with a static libc, python3, and apt (to fetch the source).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# crun's test_mounts.py imports util-linux's python `libmount`, which Debian 12 does
# not package. This stand-in covers what the tests use: Table(path).find_target(t)
# returning an object with vfs_options and fs_options, read from a mountinfo file.
LIBMOUNT_SHIM = '''
class _Entry:
    def __init__(self, target, vfs_options, fs_options):
        self.target, self.vfs_options, self.fs_options = target, vfs_options, fs_options

def _decode(s):
    out, i = "", 0
    while i < len(s):
        if s[i] == "\\\\" and s[i + 1:i + 4].isdigit():
            out += chr(int(s[i + 1:i + 4], 8)); i += 4
        else:
            out += s[i]; i += 1
    return out

class Table:
    def __init__(self, path=None):
        self.entries = []
        if path:
            for line in open(path):
                f = line.split()
                if "-" not in f:
                    continue
                dash = f.index("-")
                self.entries.append(_Entry(_decode(f[4]), f[5],
                                           f[dash + 3] if len(f) > dash + 3 else ""))

    def find_target(self, target, direction=None):
        for e in reversed(self.entries):
            if e.target == target:
                return e
        return None
'''


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def fetch_source(cache):
    """Unpacks Debian's crun source into cache/src and returns its directory."""
    src = os.path.join(cache, "src")
    for d in sorted(os.listdir(src)) if os.path.isdir(src) else []:
        if d.startswith("crun-") and os.path.isdir(os.path.join(src, d, "tests")):
            return os.path.join(src, d)
    os.makedirs(src, exist_ok=True)
    codename = "bookworm"
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME="):
            codename = line.split("=", 1)[1].strip() or codename
    apt = os.path.join(cache, "apt")
    os.makedirs(os.path.join(apt, "lists", "partial"), exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    signed = f"[signed-by={keyring}] " if os.path.exists(keyring) else ""
    with open(os.path.join(apt, "sources.list"), "w") as f:
        for suite, base in ((codename, "debian"), (codename + "-updates", "debian"),
                            (codename + "-security", "debian-security")):
            f.write(f"deb-src {signed}http://deb.debian.org/{base} {suite} main\n")
    opts = ["-o", f"Dir::Etc::SourceList={apt}/sources.list",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={apt}/lists"]
    log("fetching crun's source package (deb-src, private apt lists)")
    subprocess.run(["apt-get", *opts, "update", "-qq"], check=True)
    subprocess.run(["apt-get", *opts, "source", "-qq", "crun"], cwd=src, check=True,
                   stdout=subprocess.DEVNULL)
    return fetch_source(cache)


def build_init(srcdir):
    tests = os.path.join(srcdir, "tests")
    init = os.path.join(tests, "init")
    if not os.path.exists(init) or os.path.getmtime(init) < os.path.getmtime(init + ".c"):
        cfg = os.path.join(tests, "config.h")
        if not os.path.exists(cfg):
            open(cfg, "w").close()
        subprocess.run(["gcc", "-static", "-O1", "-I", tests, "-o", init, init + ".c"],
                       check=True)
    return init


def run_file(srcdir, name, runtime, init, timeout, shim):
    """Runs one test file; returns {test: 'PASS'|'FAIL'|'SKIP'} and a status note."""
    env = dict(os.environ, OCI_RUNTIME=runtime, INIT=init,
               PYTHONPATH=shim + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["python3", os.path.join("tests", name)]
    if name == "test_tty.py" and shutil.which("script"):
        cmd = ["script", "-qefc", " ".join(cmd), "/dev/null"]
    out = tempfile.TemporaryFile()
    err = open(os.path.join(srcdir, name + ".log"), "wb")
    start = time.time()
    p = subprocess.Popen(cmd, cwd=srcdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=err, start_new_session=True)
    note = "ok"
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        note = f"TIMEOUT after {timeout}s"
    note += f" ({time.time() - start:.0f}s)"
    out.seek(0)
    results, plan = {}, None
    for line in out.read().decode(errors="replace").replace("\r", "").splitlines():
        m = re.match(r"^1\.\.(\d+)", line)
        if m:
            plan = int(m.group(1))
        m = re.match(r"^(not ok|ok) \d+ - (.*?)(\s*#\s*SKIP.*)?$", line)
        if m:
            results[m.group(2).strip()] = ("SKIP" if m.group(3) else
                                           "PASS" if m.group(1) == "ok" else "FAIL")
    if plan is None or len(results) < plan:
        missing = (plan or 1) - len(results)
        results[f"({missing} not reported: {note})"] = "FAIL"
    return results, note


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runtime")
    ap.add_argument("--files", default="")
    ap.add_argument("--expect")
    ap.add_argument("--cache", default="/var/tmp/liana-crun-suite")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--results", help="write file:test<TAB>result lines here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("crun_suite.py: needs root")
    runtime = os.path.abspath(a.runtime)
    srcdir = fetch_source(a.cache)
    init = build_init(srcdir)
    shim = os.path.join(a.cache, "pyshim")
    os.makedirs(shim, exist_ok=True)
    with open(os.path.join(shim, "libmount.py"), "w") as f:
        f.write(LIBMOUNT_SHIM)
    files = a.files.split(",") if a.files else sorted(
        f for f in os.listdir(os.path.join(srcdir, "tests")) if re.match(r"test_.*\.py$", f))
    all_results = {}
    print(f"{'FILE':<28} {'PASS':>5} {'FAIL':>5} {'SKIP':>5}  STATUS")
    totals = [0, 0, 0]
    for name in files:
        res, note = run_file(srcdir, name, runtime, init, a.timeout, shim)
        counts = [sum(1 for v in res.values() if v == k) for k in ("PASS", "FAIL", "SKIP")]
        totals = [t + c for t, c in zip(totals, counts)]
        print(f"{name:<28} {counts[0]:>5} {counts[1]:>5} {counts[2]:>5}  {note}", flush=True)
        for t, v in res.items():
            all_results[f"{name[:-3]}:{t}"] = v
    failed = [k for k, v in all_results.items() if v == "FAIL"]
    for k in failed:
        print(f"# failed: {k}")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    if a.results:
        with open(a.results, "w") as f:
            for k, v in sorted(all_results.items()):
                f.write(f"{k}\t{v}\n")
    if a.expect:
        expected = [l.split("#")[0].strip() for l in open(a.expect)]
        expected = [e for e in expected if e]
        regressions = [e for e in expected if all_results.get(e) != "PASS"
                       and (not a.files or e.split(":")[0] + ".py" in files)]
        for e in regressions:
            print(f"# REGRESSION: {e} ({all_results.get(e, 'not run')})")
        if regressions:
            sys.exit(1)


if __name__ == "__main__":
    main()

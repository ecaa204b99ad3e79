//! `ADD` of local archives: tar plain, gzip, xz and bzip2 unpacked through the image
//! unpacker: the destination resolved inside the image (through its absolute symlinks),
//! `.wh.` names kept as files, and an entry that climbs out (`..`, or through a symlink
//! of the archive's own) refused with an error naming the archive and the entry.

use std::path::Path;

use crate::common::Instance;
use crate::{assert_clean, build, context, fx};

/// Writes `dir/name` as a tar archive (compression from the name) with python's
/// tarfile: `links` (path, target) symlinks first, then `files` (path, content).
fn archive(dir: &Path, name: &str, files: &[(&str, &str)], links: &[(&str, &str)]) {
    let mode = match name.rsplit('.').next() {
        Some("gz") => "w:gz",
        Some("xz") => "w:xz",
        Some("bz2") => "w:bz2",
        _ => "w",
    };
    let script = format!(
        "import io, sys, tarfile\n\
         t = tarfile.open(sys.argv[1], {mode:?})\n\
         for p, target in {links:?}:\n\
         \x20   i = tarfile.TarInfo(p); i.type = tarfile.SYMTYPE; i.linkname = target\n\
         \x20   t.addfile(i)\n\
         for p, c in {files:?}:\n\
         \x20   b = c.encode(); i = tarfile.TarInfo(p); i.size = len(b); i.mode = 0o644\n\
         \x20   t.addfile(i, io.BytesIO(b))\n\
         t.close()\n"
    );
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(st.success(), "make {name}");
}

#[test]
fn add_unpacks_compressed_archives_beneath_the_destination() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\n\
         RUN mkdir -p /usr/lib/real && ln -s /usr/lib/real /linked\n\
         ADD a.tar.gz /gz/\n\
         ADD b.tar.xz /xz/\n\
         ADD c.tar.bz2 /linked/\n\
         ADD d.tar /plain/\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    archive(&ctx, "a.tar.gz", &[("g/file", "gzip\n")], &[]);
    archive(&ctx, "b.tar.xz", &[("x/file", "xz\n")], &[]);
    archive(&ctx, "c.tar.bz2", &[("bz/file", "bzip2\n")], &[]);
    archive(&ctx, "d.tar", &[(".wh.kept", "plain\n")], &[]);
    build(&l, &ctx, &["-t", "archives"]).ok("ADD archives");
    let run = |cmd: &str| l.ok(&["run", "--rm", "archives", "sh", "-c", cmd]);
    assert_eq!(run("cat /gz/g/file /xz/x/file"), "gzip\nxz\n");
    // through the image's absolute symlink, inside the image
    assert_eq!(run("cat /usr/lib/real/bz/file"), "bzip2\n");
    assert_eq!(run("cat /plain/.wh.kept"), "plain\n");
    assert_clean(&l);
}

#[test]
fn add_refuses_an_entry_that_climbs_out() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let marker = format!("liana-add-escape-{}", std::process::id());
    let through = format!("up/etc/{marker}");
    for (name, entry, links) in [
        ("evil.tar.xz", "../../outside", vec![]),
        ("evil2.tar.gz", through.as_str(), vec![("up", "/")]),
    ] {
        let df = format!("FROM {}\nADD {name} /opt/\n", fx.image());
        let ctx = context(&l, name, &[("Dockerfile", &df)]);
        archive(&ctx, name, &[(entry, "x\n")], &links);
        let o = build(&l, &ctx, &["-t", "evil"]);
        assert_ne!(o.code, 0, "{}", o.stderr);
        assert!(o.stderr.contains("Dockerfile:2"), "{}", o.stderr);
        assert!(o.stderr.contains(name), "{}", o.stderr);
        assert!(o.stderr.contains(entry), "{}", o.stderr);
        assert!(!l.ok(&["images"]).contains("evil"));
        assert_clean(&l);
    }
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "escaped to the host"
    );
}

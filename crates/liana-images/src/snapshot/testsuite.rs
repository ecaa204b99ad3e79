//! One test suite every snapshotter must pass (containerd's `snapshots/testsuite`
//! idea). Mount checks run only as root, with the test mounting what the snapshotter
//! returned.

use std::path::Path;

use super::*;
use crate::unpack::target_dir;

fn write(mounts: &[Mount], rel: &str, data: &str) {
    let dir = target_dir(mounts).unwrap();
    std::fs::write(dir.join(rel), data).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Mounts `mounts` on `target` with mount(8), runs `f`, unmounts.
fn with_mounted(mounts: &[Mount], target: &Path, f: impl FnOnce(&Path)) {
    let m = &mounts[0];
    let mut cmd = std::process::Command::new("mount");
    if m.kind == "bind" {
        cmd.arg("--bind");
    } else {
        cmd.args(["-t", &m.kind]);
    }
    let opts: Vec<_> = m
        .options
        .iter()
        .filter(|o| *o != "rbind")
        .cloned()
        .collect();
    cmd.arg("-o").arg(opts.join(",")).arg(&m.source).arg(target);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "mount {m}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    f(target);
    assert!(std::process::Command::new("umount")
        .arg(target)
        .status()
        .unwrap()
        .success());
}

fn suite(s: &dyn Snapshotter, tmp: &Path) {
    // layer 1
    let m = s.prepare("extract-1", None).unwrap();
    assert_eq!(m.len(), 1);
    write(&m, "a.txt", "one");
    s.commit("layer1", "extract-1").unwrap();
    assert_eq!(s.stat("layer1").unwrap().kind, Kind::Committed);
    assert_eq!(s.stat("extract-1").unwrap_err().kind(), ErrorKind::NotFound);
    // layer 2 on top
    let m = s.prepare("extract-2", Some("layer1")).unwrap();
    write(&m, "b.txt", "two");
    s.commit("layer2", "extract-2").unwrap();
    assert_eq!(s.stat("layer2").unwrap().parent.as_deref(), Some("layer1"));
    // errors with kinds
    assert_eq!(
        s.prepare("layer2", None).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.prepare("x", Some("nope")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    s.prepare("active", Some("layer2")).unwrap();
    assert_eq!(
        s.prepare("y", Some("active")).unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        s.remove("layer1").unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        s.mounts("layer1").unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    // a container's view of both layers
    let mounts = s.mounts("active").unwrap();
    if is_root() && (mounts[0].kind == "bind" || overlay_supported()) {
        let target = tmp.join("mnt");
        std::fs::create_dir_all(&target).unwrap();
        with_mounted(&mounts, &target, |t| {
            assert_eq!(std::fs::read_to_string(t.join("a.txt")).unwrap(), "one");
            assert_eq!(std::fs::read_to_string(t.join("b.txt")).unwrap(), "two");
            std::fs::write(t.join("c.txt"), "three").unwrap();
        });
        // writes went to the active snapshot only
        let v = s.view("view", Some("layer2")).unwrap();
        with_mounted(&v, &target, |t| {
            assert!(!t.join("c.txt").exists());
            assert!(t.join("b.txt").exists());
        });
        s.remove("view").unwrap();
    }
    assert!(s.usage("layer2").unwrap() > 0);
    assert_eq!(s.walk().unwrap().len(), 3);
    s.remove("active").unwrap();
    s.remove("layer2").unwrap();
    s.remove("layer1").unwrap();
    assert!(s.walk().unwrap().is_empty());
    // detached apply
    s.prepare("base", None).unwrap();
    s.commit("base-c", "base").unwrap();
    s.prepare("detached", None).unwrap();
    if s.supports_detached_apply() {
        s.set_parent("detached", "base-c").unwrap();
        assert_eq!(
            s.stat("detached").unwrap().parent.as_deref(),
            Some("base-c")
        );
        assert_eq!(
            s.set_parent("detached", "base-c").unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
    } else {
        assert_eq!(
            s.set_parent("detached", "base-c").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}

#[test]
fn overlay_passes_suite() {
    let t = tempfile::tempdir().unwrap();
    let s = OverlaySnapshotter::open(
        &t.path().join("overlay"),
        overlay::OverlayOptions::default(),
    )
    .unwrap();
    suite(&s, t.path());
    let m = {
        s.prepare("p1", None).unwrap();
        s.commit("c1", "p1").unwrap();
        s.prepare("p2", Some("c1")).unwrap()
    };
    assert_eq!(m[0].kind, "overlay");
    assert!(m[0].options.iter().any(|o| o.starts_with("upperdir=")));
}

#[test]
fn native_passes_suite() {
    let t = tempfile::tempdir().unwrap();
    let s = NativeSnapshotter::open(&t.path().join("native")).unwrap();
    suite(&s, t.path());
}

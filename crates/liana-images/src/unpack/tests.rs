use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::digest::sha256_of;

/// A tar entry written with raw header fields, so that malicious names are possible.
fn raw(b: &mut Vec<u8>, name: &str, kind: ::tar::EntryType, link: &str, data: &[u8], mode: u32) {
    let mut h = ::tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    b.extend(std::iter::repeat_n(0u8, pad));
}

fn finish(mut b: Vec<u8>) -> Vec<u8> {
    b.extend(std::iter::repeat_n(0u8, 1024));
    b
}

fn opts(mode: WhiteoutMode) -> ApplyOptions {
    ApplyOptions {
        whiteouts: mode,
        ..Default::default()
    }
}

fn apply(root: &Path, tar: &[u8], o: &ApplyOptions) -> Result<(Digest, ApplyStats), UnpackError> {
    apply_layer(root, tar, Compression::None, None, "sha256:test", o)
}

#[test]
fn applies_files_links_and_whiteouts() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("data/opaque")).unwrap();
    std::fs::write(root.join("data/opaque/old"), "old").unwrap();
    std::fs::write(root.join("data/gone"), "x").unwrap();
    let mut b = Vec::new();
    raw(
        &mut b,
        "./data/",
        ::tar::EntryType::Directory,
        "",
        b"",
        0o755,
    );
    raw(
        &mut b,
        "data/file",
        ::tar::EntryType::Regular,
        "",
        b"hello",
        0o640,
    );
    raw(
        &mut b,
        "data/link",
        ::tar::EntryType::Symlink,
        "file",
        b"",
        0o777,
    );
    raw(
        &mut b,
        "data/hard",
        ::tar::EntryType::Link,
        "data/file",
        b"",
        0o640,
    );
    raw(
        &mut b,
        "data/.wh.gone",
        ::tar::EntryType::Regular,
        "",
        b"",
        0o644,
    );
    raw(
        &mut b,
        "data/opaque/.wh..wh..opq",
        ::tar::EntryType::Regular,
        "",
        b"",
        0o644,
    );
    raw(
        &mut b,
        "data/opaque/new",
        ::tar::EntryType::Regular,
        "",
        b"new",
        0o644,
    );
    raw(
        &mut b,
        "deep/implicit/parent",
        ::tar::EntryType::Regular,
        "",
        b"p",
        0o600,
    );
    raw(&mut b, "data/fifo", ::tar::EntryType::Fifo, "", b"", 0o600);
    // symlink target is empty in `raw` for Symlink: set it properly
    let mut b2 = Vec::new();
    raw(
        &mut b2,
        "data/abs",
        ::tar::EntryType::Symlink,
        "/bin/busybox",
        b"",
        0o777,
    );
    let tar = finish([b, b2].concat());
    let (d, stats) = apply(root, &tar, &opts(WhiteoutMode::Apply)).unwrap_err_or_ok();
    assert_eq!(d, sha256_of(&tar));
    assert_eq!(stats.bytes, 5 + 3 + 1);
    assert_eq!(
        std::fs::read_to_string(root.join("data/file")).unwrap(),
        "hello"
    );
    assert_eq!(
        std::fs::metadata(root.join("data/file"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(root.join("data/file")).unwrap().mtime(),
        1_700_000_000
    );
    let ino = std::fs::metadata(root.join("data/file")).unwrap().ino();
    assert_eq!(
        std::fs::metadata(root.join("data/hard")).unwrap().ino(),
        ino
    );
    assert_eq!(
        std::fs::read_link(root.join("data/abs")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert!(!root.join("data/gone").exists());
    assert!(!root.join("data/opaque/old").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("data/opaque/new")).unwrap(),
        "new"
    );
    assert!(root.join("deep/implicit/parent").exists());
    assert_eq!(
        std::fs::metadata(root.join("data")).unwrap().mtime(),
        1_700_000_000,
        "dir mtime set last"
    );
}

trait Both<T> {
    fn unwrap_err_or_ok(self) -> T;
}
impl<T, E: std::fmt::Display> Both<T> for Result<T, E> {
    fn unwrap_err_or_ok(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("apply failed: {e}"),
        }
    }
}

#[test]
fn overlay_whiteouts_as_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root for mknod and trusted xattrs");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut b = Vec::new();
    raw(&mut b, "d/.wh.x", ::tar::EntryType::Regular, "", b"", 0o644);
    raw(
        &mut b,
        "o/.wh..wh..opq",
        ::tar::EntryType::Regular,
        "",
        b"",
        0o644,
    );
    apply(
        t.path(),
        &finish(b),
        &opts(WhiteoutMode::Overlay {
            xattr_prefix: "trusted.".into(),
        }),
    )
    .unwrap_err_or_ok();
    let m = std::fs::symlink_metadata(t.path().join("d/x")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(t.path().join("o"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
}

#[test]
fn refuses_escapes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "s").unwrap();
    let o = opts(WhiteoutMode::Apply);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "../escape",
                    ::tar::EntryType::Regular,
                    "",
                    b"x",
                    0o644,
                );
                b
            },
            "'..'",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "a/../../escape",
                    ::tar::EntryType::Regular,
                    "",
                    b"x",
                    0o644,
                );
                b
            },
            "'..'",
        ),
        (
            {
                let mut b = Vec::new();
                raw(&mut b, "/abs", ::tar::EntryType::Regular, "", b"x", 0o644);
                b
            },
            "absolute",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "lnk",
                    ::tar::EntryType::Symlink,
                    outside.to_str().unwrap(),
                    b"",
                    0o777,
                );
                raw(
                    &mut b,
                    "lnk/pwned",
                    ::tar::EntryType::Regular,
                    "",
                    b"x",
                    0o644,
                );
                b
            },
            "outside the unpack root",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "up",
                    ::tar::EntryType::Symlink,
                    "../outside",
                    b"",
                    0o777,
                );
                raw(
                    &mut b,
                    "up/pwned",
                    ::tar::EntryType::Regular,
                    "",
                    b"x",
                    0o644,
                );
                b
            },
            "outside the unpack root",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "h",
                    ::tar::EntryType::Link,
                    "../outside/secret",
                    b"",
                    0o644,
                );
                b
            },
            "hardlink target",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "lnk2",
                    ::tar::EntryType::Symlink,
                    outside.to_str().unwrap(),
                    b"",
                    0o777,
                );
                raw(
                    &mut b,
                    "h2",
                    ::tar::EntryType::Link,
                    "lnk2/secret",
                    b"",
                    0o644,
                );
                b
            },
            "outside the unpack root",
        ),
        (
            {
                let mut b = Vec::new();
                raw(
                    &mut b,
                    "h3",
                    ::tar::EntryType::Link,
                    "/etc/passwd",
                    b"",
                    0o644,
                );
                b
            },
            "absolute",
        ),
    ];
    for (tar, want) in cases {
        let e = apply(&root, &finish(tar), &o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataCorrupt, "{e}");
        assert!(e.to_string().contains(want), "{e} should mention {want}");
        assert!(e.to_string().contains("sha256:test"), "{e} names the layer");
    }
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"], "nothing written outside");
    assert_eq!(
        std::fs::metadata(outside.join("secret")).unwrap().nlink(),
        1,
        "no hardlink to outside"
    );
    assert!(!t.path().join("escape").exists());
}

#[test]
fn bounds_decompression_and_checks_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let mut b = Vec::new();
    raw(
        &mut b,
        "zeros",
        ::tar::EntryType::Regular,
        "",
        &vec![0u8; 8 << 20],
        0o644,
    );
    let tar = finish(b);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 512 << 10, "a small blob that expands a lot");
    let o = ApplyOptions {
        max_size: 1 << 20,
        ..opts(WhiteoutMode::Apply)
    };
    let e = apply_layer(
        t.path(),
        &gz[..],
        Compression::Gzip,
        None,
        "sha256:bomb",
        &o,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::TooLarge { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    let o = opts(WhiteoutMode::Apply);
    let good = sha256_of(&tar);
    let (d, _) = apply_layer(
        t.path(),
        &gz[..],
        Compression::Gzip,
        Some(&good),
        "sha256:ok",
        &o,
    )
    .unwrap();
    assert_eq!(d, good);
    let bad = sha256_of(b"other");
    let e = apply_layer(
        t.path(),
        &gz[..],
        Compression::Gzip,
        Some(&bad),
        "sha256:l",
        &o,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::DiffIdMismatch { .. }), "{e}");
    let o = ApplyOptions {
        max_entries: 0,
        ..opts(WhiteoutMode::Apply)
    };
    assert!(matches!(
        apply(t.path(), &tar, &o).unwrap_err(),
        UnpackError::TooLarge {
            what: "entries",
            ..
        }
    ));
}

#[test]
fn mounts_to_target() {
    let m = |kind: &str, opts: &[&str]| crate::snapshot::Mount {
        kind: kind.into(),
        source: "/src".into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        target_dir(&[m("bind", &["rw"])]).unwrap(),
        Path::new("/src")
    );
    assert_eq!(
        target_dir(&[m("overlay", &["lowerdir=/a", "upperdir=/u", "workdir=/w"])]).unwrap(),
        Path::new("/u")
    );
    assert_eq!(
        target_dir(&[m("tmpfs", &[])]).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

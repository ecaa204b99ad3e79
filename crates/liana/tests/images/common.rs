//! Shared fixture of the image integration tests: real registries started by
//! `tests/images/setup.sh` (plain, basic, token, TLS) and helpers to run `liana`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub struct Fixture {
    pub env: HashMap<String, String>,
    pub dir: PathBuf,
}

impl Fixture {
    pub fn get(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing from the set-up env"))
    }
}

static FX: OnceLock<Option<Fixture>> = OnceLock::new();

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture, or `None` (test skipped with a message) when not root.
pub fn fixture() -> Option<&'static Fixture> {
    FX.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            eprintln!(
                "skipped: the registry tests need root (they install packages and mount overlays)"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("liana-images-it-{}", std::process::id()));
        let out = Command::new(repo_root().join("tests/images/setup.sh"))
            .arg(&dir)
            .arg("--owner")
            .arg(std::process::id().to_string())
            .output()
            .expect("run tests/images/setup.sh");
        assert!(
            out.status.success(),
            "setup failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Some(Fixture { env, dir })
    })
    .as_ref()
}

/// A storage root plus the per-test config files `liana` is pointed at.
pub struct Root {
    pub tmp: tempfile::TempDir,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "liana failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        assert_ne!(
            self.code, 0,
            "liana should have failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr should mention {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

impl Root {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        std::fs::write(tmp.path().join("registries.conf"), "").unwrap();
        Root { tmp }
    }
    pub fn path(&self) -> PathBuf {
        self.tmp.path().join("store")
    }
    pub fn auth_file(&self) -> PathBuf {
        self.tmp.path().join("auth.json")
    }
    pub fn set_registries_conf(&self, text: &str) {
        std::fs::write(self.tmp.path().join("registries.conf"), text).unwrap();
    }
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_liana"));
        c.arg("--root").arg(self.path()).args(args);
        c.env(
            "CONTAINERS_REGISTRIES_CONF",
            self.tmp.path().join("registries.conf"),
        )
        .env("REGISTRY_AUTH_FILE", self.auth_file())
        .env("HOME", self.tmp.path().join("home"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LIANA_ROOT");
        c
    }
    pub fn run(&self, args: &[&str]) -> Out {
        let o: Output = self.command(args).output().expect("run liana");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    pub fn images_json(&self) -> Vec<serde_json::Value> {
        let o = self.run(&["images", "--format", "json"]);
        o.ok();
        serde_json::from_str(&o.stdout).expect("images json")
    }
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let o = self.run(&["image", "inspect", name]);
        o.ok();
        let v: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).expect("inspect json");
        v.into_iter().next().unwrap()
    }
    /// Blob files in the content store.
    pub fn blobs(&self) -> Vec<String> {
        let d = self.path().join("content/blobs/sha256");
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
    pub fn ingests(&self) -> usize {
        std::fs::read_dir(self.path().join("content/ingest"))
            .map(|r| r.count())
            .unwrap_or(0)
    }
    pub fn store(&self) -> liana_images::ImageStore {
        liana_images::ImageStore::open(liana_images::StoreOptions::new(&self.path()))
            .expect("open store")
    }
    /// Nothing of a failed pull may remain.
    pub fn assert_empty(&self) {
        assert!(self.images_json().is_empty(), "no image recorded");
        assert!(
            self.blobs().is_empty(),
            "no blob stored: {:?}",
            self.blobs()
        );
        assert_eq!(self.ingests(), 0, "no ingest left");
        let snaps = self.store().snapshotter().walk().unwrap();
        assert!(snaps.is_empty(), "no snapshot left: {snaps:?}");
    }

    /// Runs `f` on the image's root file system, assembled from the snapshotter's
    /// mounts (mounted here for overlay; a bind mount's source is used directly).
    pub fn with_rootfs(&self, name: &str, f: impl FnOnce(&Path)) {
        let store = self.store();
        let rec = store.find(name).expect("image");
        let top = rec.snapshot.clone().expect("unpacked");
        let sn = store.snapshotter();
        let key = format!("test-view-{}", std::process::id());
        let mounts = sn.view(&key, Some(&top)).expect("view");
        let m = &mounts[0];
        if m.kind == "bind" {
            f(&m.source);
        } else {
            let target = self.tmp.path().join("mnt");
            std::fs::create_dir_all(&target).unwrap();
            let opts = m.options.join(",");
            let st = Command::new("mount")
                .args(["-t", &m.kind, "-o", &opts])
                .arg(&m.source)
                .arg(&target)
                .status()
                .unwrap();
            assert!(st.success(), "mount {m}");
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&target)));
            let _ = Command::new("umount").arg(&target).status();
            if let Err(p) = res {
                std::panic::resume_unwind(p);
            }
        }
        sn.remove(&key).unwrap();
    }
}

/// The manifest digest make-images.py wrote for `image`.
pub fn manifest_digest(fx: &Fixture, image: &str) -> String {
    let p = Path::new(fx.get("IMAGES")).join(image).join("index.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["manifests"][0]["digest"].as_str().unwrap().to_string()
}

/// The layer descriptors of an image built by make-images.py.
pub fn layers(fx: &Fixture, image: &str) -> Vec<String> {
    let d = manifest_digest(fx, image);
    let p = Path::new(fx.get("IMAGES"))
        .join(image)
        .join("blobs/sha256")
        .join(&d[7..]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The registry's storage file of a blob.
pub fn registry_blob(dir: &str, digest: &str) -> PathBuf {
    let hex = &digest[7..];
    Path::new(dir)
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Checks the tree of the `layered` test image.
pub fn check_layered_tree(root: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert!(bb.permissions().mode() & 0o111 != 0, "busybox executable");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert!(!root.join("data/todelete.txt").exists(), "whiteout applied");
    let mut opaque: Vec<_> = std::fs::read_dir(root.join("data/opaque"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opaque.sort();
    assert_eq!(opaque, ["new.txt"], "opaque dir hides the lower layer");
    assert_eq!(
        std::fs::read_to_string(root.join("data/hello.txt")).unwrap(),
        "hello from layer 2\n"
    );
    assert_eq!(
        std::fs::read_link(root.join("data/symlink")).unwrap(),
        Path::new("hello.txt")
    );
    let h = std::fs::metadata(root.join("data/hardlink")).unwrap();
    assert_eq!(
        h.ino(),
        std::fs::metadata(root.join("data/hello.txt"))
            .unwrap()
            .ino(),
        "hardlink kept"
    );
    let o = std::fs::metadata(root.join("data/dir/sub/owned-1000.txt")).unwrap();
    assert_eq!((o.uid(), o.gid()), (1000, 1000));
    assert_eq!(
        std::fs::metadata(root.join("data/private.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(root.join("data/hello.txt"))
            .unwrap()
            .mtime(),
        1704067200
    );
}

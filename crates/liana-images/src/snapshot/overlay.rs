//! The overlayfs snapshotter: one directory per snapshot holding only its own changes;
//! active snapshots get an upper and a work dir and are returned as an `overlay` mount
//! over their ancestors (a `bind` mount when they have none).

use std::path::Path;

use super::storage::{disk_usage, Storage};
use super::{Info, Kind, Mount, SnapshotError, Snapshotter};
use crate::unpack::WhiteoutMode;

/// Options of the overlay snapshotter.
#[derive(Debug, Clone)]
pub struct OverlayOptions {
    /// Mount type to return: `overlay` (kernel) or `fuse3.fuse-overlayfs` (rootless on
    /// kernels without unprivileged overlay).
    pub mount_type: String,
    /// Rootless kernel overlay: use `user.overlay.*` xattrs and the `userxattr` option.
    pub userxattr: bool,
}

impl Default for OverlayOptions {
    fn default() -> Self {
        OverlayOptions {
            mount_type: "overlay".into(),
            userxattr: false,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    st: Storage,
    opts: OverlayOptions,
}

impl OverlaySnapshotter {
    /// Opens (creating) a snapshotter rooted at `root`.
    pub fn open(root: &Path, opts: OverlayOptions) -> Result<Self, SnapshotError> {
        Ok(OverlaySnapshotter {
            st: Storage::open(root)?,
            opts,
        })
    }

    fn fs(&self, i: &Info) -> std::path::PathBuf {
        self.st.dir(i.id).join("fs")
    }

    fn mounts_of(&self, i: &Info) -> Result<Vec<Mount>, SnapshotError> {
        let parents = self.st.ancestors(i)?;
        let bind = |p: std::path::PathBuf, ro: bool| Mount {
            kind: "bind".into(),
            source: p,
            options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
        };
        let lower = parents
            .iter()
            .map(|p| self.fs(p).display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut opts = Vec::new();
        if self.opts.userxattr {
            opts.push("userxattr".to_string());
        }
        match i.kind {
            Kind::Active if parents.is_empty() => Ok(vec![bind(self.fs(i), false)]),
            Kind::Active => {
                let dir = self.st.dir(i.id);
                opts.push("index=off".into());
                opts.push(format!("lowerdir={lower}"));
                opts.push(format!("upperdir={}", dir.join("fs").display()));
                opts.push(format!("workdir={}", dir.join("work").display()));
                Ok(vec![Mount {
                    kind: self.opts.mount_type.clone(),
                    source: "overlay".into(),
                    options: opts,
                }])
            }
            Kind::View | Kind::Committed if parents.len() <= 1 && i.kind == Kind::View => {
                Ok(vec![bind(
                    parents
                        .first()
                        .map(|p| self.fs(p))
                        .unwrap_or_else(|| self.fs(i)),
                    true,
                )])
            }
            Kind::View => {
                opts.push(format!("lowerdir={lower}"));
                Ok(vec![Mount {
                    kind: self.opts.mount_type.clone(),
                    source: "overlay".into(),
                    options: opts,
                }])
            }
            Kind::Committed => Err(SnapshotError::WrongKind {
                key: i.key.clone(),
                actual: i.kind,
                expected: "active or view",
            }),
        }
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn name(&self) -> &'static str {
        "overlayfs"
    }

    fn whiteout_mode(&self) -> WhiteoutMode {
        WhiteoutMode::Overlay {
            xattr_prefix: if self.opts.userxattr {
                "user."
            } else {
                "trusted."
            }
            .into(),
        }
    }

    fn supports_detached_apply(&self) -> bool {
        true
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.st.get(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let i = self.st.get(key)?;
        self.mounts_of(&i)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        let i = self.st.create(key, Kind::Active, parent)?;
        let dir = self.st.dir(i.id);
        for d in [dir.join("fs"), dir.join("work")] {
            if let Err(e) = std::fs::create_dir_all(&d) {
                let _ = self.st.remove(key);
                return Err(Storage::io(key, "create", &d)(e));
            }
        }
        self.mounts_of(&i)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        let i = self.st.create(key, Kind::View, parent)?;
        let fs = self.fs(&i);
        std::fs::create_dir_all(&fs).map_err(Storage::io(key, "create", &fs))?;
        self.mounts_of(&i)
    }

    fn set_parent(&self, key: &str, parent: &str) -> Result<(), SnapshotError> {
        self.st.set_parent(key, parent)
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        let i = self.st.commit(name, key)?;
        // the work dir is only needed while mounted read-write
        let _ = std::fs::remove_dir_all(self.st.dir(i.id).join("work"));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let i = self.st.remove(key)?;
        self.st.remove_dir(&i)
    }

    fn walk(&self) -> Result<Vec<Info>, SnapshotError> {
        self.st.walk()
    }

    fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        let i = self.st.get(key)?;
        let fs = self.fs(&i);
        disk_usage(&fs).map_err(Storage::io(key, "measure", &fs))
    }
}

//! The native snapshotter: every snapshot is a full copy of its parent's tree, returned
//! as a `bind` mount. Works on any file system and needs no overlay support; layers are
//! applied sequentially since each needs its parent's content.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use super::storage::{disk_usage, Storage};
use super::{Info, Kind, Mount, SnapshotError, Snapshotter};
use crate::unpack::WhiteoutMode;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct NativeSnapshotter {
    st: Storage,
}

impl NativeSnapshotter {
    /// Opens (creating) a snapshotter rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        Ok(NativeSnapshotter {
            st: Storage::open(root)?,
        })
    }

    fn fs(&self, i: &Info) -> PathBuf {
        self.st.dir(i.id).join("fs")
    }

    fn mounts_of(&self, i: &Info) -> Result<Vec<Mount>, SnapshotError> {
        let (src, ro) = match i.kind {
            Kind::Active => (self.fs(i), false),
            Kind::View => match &i.parent {
                Some(p) => (self.fs(&self.st.get(p)?), true),
                None => (self.fs(i), true),
            },
            Kind::Committed => {
                return Err(SnapshotError::WrongKind {
                    key: i.key.clone(),
                    actual: i.kind,
                    expected: "active or view",
                })
            }
        };
        Ok(vec![Mount {
            kind: "bind".into(),
            source: src,
            options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
        }])
    }
}

impl Snapshotter for NativeSnapshotter {
    fn name(&self) -> &'static str {
        "native"
    }

    fn whiteout_mode(&self) -> WhiteoutMode {
        WhiteoutMode::Apply
    }

    fn supports_detached_apply(&self) -> bool {
        false
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
        let fs = self.fs(&i);
        let res = (|| match parent {
            Some(p) => {
                let src = self.fs(&self.st.get(p)?);
                let dir = self.st.dir(i.id);
                std::fs::create_dir_all(&dir).map_err(Storage::io(key, "create", &dir))?;
                copy_tree(&src, &fs).map_err(Storage::io(key, "copy parent into", &fs))
            }
            None => std::fs::create_dir_all(&fs).map_err(Storage::io(key, "create", &fs)),
        })();
        if let Err(e) = res {
            let _ = self.st.remove(key);
            let _ = self.st.remove_dir(&i);
            return Err(e);
        }
        self.mounts_of(&i)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        let i = self.st.create(key, Kind::View, parent)?;
        let fs = self.fs(&i);
        std::fs::create_dir_all(&fs).map_err(Storage::io(key, "create", &fs))?;
        self.mounts_of(&i)
    }

    fn set_parent(&self, _key: &str, _parent: &str) -> Result<(), SnapshotError> {
        Err(SnapshotError::Unsupported {
            snapshotter: "native",
            what: "detached apply (set_parent)",
        })
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        self.st.commit(name, key).map(|_| ())
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

/// Copies the tree `src` to `dst` (which must not exist) keeping types, ownership,
/// modes, times, xattrs and hard links; symlinks are copied, never followed.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs = Vec::new();
    copy_entry(src, dst, &mut links, &mut dirs)?;
    // directory times last, deepest first
    for (d, m) in dirs.into_iter().rev() {
        set_times(&d, &m)?;
    }
    Ok(())
}

fn set_times(p: &Path, m: &std::fs::Metadata) -> std::io::Result<()> {
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    };
    rfs::utimensat(rfs::CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(std::io::Error::from)
}

fn copy_xattrs(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rfs::llistxattr(src, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name);
        let mut val = vec![0u8; 64 * 1024];
        let vn = rfs::lgetxattr(src, name, &mut val)?;
        if let Err(e) = rfs::lsetxattr(dst, name, &val[..vn], XattrFlags::empty()) {
            tracing::warn!(path = %dst.display(), error = %e, "xattr not copied");
        }
    }
    Ok(())
}

fn copy_entry(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    dirs: &mut Vec<(PathBuf, std::fs::Metadata)>,
) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    let ft = m.file_type();
    let owner = || {
        rfs::chownat(
            rfs::CWD,
            dst,
            Some(Uid::from_raw(m.uid())),
            Some(Gid::from_raw(m.gid())),
            AtFlags::SYMLINK_NOFOLLOW,
        )
    };
    if ft.is_dir() {
        std::fs::create_dir(dst)?;
        let _ = owner();
        rfs::chmodat(
            rfs::CWD,
            dst,
            Mode::from_raw_mode(m.mode() & 0o7777),
            AtFlags::empty(),
        )?;
        copy_xattrs(src, dst)?;
        dirs.push((dst.to_path_buf(), m.clone()));
        let mut names: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            copy_entry(&e.path(), &dst.join(e.file_name()), links, dirs)?;
        }
        return Ok(());
    }
    if m.nlink() > 1 && !ft.is_symlink() {
        if let Some(first) = links.get(&(m.dev(), m.ino())) {
            return std::fs::hard_link(first, dst);
        }
        links.insert((m.dev(), m.ino()), dst.to_path_buf());
    }
    if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        let _ = owner();
    } else if ft.is_file() {
        let mut r = std::fs::File::open(src)?;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)?;
        std::io::copy(&mut r, &mut w)?;
        let _ = owner();
        rfs::chmodat(
            rfs::CWD,
            dst,
            Mode::from_raw_mode(m.mode() & 0o7777),
            AtFlags::empty(),
        )?;
        copy_xattrs(src, dst)?;
    } else {
        let kind = rfs::FileType::from_raw_mode(m.mode());
        rfs::mknodat(
            rfs::CWD,
            dst,
            kind,
            Mode::from_raw_mode(m.mode() & 0o7777),
            m.rdev(),
        )?;
        let _ = owner();
        copy_xattrs(src, dst)?;
    }
    set_times(dst, &m)
}

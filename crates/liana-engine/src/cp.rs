//! `cp`: copying files between a container and the host, with `cp -a`-like trees
//! (modes, times, symlinks as links, ownership when root).
//!
//! Container paths resolve inside the container's root file system (or the volume
//! mounted there) through [`liana_container::resolve::Root`], so no symlink in the
//! container can make the copy read or write outside it; the copy itself walks
//! directory fds with `O_NOFOLLOW`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use liana_container::resolve::Root;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::{Container, RootfsSource};

/// One side of a `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpPath {
    /// A host path.
    Host(PathBuf),
    /// `CONTAINER:PATH`.
    Container(String, String),
}

/// Parses `CONTAINER:PATH` or a host path (a path with `/` before any `:` is a host
/// path, as docker decides).
pub fn parse_cp_path(s: &str) -> CpPath {
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => CpPath::Container(c.into(), p.into()),
        _ => CpPath::Host(s.into()),
    }
}

fn owner_preserved() -> bool {
    rustix::process::geteuid().is_root()
}

fn set_times_at(dir: BorrowedFd<'_>, name: &str, st: &rustix::fs::Stat) {
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    };
    let _ = rustix::fs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW);
}

fn copy_file_contents(from: OwnedFd, to: OwnedFd) -> io::Result<()> {
    let mut from = std::fs::File::from(from);
    let mut to = std::fs::File::from(to);
    io::copy(&mut from, &mut to)?;
    Ok(())
}

/// Copies the entry `name` of directory `src` into directory `dst` as `dst_name`.
fn copy_entry(
    src: BorrowedFd<'_>,
    name: &str,
    dst: BorrowedFd<'_>,
    dst_name: &str,
) -> io::Result<()> {
    let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            match rustix::fs::mkdirat(dst, dst_name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let s = rustix::fs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let d = rustix::fs::openat(
                dst,
                dst_name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut entries = Vec::new();
            for e in rustix::fs::Dir::read_from(&s)? {
                let e = e?;
                let n = e.file_name().to_string_lossy().into_owned();
                if n != "." && n != ".." {
                    entries.push(n);
                }
            }
            for n in entries {
                copy_entry(s.as_fd(), &n, d.as_fd(), &n)?;
            }
            rustix::fs::fchmod(&d, mode)?;
        }
        FileType::RegularFile => {
            let s = rustix::fs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let _ = rustix::fs::unlinkat(dst, dst_name, AtFlags::empty());
            let d = rustix::fs::openat(
                dst,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            rustix::fs::fchmod(&d, mode)?;
            copy_file_contents(s, d)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src, name, Vec::new())?;
            let _ = rustix::fs::unlinkat(dst, dst_name, AtFlags::empty());
            rustix::fs::symlinkat(target.as_c_str(), dst, dst_name)?;
        }
        _ => {
            tracing::debug!("cp: skipping special file {name}");
            return Ok(());
        }
    }
    if owner_preserved() {
        let _ = rustix::fs::chownat(
            dst,
            dst_name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            let _ = rustix::fs::chmodat(dst, dst_name, mode, AtFlags::empty());
        }
    }
    set_times_at(dst, dst_name, &st);
    Ok(())
}

fn split(p: &str) -> (String, String) {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(i) => (t[..i].to_string(), t[i + 1..].to_string()),
        None => (".".into(), t.to_string()),
    }
}

/// Copies the resolved path `rel` of `root` (a tree) into the directory `dest`'s
/// content: used to fill a new volume.
pub fn copy_tree_in_root(root: &Root, rel: &str, dest: &Path) -> io::Result<()> {
    let src = root.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let dst = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for e in rustix::fs::Dir::read_from(&src)? {
        let e = e?;
        let n = e.file_name().to_string_lossy().into_owned();
        if n != "." && n != ".." {
            copy_entry(src.as_fd(), &n, dst.as_fd(), &n)?;
        }
    }
    let st = rustix::fs::fstat(&src)?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    if owner_preserved() {
        let _ = rustix::fs::fchown(
            &dst,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
    }
    Ok(())
}

/// A mounted view of a container's files for the length of a copy.
struct View {
    root: PathBuf,
    mounted_here: bool,
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = rustix::mount::unmount(&self.root, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

impl Engine {
    fn view(&self, c: &Container) -> Result<View> {
        match &c.rootfs {
            RootfsSource::Dir { path } => Ok(View {
                root: path.clone(),
                mounted_here: false,
            }),
            RootfsSource::Snapshot { .. } | RootfsSource::Overlay { .. } => {
                let target = self.paths.rootfs_mount(&c.id);
                let was = crate::mount::is_mounted(&target);
                let root = crate::mount::mount_rootfs(&self.rootfs_mounts(c)?, &target)?;
                Ok(View {
                    mounted_here: !was && root == target,
                    root,
                })
            }
        }
    }

    /// The host root and the path within it for a container path, following the
    /// container's volumes and binds.
    fn locate(&self, c: &Container, view: &View, path: &str) -> (PathBuf, String) {
        let p = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let best = c
            .settings
            .mounts
            .iter()
            .filter(|m| {
                p == m.destination
                    || p.starts_with(&format!("{}/", m.destination.trim_end_matches('/')))
            })
            .max_by_key(|m| m.destination.len());
        match best {
            Some(m) => (m.source.clone(), p[m.destination.len()..].to_string()),
            None => (view.root.clone(), p),
        }
    }

    /// `cp SRC DEST` where one side is `CONTAINER:PATH`.
    pub fn copy(&self, src: &CpPath, dest: &CpPath) -> Result<()> {
        match (src, dest) {
            (CpPath::Container(name, path), CpPath::Host(h)) => self.copy_out(name, path, h),
            (CpPath::Host(h), CpPath::Container(name, path)) => self.copy_in(h, name, path),
            _ => Err(Error::flag(
                "cp",
                "exactly one of SRC and DEST must be CONTAINER:PATH",
            )),
        }
    }

    fn copy_out(&self, name: &str, path: &str, host: &Path) -> Result<()> {
        let c = self.lookup(name)?;
        let view = self.view(&c)?;
        let (base, inner) = self.locate(&c, &view, path);
        let root = Root::open(&base).map_err(Error::io("open container root", &base))?;
        let rel = root
            .resolve(Path::new(&inner))
            .map_err(Error::io("find in the container", PathBuf::from(path)))?;
        let (parent, file) = split(&rel);
        let parent_fd = root
            .open_at(&parent, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(Error::io("open in the container", PathBuf::from(path)))?;
        let file = if file.is_empty() || file == "." {
            ".".to_string()
        } else {
            file
        };
        let (dest_dir, dest_name) = if host.is_dir() {
            let n = Path::new(path.trim_end_matches('/'))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "rootfs".into());
            (host.to_path_buf(), n)
        } else {
            let parent = host
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let n = host.file_name().ok_or_else(|| {
                Error::flag("cp", format!("{} is not a file name", host.display()))
            })?;
            (parent.to_path_buf(), n.to_string_lossy().into_owned())
        };
        let d = rustix::fs::open(
            &dest_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", &dest_dir)(e.into()))?;
        if file == "." {
            // the container's root itself
            let src = root
                .open_at(".", OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(Error::io("open container root", &base))?;
            copy_entry(src.as_fd(), ".", d.as_fd(), &dest_name)
                .map_err(Error::io("copy to", host))?;
        } else {
            copy_entry(parent_fd.as_fd(), &file, d.as_fd(), &dest_name)
                .map_err(Error::io("copy to", host))?;
        }
        Ok(())
    }

    fn copy_in(&self, host: &Path, name: &str, path: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let view = self.view(&c)?;
        let (base, inner) = self.locate(&c, &view, path);
        let root = Root::open(&base).map_err(Error::io("open container root", &base))?;
        let src_meta = std::fs::symlink_metadata(host).map_err(Error::io("copy", host))?;
        let src_parent = host
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let src_name = host
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::flag("cp", format!("{} is not a file name", host.display())))?;
        let (dir_rel, dest_name) = match root.resolve(Path::new(&inner)) {
            Ok(rel)
                if root
                    .open_at(&rel, OFlags::RDONLY | OFlags::DIRECTORY)
                    .is_ok() =>
            {
                (rel, src_name.clone())
            }
            _ => {
                let (p, f) = split(&inner);
                let prel = root
                    .resolve(Path::new(if p.is_empty() { "/" } else { &p }))
                    .map_err(Error::io(
                        "find the parent in the container",
                        PathBuf::from(path),
                    ))?;
                (prel, f)
            }
        };
        let d = root
            .open_at(&dir_rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(Error::io("open in the container", PathBuf::from(path)))?;
        let s = rustix::fs::open(
            src_parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", src_parent)(e.into()))?;
        copy_entry(s.as_fd(), &src_name, d.as_fd(), &dest_name).map_err(Error::io("copy", host))?;
        // docker: files copied in belong to the container's root unless -a.
        if owner_preserved() && src_meta.uid() != 0 {
            let _ = rustix::fs::chownat(
                &d,
                dest_name.as_str(),
                Some(rustix::fs::Uid::ROOT),
                Some(rustix::fs::Gid::ROOT),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        let _ = src_meta.permissions().mode();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_cp_path("web:/etc/hosts"),
            CpPath::Container("web".into(), "/etc/hosts".into())
        );
        assert_eq!(parse_cp_path("/tmp/a:b"), CpPath::Host("/tmp/a:b".into()));
        assert_eq!(parse_cp_path("./x"), CpPath::Host("./x".into()));
        assert_eq!(split("a/b/c"), ("a/b".into(), "c".into()));
        assert_eq!(split("c"), (".".into(), "c".into()));
    }

    #[test]
    fn copies_trees() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("root/data");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let dest = t.path().join("vol");
        std::fs::create_dir(&dest).unwrap();
        let root = Root::open(&t.path().join("root")).unwrap();
        copy_tree_in_root(&root, "data", &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/f")).unwrap(),
            "hello"
        );
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }
}

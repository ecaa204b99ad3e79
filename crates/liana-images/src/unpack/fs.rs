//! Directory-fd based file system primitives that cannot leave a root directory.
//!
//! Every path below the root is resolved with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`: `..` climbing out and absolute symlinks fail with `EXDEV`
//! instead of being followed. Where `openat2` is unavailable (Linux < 5.6) a component
//! walk with `O_NOFOLLOW` is used, which refuses every symlinked parent. The final
//! component is never followed: it is created with `O_EXCL`/`O_NOFOLLOW` after removing
//! whatever was there.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Why a path could not be resolved beneath the root.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// Resolution would leave the root (absolute symlink, `..` through a symlink).
    Escapes,
    /// A parent is not a directory, or another errno.
    Errno(Errno),
}

/// Validates an entry name and splits it into components. Leading `./` is allowed;
/// absolute names, `..` components and empty names are refused.
pub(crate) fn components(name: &str) -> Result<Vec<&str>, &'static str> {
    if name.starts_with('/') {
        return Err("absolute path");
    }
    if name.len() > 4096 {
        return Err("path longer than 4096 bytes");
    }
    if name.as_bytes().contains(&0) {
        return Err("NUL byte in path");
    }
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err("'..' component"),
            c if c.len() > 255 => return Err("component longer than 255 bytes"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Opens directory `rel` (components) beneath `root` as an `O_PATH` fd, creating
/// missing directories (mode 0755) when `create` is set.
pub(crate) fn open_dir_beneath(
    root: BorrowedFd<'_>,
    rel: &[&str],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    if rel.is_empty() {
        return rfs::openat(
            root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(ResolveError::Errno);
    }
    let joined = rel.join("/");
    match open_beneath(root, &joined) {
        Ok(fd) => return Ok(fd),
        Err(ResolveError::Errno(Errno::NOENT)) if create => {}
        Err(e) => return Err(e),
    }
    // create missing parents one component at a time, each beneath the previous one
    let mut cur = rfs::openat(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(ResolveError::Errno)?;
    for c in rel {
        match open_beneath(cur.as_fd(), c) {
            Ok(fd) => cur = fd,
            Err(ResolveError::Errno(Errno::NOENT)) => {
                match rfs::mkdirat(&cur, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(ResolveError::Errno(e)),
                }
                cur = open_beneath(cur.as_fd(), c)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

fn open_beneath(dir: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, ResolveError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match rfs::openat2(
            dir,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(fd),
            Err(Errno::XDEV) => return Err(ResolveError::Escapes),
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::AGAIN) => {} // a concurrent rename raced the lookup: use the walk
            Err(e) => return Err(ResolveError::Errno(e)),
        }
    }
    // fallback: walk components refusing any symlink
    let mut cur = rfs::openat(dir, ".", flags, Mode::empty()).map_err(ResolveError::Errno)?;
    for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(ResolveError::Escapes);
        }
        match rfs::openat(&cur, c, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                let st =
                    rfs::statat(&cur, c, AtFlags::SYMLINK_NOFOLLOW).map_err(ResolveError::Errno)?;
                if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink {
                    return Err(ResolveError::Escapes);
                }
                return Err(ResolveError::Errno(Errno::NOTDIR));
            }
            Err(e) => return Err(ResolveError::Errno(e)),
        }
    }
    Ok(cur)
}

/// `lstat` of `name` in `dir`, `None` if absent.
pub(crate) fn lstat(dir: BorrowedFd<'_>, name: &str) -> Result<Option<rfs::Stat>, Errno> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a stat describes a directory.
pub(crate) fn is_dir(st: &rfs::Stat) -> bool {
    rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory
}

/// Removes `name` in `dir`, recursively for directories, never following symlinks.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    let Some(st) = lstat(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        clear_dir(sub.as_fd(), &|_| false)?;
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())
    }
}

/// Removes every entry of the directory `dir` (opened for reading) for which `keep`
/// returns false.
pub(crate) fn clear_dir(dir: BorrowedFd<'_>, keep: &dyn Fn(&str) -> bool) -> Result<(), Errno> {
    let mut names = Vec::new();
    {
        let reader = rfs::Dir::read_from(dir)?;
        for e in reader {
            let e = e?;
            let n = e.file_name().to_string_lossy().to_string();
            if n != "." && n != ".." && !keep(&n) {
                names.push(n);
            }
        }
    }
    for n in names {
        remove_all(dir, &n)?;
    }
    Ok(())
}

/// Opens directory `name` in `dir` for reading (xattrs, listing), without following.
pub(crate) fn open_dir_rd(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_rules() {
        assert_eq!(components("./a/b/").unwrap(), ["a", "b"]);
        assert_eq!(components("a//b").unwrap(), ["a", "b"]);
        assert!(components("/etc/passwd").is_err());
        assert!(components("a/../../b").is_err());
        assert!(components("..").is_err());
        assert!(components("./").unwrap().is_empty());
    }

    #[test]
    fn beneath_refuses_escaping_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root_path = t.path().join("root");
        std::fs::create_dir_all(root_path.join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", root_path.join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", root_path.join("up")).unwrap();
        std::os::unix::fs::symlink("real", root_path.join("rel")).unwrap();
        let root = rfs::open(&root_path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(matches!(
            open_dir_beneath(root.as_fd(), &["abs"], false),
            Err(ResolveError::Escapes)
        ));
        assert!(matches!(
            open_dir_beneath(root.as_fd(), &["up", "x"], true),
            Err(ResolveError::Escapes)
        ));
        assert!(open_dir_beneath(root.as_fd(), &["rel"], false).is_ok());
        assert!(open_dir_beneath(root.as_fd(), &["new", "deep"], true).is_ok());
        assert!(root_path.join("new/deep").is_dir());
        assert!(!t.path().join("x").exists());
    }
}

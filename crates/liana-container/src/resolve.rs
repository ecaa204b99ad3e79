//! Paths inside a container's root filesystem, resolved relative to a directory fd.
//!
//! Every lookup goes through `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`
//! and absolute symlinks are scoped to the rootfs and `/proc/self/fd/N` tricks cannot
//! leave it. Creating missing components (mount points, device nodes, cwd) walks the path
//! one component at a time, reading symlinks itself and re-resolving the prefix through
//! the kernel at each step: whatever the rootfs contains, nothing is created or opened
//! outside it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

const MAX_SYMLINKS: usize = 40;

/// How many times a component that mkdir says exists may vanish again before lookup.
const MAX_CREATE_RACES: usize = 16;

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A directory (mode 0755).
    Dir,
    /// An empty regular file (mode 0644), e.g. a bind mount point for a file.
    File,
}

/// An open root directory.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn rel_str(components: &[String]) -> String {
    if components.is_empty() {
        ".".to_owned()
    } else {
        components.join("/")
    }
}

impl Root {
    /// Opens `path` as the root.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// The root's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path the root was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` (a resolved or unresolved path, absolute paths are taken relative to
    /// the root) with `flags`, never leaving the root.
    pub fn open_at(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        Ok(rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        )?)
    }

    /// Resolves `path` to a symlink-free path relative to the root, creating what is
    /// missing: intermediate directories, and `last` for the final component. Returns
    /// the resolved relative path (`.` for the root itself).
    pub fn create_all(&self, path: &Path, last: Create) -> io::Result<String> {
        self.walk(path, Some(last))
    }

    /// Resolves `path` to a symlink-free path relative to the root; missing components
    /// give `NotFound`.
    pub fn resolve(&self, path: &Path) -> io::Result<String> {
        self.walk(path, None)
    }

    fn walk(&self, path: &Path, create: Option<Create>) -> io::Result<String> {
        let mut todo: VecDeque<String> = components(path).into();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        let mut races = 0;
        while let Some(comp) = todo.pop_front() {
            if comp == ".." {
                done.pop();
                continue;
            }
            done.push(comp);
            let rel = rel_str(&done);
            match self.open_at(&rel, OFlags::PATH | OFlags::NOFOLLOW) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd)?;
                    match FileType::from_raw_mode(st.st_mode) {
                        FileType::Symlink => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(io::Error::from_raw_os_error(libc::ELOOP));
                            }
                            let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                            let target: PathBuf =
                                <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                                    target.into_bytes(),
                                )
                                .into();
                            done.pop();
                            if target.is_absolute() {
                                done.clear();
                            }
                            for c in components(&target).into_iter().rev() {
                                todo.push_front(c);
                            }
                        }
                        FileType::Directory => {}
                        _ if todo.is_empty() => {}
                        _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let Some(kind) = create else { return Err(e) };
                    let name = done.pop().expect("just pushed");
                    let parent = self.open_at(&rel_str(&done), OFlags::PATH | OFlags::DIRECTORY)?;
                    let r = if todo.is_empty() && kind == Create::File {
                        rustix::fs::openat(
                            &parent,
                            name.as_str(),
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o644),
                        )
                        .map(drop)
                    } else {
                        rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755))
                    };
                    match r {
                        Ok(()) => {}
                        // Lost a race with a concurrent creator: look again, a few times.
                        // Some names exist for mkdir but never for open (procfs's
                        // /proc/self/fd/N while fd N is the parent we hold): give up.
                        Err(rustix::io::Errno::EXIST) if races < MAX_CREATE_RACES => {
                            races += 1;
                        }
                        Err(rustix::io::Errno::EXIST) => return Err(e),
                        Err(e) => return Err(e.into()),
                    }
                    todo.push_front(name);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(rel_str(&done))
    }
}

/// Splits a path into normal components (dropping `/` and `.`, keeping `..`).
pub fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn creates_missing_dirs() {
        let (dir, root) = root();
        let rel = root
            .create_all(Path::new("/a//b/./c"), Create::Dir)
            .unwrap();
        assert_eq!(rel, "a/b/c");
        assert!(dir.path().join("a/b/c").is_dir());
    }

    #[test]
    fn creates_file_at_end() {
        let (dir, root) = root();
        let rel = root
            .create_all(Path::new("/etc/hosts"), Create::File)
            .unwrap();
        assert_eq!(rel, "etc/hosts");
        assert!(dir.path().join("etc/hosts").is_file());
    }

    #[test]
    fn dotdot_is_clamped_at_root() {
        let (dir, root) = root();
        let rel = root.create_all(Path::new("/../../x"), Create::Dir).unwrap();
        assert_eq!(rel, "x");
        assert!(dir.path().join("x").is_dir());
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("escape")).unwrap();
        let rel = root
            .create_all(Path::new("/escape/sub"), Create::Dir)
            .unwrap();
        // The absolute target is re-rooted: created inside the rootfs, not outside.
        let inside = outside.path().strip_prefix("/").unwrap().join("sub");
        assert_eq!(rel, inside.to_str().unwrap());
        assert!(dir.path().join(&inside).is_dir());
        assert!(!outside.path().join("sub").exists());
    }

    #[test]
    fn relative_symlink_with_dotdot_stays_inside() {
        let (dir, root) = root();
        symlink("../../../../../tmp", dir.path().join("up")).unwrap();
        let rel = root
            .create_all(Path::new("/up/liana-test-x"), Create::Dir)
            .unwrap();
        assert_eq!(rel, "tmp/liana-test-x");
        assert!(dir.path().join("tmp/liana-test-x").is_dir());
    }

    #[test]
    fn dangling_symlink_target_is_created() {
        let (dir, root) = root();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        symlink("../foo/bar/not/here", dir.path().join("etc/not-existing")).unwrap();
        let rel = root
            .create_all(Path::new("/etc/not-existing"), Create::File)
            .unwrap();
        assert_eq!(rel, "foo/bar/not/here");
        assert!(dir.path().join("foo/bar/not/here").is_file());
    }

    #[test]
    fn symlink_loop_fails() {
        let (dir, root) = root();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let e = root.create_all(Path::new("/a/x"), Create::Dir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn file_in_the_middle_is_not_a_dir() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("f"), b"").unwrap();
        let e = root.create_all(Path::new("/f/x"), Create::Dir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn name_that_exists_only_for_mkdir_fails_instead_of_looping() {
        // /proc/self/fd/N where N is the fd the walk holds on /proc/self/fd itself: mkdir
        // sees it, lookups after closing it do not. The walk must end (it used to spin
        // forever). Other test threads may take that fd number meanwhile, so only the
        // ending is checked.
        let root = Root::open(Path::new("/")).unwrap();
        let probe = root.open_at("proc/self/fd", OFlags::PATH).unwrap();
        let next = std::os::fd::AsRawFd::as_raw_fd(&probe);
        drop(probe);
        let path = format!("/proc/self/fd/{next}");
        let _ = root.create_all(Path::new(&path), Create::Dir);
    }

    #[test]
    fn resolve_does_not_create() {
        let (dir, root) = root();
        let e = root.resolve(Path::new("/nope/x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!dir.path().join("nope").exists());
    }

    #[test]
    fn magic_links_are_refused() {
        let (dir, root) = root();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        // A real magic link cannot be planted in a tempdir; check open_at refuses the
        // host's /proc/self/fd/N when reached through an absolute symlink instead: the
        // symlink is re-rooted and does not reach the host's procfs.
        symlink("/proc/self/fd/0", dir.path().join("fd0")).unwrap();
        let e = root.open_at("fd0", OFlags::PATH).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

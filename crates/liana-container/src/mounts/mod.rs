//! Performing the config's `mounts` inside the container's mount namespace.
//!
//! Every target is resolved (and created if missing) inside the rootfs through
//! [`crate::resolve::Root`], then mounted through its `/proc/self/fd/N` magic link, so
//! a symlink swapped in during set-up cannot redirect a mount outside the rootfs.
//! After a mount the target is resolved again, so that remounts and propagation
//! changes reach the new mount and not the one below it.

mod cgroup;
mod options;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Mount};
use rustix::fs::OFlags;

pub use options::{propagation_flag, IdRange, Idmap, MountOptions};

use crate::resolve::{Create, Root};
use crate::sys;

/// A failed mount, naming the mount by index and destination.
#[derive(Debug, thiserror::Error)]
#[error("mounts[{index}] ({destination}): {op}")]
pub struct MountError {
    /// Index in the config's `mounts`.
    pub index: usize,
    /// The mount's destination.
    pub destination: PathBuf,
    /// What failed.
    pub op: String,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// Host-side facts the mounts need.
#[derive(Debug)]
pub struct MountContext<'a> {
    /// Absolute bundle path (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// The container runs in a new user namespace: flags of bind sources are locked.
    pub userns: bool,
    /// The container has a private cgroup namespace.
    pub cgroupns: bool,
    /// The container's uid and gid mappings, when the mounts are made by the runtime's
    /// root outside the container's user namespace: `uid=`/`gid=` mount options are
    /// container ids and must reach the kernel as host ids.
    pub host_ids: Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])>,
}

impl MountContext<'_> {
    /// `data` with its `uid=N` and `gid=N` options mapped to host ids (see `host_ids`).
    fn host_data(&self, data: Option<String>) -> Option<String> {
        let (Some((uids, gids)), Some(data)) = (self.host_ids, data.as_deref()) else {
            return data;
        };
        let map = |maps: &[LinuxIdMapping], v: &str| -> Option<String> {
            let id: u32 = v.parse().ok()?;
            maps.iter()
                .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
                .map(|m| (m.host_id() + (id - m.container_id())).to_string())
        };
        let out: Vec<String> = data
            .split(',')
            .map(|o| match o.split_once('=') {
                Some(("uid", v)) => map(uids, v).map_or(o.to_owned(), |h| format!("uid={h}")),
                Some(("gid", v)) => map(gids, v).map_or(o.to_owned(), |h| format!("gid={h}")),
                _ => o.to_owned(),
            })
            .collect();
        Some(out.join(","))
    }
}

/// How a config mount is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bind,
    Cgroup,
    Fs,
}

fn kind_of(m: &Mount, o: &MountOptions) -> Kind {
    if o.bind || m.typ().as_deref() == Some("bind") {
        Kind::Bind
    } else if m.typ().as_deref() == Some("cgroup") || m.typ().as_deref() == Some("cgroup2") {
        Kind::Cgroup
    } else {
        Kind::Fs
    }
}

/// The host path of a bind mount's source.
pub fn bind_source(m: &Mount, bundle: &Path) -> PathBuf {
    let src = m.source().clone().unwrap_or_default();
    if src.is_absolute() {
        src
    } else {
        bundle.join(src)
    }
}

/// Where a bind source lies inside the container's rootfs: the rest of its path, to be
/// resolved in the rootfs like a destination (so that `..` and symlinks of the image
/// cannot reach host files), or `None` for a host path. The source's ancestors are
/// compared with the rootfs, shortest first, so the bundle's own path may go through
/// symlinks.
pub fn source_in_rootfs(source: &Path, rootfs: &Path) -> Option<PathBuf> {
    let rootfs = std::fs::canonicalize(rootfs).ok()?;
    let mut ancestors: Vec<&Path> = source.ancestors().collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|a| std::fs::canonicalize(a).is_ok_and(|c| c == rootfs))
        .and_then(|a| source.strip_prefix(a).ok())
        .map(Path::to_owned)
}

/// Opens a bind source that [`source_in_rootfs`] placed inside the rootfs, as O_PATH.
pub fn open_source_in_root(root: &Root, rel: &Path) -> io::Result<OwnedFd> {
    let rel = rel
        .to_str()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let rel = root.resolve(Path::new(rel))?;
    root.open_at(&rel, OFlags::PATH)
}

/// True when the mount is a bind mount (by option or type).
pub fn is_bind(m: &Mount) -> bool {
    let o = MountOptions::parse(m.options().as_deref().unwrap_or_default()).unwrap_or_default();
    kind_of(m, &o) == Kind::Bind
}

/// Mounts everything in `mounts`, in order. `detached[i]` may hold a mount tree prepared
/// by the runtime's parent for mount `i` (bind sources opened before entering a user
/// namespace, idmapped mounts).
pub fn mount_all(
    root: &Root,
    mounts: &[Mount],
    detached: &mut [Option<OwnedFd>],
    ctx: &MountContext<'_>,
) -> Result<(), MountError> {
    for (index, m) in mounts.iter().enumerate() {
        let tree = detached.get_mut(index).and_then(Option::take);
        mount_one(root, m, tree, ctx).map_err(|(op, source)| MountError {
            index,
            destination: m.destination().clone(),
            op,
            source,
        })?;
    }
    Ok(())
}

type OpResult<T> = Result<T, (String, io::Error)>;

fn op<T>(what: impl FnOnce() -> String, r: io::Result<T>) -> OpResult<T> {
    r.map_err(|e| (what(), e))
}

fn mount_one(
    root: &Root,
    m: &Mount,
    tree: Option<OwnedFd>,
    ctx: &MountContext<'_>,
) -> OpResult<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())
        .map_err(|e| ("parse options".to_owned(), io::Error::other(e)))?;
    let kind = kind_of(m, &opts);
    let dest = m.destination();
    match kind {
        Kind::Bind => {
            let source = bind_source(m, ctx.bundle);
            // A source inside the rootfs is opened there, never through the host's view.
            let in_root = match (&tree, source_in_rootfs(&source, root.path())) {
                (None, Some(rel)) => Some(op(
                    || format!("open bind source {} in the rootfs", source.display()),
                    open_source_in_root(root, &rel),
                )?),
                _ => None,
            };
            let is_dir = match tree.as_ref().or(in_root.as_ref()) {
                Some(fd) => rustix::fs::fstat(fd)
                    .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
                    .map_err(io::Error::from),
                None => std::fs::metadata(&source).map(|md| md.is_dir()),
            };
            let is_dir = op(|| format!("stat bind source {}", source.display()), is_dir)?;
            let create = if is_dir { Create::Dir } else { Create::File };
            let rel = op(
                || "create mount point".into(),
                root.create_all(dest, create),
            )?;
            match tree {
                Some(fd) => {
                    let target = op(|| "open mount point".into(), open_target(root, &rel))?;
                    op(
                        || "attach prepared bind mount".into(),
                        sys::move_mount_fd(fd.as_fd(), target.as_fd()),
                    )?;
                }
                None => {
                    let target = op(|| "open mount point".into(), open_target(root, &rel))?;
                    let mut flags = libc::MS_BIND;
                    if opts.recursive {
                        flags |= libc::MS_REC;
                    }
                    let src = match &in_root {
                        Some(fd) => sys::fd_path(fd.as_fd()),
                        None => op(
                            || "source path".into(),
                            CString::new(source.as_os_str().as_encoded_bytes())
                                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)),
                        )?,
                    };
                    op(
                        || format!("bind {}", source.display()),
                        sys::mount(Some(&src), &sys::fd_path(target.as_fd()), None, flags, None),
                    )?;
                }
            }
            if opts.needs_remount() {
                let flags = opts.flags & !(libc::MS_REC | libc::MS_REMOUNT);
                op(
                    || "remount with options".into(),
                    remount_bind(root, &rel, flags),
                )?;
            }
            finish(root, &rel, &opts)
        }
        Kind::Cgroup => {
            let rel = op(
                || "create mount point".into(),
                root.create_all(dest, Create::Dir),
            )?;
            cgroup::mount_cgroups(root, &rel, &opts, ctx)?;
            finish(root, &rel, &opts)
        }
        Kind::Fs => {
            let rel = op(
                || "create mount point".into(),
                root.create_all(dest, Create::Dir),
            )?;
            let fstype = m.typ().clone().unwrap_or_else(|| "none".into());
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fstype.clone());
            let flags = opts.flags & !libc::MS_REMOUNT;
            let preserved = if opts.tmpcopyup && fstype == "tmpfs" {
                Some(op(
                    || "open directory to copy up".into(),
                    root.open_at(&rel, OFlags::RDONLY | OFlags::DIRECTORY),
                )?)
            } else {
                None
            };
            let r = mount_fs(
                root,
                &rel,
                &source,
                &fstype,
                flags,
                ctx.host_data(opts.data_string()),
            );
            match r {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && fstype == "sysfs" => {
                    // No network namespace of our own (rootless, host network): bind the
                    // host's /sys instead, read-only all the way down if asked.
                    bind_host(root, &rel, "/sys", true)
                        .map_err(|e| ("bind /sys (sysfs not permitted)".to_owned(), e))?;
                    if flags & libc::MS_RDONLY != 0 {
                        let attr = sys::MountAttr {
                            attr_set: sys::attr::RDONLY,
                            ..Default::default()
                        };
                        op(
                            || "make /sys read-only".into(),
                            set_attr(root, &rel, &attr, true),
                        )?;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && fstype == "mqueue" => {
                    bind_host(root, &rel, "/dev/mqueue", false)
                        .map_err(|e| ("bind /dev/mqueue (mqueue not permitted)".to_owned(), e))?;
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL)
                        && fstype == "devpts"
                        && opts.data.iter().any(|d| d.starts_with("gid=")) =>
                {
                    // The gid (tty, 5) is not mapped in the user namespace: drop it.
                    let data: Vec<_> = opts
                        .data
                        .iter()
                        .filter(|d| !d.starts_with("gid="))
                        .cloned()
                        .collect();
                    let data = ctx.host_data((!data.is_empty()).then(|| data.join(",")));
                    op(
                        || "mount devpts".into(),
                        mount_fs(root, &rel, &source, &fstype, flags, data),
                    )?;
                }
                Err(e) => return Err((format!("mount {fstype}"), e)),
            }
            if let Some(old) = preserved {
                let new = op(
                    || "open new tmpfs".into(),
                    root.open_at(&rel, OFlags::RDONLY | OFlags::DIRECTORY),
                )?;
                op(
                    || "copy up into tmpfs".into(),
                    crate::copy::copy_dir(&old, &new),
                )?;
            }
            finish(root, &rel, &opts)
        }
    }
}

fn finish(root: &Root, rel: &str, opts: &MountOptions) -> OpResult<()> {
    for &p in &opts.propagation {
        let target = op(|| "open mount".into(), open_target(root, rel))?;
        op(
            || "set propagation".into(),
            sys::mount(None, &sys::fd_path(target.as_fd()), None, p, None),
        )?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let attr = sys::MountAttr {
            attr_set: opts.rec_set,
            attr_clr: opts.rec_clr,
            ..Default::default()
        };
        op(
            || "set recursive attributes".into(),
            set_attr(root, rel, &attr, true),
        )?;
    }
    Ok(())
}

/// Opens a resolved target for use as a mount point.
pub fn open_target(root: &Root, rel: &str) -> io::Result<OwnedFd> {
    root.open_at(rel, OFlags::PATH | OFlags::NOFOLLOW)
}

fn mount_fs(
    root: &Root,
    rel: &str,
    source: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<String>,
) -> io::Result<()> {
    let target = open_target(root, rel)?;
    let source = CString::new(source)?;
    let fstype = CString::new(fstype)?;
    let data = data.map(CString::new).transpose()?;
    sys::mount(
        Some(&source),
        &sys::fd_path(target.as_fd()),
        Some(&fstype),
        flags,
        data.as_deref(),
    )
}

fn bind_host(root: &Root, rel: &str, host: &str, recursive: bool) -> io::Result<()> {
    let target = open_target(root, rel)?;
    let src = CString::new(host)?;
    let mut flags = libc::MS_BIND;
    if recursive {
        flags |= libc::MS_REC;
    }
    sys::mount(Some(&src), &sys::fd_path(target.as_fd()), None, flags, None)
}

fn set_attr(root: &Root, rel: &str, attr: &sys::MountAttr, recursive: bool) -> io::Result<()> {
    let target = open_target(root, rel)?;
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    sys::mount_setattr(target.as_fd(), c"", flags, attr)
}

/// Flags of the mount at `fd` that a remount must keep when they are locked (mounts
/// inherited into a user namespace).
fn locked_flags(fd: &OwnedFd) -> io::Result<libc::c_ulong> {
    let st = rustix::fs::fstatvfs(fd)?;
    let f = st.f_flag.bits();
    let mut out = 0;
    for (st_flag, ms) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms;
        }
    }
    Ok(out)
}

/// Remounts the bind mount at `rel` with `flags`; when the kernel refuses because some
/// flags are locked, retries keeping them.
pub fn remount_bind(root: &Root, rel: &str, flags: libc::c_ulong) -> io::Result<()> {
    let target = open_target(root, rel)?;
    let path = sys::fd_path(target.as_fd());
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match sys::mount(None, &path, None, base | flags, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let locked = locked_flags(&target)?;
            // Keep the atime mode the mount already has unless one was asked for.
            let atime = libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
            let keep = if flags & atime != 0 {
                locked & !atime
            } else {
                locked
            };
            sys::mount(None, &path, None, base | flags | keep, None)
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_options_become_host_ids() {
        let m = |c: u32, h: u32, n: u32| -> LinuxIdMapping {
            serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n}))
                .unwrap()
        };
        let uids = [m(0, 100000, 65536)];
        let gids = [m(0, 200000, 10), m(10, 300000, 10)];
        let ctx = MountContext {
            bundle: Path::new("/"),
            userns: true,
            cgroupns: false,
            host_ids: Some((&uids, &gids)),
        };
        assert_eq!(
            ctx.host_data(Some("mode=620,gid=5,uid=0,ptmxmode=0666".into())),
            Some("mode=620,gid=200005,uid=100000,ptmxmode=0666".into())
        );
        assert_eq!(
            ctx.host_data(Some("gid=12,uid=70000".into())),
            Some("gid=300002,uid=70000".into()),
            "unmapped ids are left for the kernel to refuse"
        );
        assert_eq!(ctx.host_data(None), None);
        let plain = MountContext {
            host_ids: None,
            ..ctx
        };
        assert_eq!(plain.host_data(Some("gid=5".into())), Some("gid=5".into()));
    }

    #[test]
    fn sources_inside_the_rootfs_are_found() {
        let bundle = tempfile::tempdir().unwrap();
        let rootfs = bundle.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("data/abs")).unwrap();
        let alias = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(bundle.path(), alias.path().join("b")).unwrap();
        let cases = [
            (rootfs.join("data/abs"), Some("data/abs")),
            (rootfs.join("../../etc"), Some("../../etc")),
            (rootfs.join("data/../../x"), Some("data/../../x")),
            (alias.path().join("b/rootfs/data"), Some("data")),
            (rootfs.clone(), Some("")),
            (bundle.path().join("other"), None),
            (PathBuf::from("/etc"), None),
        ];
        for (source, want) in cases {
            assert_eq!(
                source_in_rootfs(&source, &rootfs),
                want.map(PathBuf::from),
                "{}",
                source.display()
            );
        }
    }

    #[test]
    fn sources_resolve_in_the_rootfs() {
        let bundle = tempfile::tempdir().unwrap();
        let rootfs = bundle.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/in-image"), "").unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc", rootfs.join("up")).unwrap();
        let root = Root::open(&rootfs).unwrap();
        for rel in ["abs", "up", "../../etc", "abs/../../etc"] {
            let fd = open_source_in_root(&root, Path::new(rel)).unwrap();
            let dir = rustix::fs::openat(
                &fd,
                "in-image",
                OFlags::PATH | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            );
            assert!(dir.is_ok(), "{rel} left the rootfs");
        }
    }
}

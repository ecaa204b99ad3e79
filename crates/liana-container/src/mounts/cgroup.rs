//! The `cgroup` mount type: what the container sees at /sys/fs/cgroup.
//!
//! Pure v2 hosts get one cgroup2 mount. v1 and hybrid hosts get a tmpfs with one
//! directory per hierarchy, as the host has (combined hierarchies like `cpu,cpuacct`
//! get their per-controller symlinks). With a private cgroup namespace each hierarchy is
//! mounted fresh (its root is the container's cgroup); without one, the container's own
//! cgroup directory is bind-mounted, as runc does.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use super::{op, open_target, remount_bind, MountContext, MountOptions, OpResult};
use crate::mountinfo::{self, CgroupEntry, MountInfo};
use crate::resolve::{Create, Root};
use crate::sys;

pub(super) fn mount_cgroups(
    root: &Root,
    rel: &str,
    opts: &MountOptions,
    ctx: &MountContext<'_>,
) -> OpResult<()> {
    let info = op(
        || "read /proc/self/mountinfo".into(),
        std::fs::read_to_string("/proc/self/mountinfo"),
    )?;
    let own = op(
        || "read /proc/self/cgroup".into(),
        std::fs::read_to_string("/proc/self/cgroup"),
    )?;
    let mounts = mountinfo::parse(&info);
    let own = mountinfo::parse_cgroup(&own);
    let hierarchies: Vec<&MountInfo> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .filter(|m| !m.mount_point.starts_with(root.path()))
        .collect();
    let flags = opts.flags & !(libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC);
    let pure_v2 = hierarchies.iter().all(|m| m.fstype == "cgroup2")
        && hierarchies
            .iter()
            .any(|m| m.mount_point == Path::new("/sys/fs/cgroup"));
    if pure_v2 || hierarchies.is_empty() {
        let host = hierarchies.first().copied();
        return mount_hierarchy(root, rel, host, &own, flags, ctx);
    }
    // v1 / hybrid: a tmpfs holding one mount per hierarchy.
    let target = op(|| "open mount point".into(), open_target(root, rel))?;
    op(
        || "mount tmpfs for cgroup hierarchies".into(),
        sys::mount(
            Some(c"tmpfs"),
            &sys::fd_path(target.as_fd()),
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"mode=755"),
        ),
    )?;
    let mut seen = std::collections::HashSet::new();
    for h in &hierarchies {
        let Some(parent) = h.mount_point.parent() else {
            continue;
        };
        if parent != Path::new("/sys/fs/cgroup") {
            continue;
        }
        let Some(name) = h.mount_point.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !seen.insert(name.to_owned()) {
            continue;
        }
        let sub = format!("{rel}/{name}");
        let sub = op(
            || format!("create {name}"),
            root.create_all(Path::new(&sub), Create::Dir),
        )?;
        mount_hierarchy(root, &sub, Some(h), &own, flags, ctx)?;
        if name.contains(',') {
            for part in name.split(',') {
                let parent = op(|| "open cgroup tmpfs".into(), open_target(root, rel))?;
                match rustix::fs::symlinkat(name, &parent, part) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err((format!("symlink {part}"), e.into())),
                }
            }
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        let target = op(|| "open mount point".into(), open_target(root, rel))?;
        op(
            || "remount cgroup tmpfs read-only".into(),
            sys::mount(
                None,
                &sys::fd_path(target.as_fd()),
                None,
                libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC,
                Some(c"mode=755"),
            ),
        )?;
    }
    Ok(())
}

/// The container's path in the hierarchy mounted as `h`.
fn own_path<'a>(h: &MountInfo, own: &'a [CgroupEntry]) -> Option<&'a str> {
    if h.fstype == "cgroup2" {
        return own
            .iter()
            .find(|e| e.hierarchy == 0)
            .map(|e| e.path.as_str());
    }
    let opts: Vec<&str> = h.super_options.split(',').collect();
    own.iter()
        .filter(|e| e.hierarchy != 0 && !e.controllers.is_empty())
        .find(|e| e.controllers.split(',').all(|c| opts.contains(&c)))
        .map(|e| e.path.as_str())
}

fn mount_hierarchy(
    root: &Root,
    rel: &str,
    host: Option<&MountInfo>,
    own: &[CgroupEntry],
    flags: libc::c_ulong,
    ctx: &MountContext<'_>,
) -> OpResult<()> {
    let fstype = host.map_or("cgroup2", |h| h.fstype.as_str());
    let data: Option<String> = host.filter(|h| h.fstype == "cgroup").map(|h| {
        h.super_options
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect::<Vec<_>>()
            .join(",")
    });
    if ctx.cgroupns || host.is_none() {
        let target = op(|| "open mount point".into(), open_target(root, rel))?;
        let fst = CString::new(fstype).expect("static");
        let data_c = data
            .as_deref()
            .map(|d| CString::new(d).expect("no NUL in options"));
        let r = sys::mount(
            Some(&fst),
            &sys::fd_path(target.as_fd()),
            Some(&fst),
            flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data_c.as_deref(),
        );
        match r {
            Ok(()) => return Ok(()),
            // A hierarchy that cannot be mounted here (e.g. a v1 controller inside a user
            // namespace): fall back to a bind of our own cgroup.
            Err(e) if host.is_some() && e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err((format!("mount {fstype}"), e)),
        }
    }
    let Some(h) = host else { return Ok(()) };
    let Some(path) = own_path(h, own) else {
        // Not a member of this hierarchy (e.g. a named one we do not use): leave it out.
        return Ok(());
    };
    // The cgroup path is relative to the hierarchy's root as mounted on the host.
    let rel_path = Path::new(path)
        .strip_prefix(&h.root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| {
            Path::new(path)
                .strip_prefix("/")
                .unwrap_or(Path::new(""))
                .into()
        });
    let source = h.mount_point.join(rel_path);
    let target = op(|| "open mount point".into(), open_target(root, rel))?;
    let src = CString::new(source.as_os_str().as_encoded_bytes()).map_err(|_| {
        (
            "cgroup path".to_owned(),
            io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;
    op(
        || format!("bind {}", source.display()),
        sys::mount(
            Some(&src),
            &sys::fd_path(target.as_fd()),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ),
    )?;
    op(
        || format!("remount {}", source.display()),
        remount_bind(
            root,
            rel,
            flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        ),
    )
}

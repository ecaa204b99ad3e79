//! Linux namespaces: which to create, which to join, and entering them in the right
//! order (join by path first, user namespace before the others, then unshare the new
//! ones so they are owned by the container's user namespace).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// A namespace that could not be opened or entered.
#[derive(Debug, thiserror::Error)]
#[error("{op} {kind} namespace{}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct NamespaceError {
    /// Namespace type (as in config.json).
    pub kind: String,
    /// Path, when joining.
    pub path: Option<PathBuf>,
    /// What failed.
    pub op: &'static str,
    /// Cause.
    #[source]
    pub source: io::Error,
}

/// The clone flag of a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The config.json name of a namespace type.
pub fn spec_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The /proc/PID/ns file name of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Every namespace type, in the order runc joins them (user first).
pub const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
];

/// What the set-up stages do with namespaces, prepared before fork.
#[derive(Debug, Default)]
pub struct Plan {
    /// Namespaces to join, user first, with their open fds.
    pub join: Vec<(LinuxNamespaceType, PathBuf, OwnedFd)>,
    /// Create a new user namespace.
    pub new_user: bool,
    /// Flags for unshare(2) after the user namespace (excluding CLONE_NEWUSER).
    pub unshare: libc::c_int,
    /// The init must be a fresh child: a pid or time namespace was created or joined.
    pub fork_init: bool,
}

impl Plan {
    /// Opens every namespace path (errors name the namespace and the path).
    pub fn new(namespaces: &[LinuxNamespace]) -> Result<Self, NamespaceError> {
        let mut plan = Self::default();
        for t in ALL {
            let Some(ns) = namespaces.iter().find(|n| n.typ() == t) else {
                continue;
            };
            match ns.path() {
                Some(path) => {
                    let fd = rustix::fs::open(
                        path,
                        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    )
                    .map_err(|e| NamespaceError {
                        kind: spec_name(t).into(),
                        path: Some(path.clone()),
                        op: "open",
                        source: e.into(),
                    })?;
                    if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                        plan.fork_init = true;
                    }
                    plan.join.push((t, path.clone(), fd));
                }
                None if t == LinuxNamespaceType::User => plan.new_user = true,
                None => {
                    plan.unshare |= clone_flag(t);
                    if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                        plan.fork_init = true;
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Joins the namespaces given by path (in the calling process). An unprivileged
    /// runtime joins the user namespace first, for the capabilities it needs to join the
    /// others; a privileged one joins it last, so that it can still join namespaces the
    /// user namespace does not own (a container's pid namespace may belong to the
    /// runtime's user namespace, see `process::bootstrap`).
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        let privileged = rustix::process::geteuid().is_root();
        let mut order: Vec<&(LinuxNamespaceType, PathBuf, OwnedFd)> = self.join.iter().collect();
        if privileged {
            order.sort_by_key(|(t, _, _)| *t == LinuxNamespaceType::User);
        }
        for (t, path, fd) in order {
            setns(fd, clone_flag(*t)).map_err(|source| NamespaceError {
                kind: spec_name(*t).into(),
                path: Some(path.clone()),
                op: "join",
                source,
            })?;
        }
        Ok(())
    }

    /// Creates the new namespaces other than the user namespace.
    pub fn unshare_rest(&self) -> Result<(), NamespaceError> {
        self.unshare_only(self.unshare)
    }

    /// Creates those of the new namespaces (other than the user namespace) in `flags`.
    pub fn unshare_only(&self, flags: libc::c_int) -> Result<(), NamespaceError> {
        let flags = self.unshare & flags;
        if flags == 0 {
            return Ok(());
        }
        unshare(flags).map_err(|source| NamespaceError {
            kind: describe(flags),
            path: None,
            op: "create",
            source,
        })
    }

    /// The types of the new namespaces other than the user namespace, in join order.
    pub fn new_types(&self) -> Vec<LinuxNamespaceType> {
        ALL.iter()
            .copied()
            .filter(|t| *t != LinuxNamespaceType::User && self.unshare & clone_flag(*t) != 0)
            .collect()
    }
}

fn describe(flags: libc::c_int) -> String {
    ALL.iter()
        .filter(|t| flags & clone_flag(**t) != 0)
        .map(|t| spec_name(*t))
        .collect::<Vec<_>>()
        .join("+")
}

/// setns(2).
pub fn setns(fd: &OwnedFd, flag: libc::c_int) -> io::Result<()> {
    // SAFETY: setns takes an fd and a flag; the fd is valid for the call.
    let r = unsafe { libc::setns(fd.as_fd().as_raw_fd(), flag) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// unshare(2).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes plain flags.
    let r = unsafe { libc::unshare(flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

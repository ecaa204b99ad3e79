//! User namespace id mappings.
//!
//! The runtime's parent writes the container's uid_map and gid_map once the bootstrap
//! stage has created its user namespace. Root writes any mapping directly; an
//! unprivileged user writes a single mapping of its own ids directly (after denying
//! setgroups, as the kernel requires) and goes through newuidmap/newgidmap (Debian's
//! `uidmap`, reading /etc/subuid and /etc/subgid) for anything else.

use std::fmt::Write as _;
use std::io;
use std::os::fd::OwnedFd;
use std::process::Command;

use oci_spec::runtime::LinuxIdMapping;

/// Whether the calling process runs in a user namespace other than the initial one (its
/// uid_map is not the identity of all ids), as under rootless podman, which runs the
/// runtime as uid 0 in the user's namespace without asking for a new one.
pub fn in_non_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| is_non_initial(&m))
        .unwrap_or(false)
}

fn is_non_initial(uid_map: &str) -> bool {
    uid_map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// A mapping that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum UserNsError {
    /// Writing /proc/PID/{uid,gid}_map or setgroups failed.
    #[error("write /proc/{pid}/{file}")]
    Write {
        /// Target process.
        pid: i32,
        /// uid_map, gid_map or setgroups.
        file: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// newuidmap/newgidmap could not run.
    #[error("run {tool} (from Debian's uidmap package) for a multi-range mapping")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// newuidmap/newgidmap refused.
    #[error("{tool} failed: {stderr}")]
    Helper {
        /// The tool.
        tool: &'static str,
        /// What it said.
        stderr: String,
    },
    /// A helper user namespace for an idmapped mount could not be made.
    #[error("create a user namespace for an idmapped mount")]
    Helper2(#[source] io::Error),
}

/// Formats mappings as uid_map lines (`container host size`).
pub fn format(maps: &[LinuxIdMapping]) -> String {
    let mut s = String::new();
    for m in maps {
        let _ = writeln!(s, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    s
}

/// Writes the container's mappings for process `pid`.
pub fn write_mappings(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), UserNsError> {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let privileged = euid == 0;
    let own_single = |maps: &[LinuxIdMapping], id: u32| {
        maps.len() == 1 && maps[0].host_id() == id && maps[0].size() == 1
    };
    if privileged || own_single(uids, euid) {
        write_proc(pid, "uid_map", &format(uids))?;
    } else {
        run_helper("newuidmap", pid, uids)?;
    }
    if privileged {
        write_proc(pid, "gid_map", &format(gids))?;
    } else if own_single(gids, egid) {
        write_proc(pid, "setgroups", "deny")?;
        write_proc(pid, "gid_map", &format(gids))?;
    } else {
        run_helper("newgidmap", pid, gids)?;
    }
    Ok(())
}

fn write_proc(pid: i32, file: &'static str, text: &str) -> Result<(), UserNsError> {
    std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|source| UserNsError::Write {
        pid,
        file,
        source,
    })
}

fn run_helper(tool: &'static str, pid: i32, maps: &[LinuxIdMapping]) -> Result<(), UserNsError> {
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.arg(m.container_id().to_string())
            .arg(m.host_id().to_string())
            .arg(m.size().to_string());
    }
    let out = cmd
        .output()
        .map_err(|source| UserNsError::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(UserNsError::Helper {
            tool,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Makes a user namespace with the given uid_map/gid_map text and returns its fd; used
/// as the idmapping of an idmapped mount. The process that held it is gone on return.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<OwnedFd, UserNsError> {
    // SAFETY: a raw clone without CLONE_VM behaves like fork; the child only calls
    // async-signal-safe functions (prctl, pause, _exit).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(UserNsError::Helper2(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: child of a fork: only async-signal-safe calls until it is killed.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            loop {
                libc::pause();
            }
        }
    }
    let pid = pid as i32;
    let result = (|| {
        write_proc(pid, "uid_map", uid_map)?;
        write_proc(pid, "gid_map", gid_map)?;
        let fd = rustix::fs::open(
            format!("/proc/{pid}/ns/user"),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| UserNsError::Helper2(e.into()))?;
        Ok(fd)
    })();
    // SAFETY: kill and waitpid on the child we just created.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_userns_is_the_full_identity_map() {
        assert!(!is_non_initial("         0          0 4294967295\n"));
        assert!(is_non_initial(
            "         0       1001          1\n         1     100000      65536\n"
        ));
        assert!(is_non_initial("0 0 65536\n"));
    }

    #[test]
    fn formats_lines() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 1000, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536}
        ]))
        .unwrap();
        assert_eq!(format(&maps), "0 1000 1\n1 100000 65536\n");
    }
}

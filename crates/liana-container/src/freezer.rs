//! Facts about a container's processes that do not need its cgroup manager: whether the
//! init sits in a frozen cgroup, thawing it, and the processes of its pid namespace.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::mountinfo;

fn cgroup_dirs(pid: i32) -> Vec<(String, PathBuf)> {
    let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mounts = mountinfo::parse(&mi);
    let mut out = Vec::new();
    for e in mountinfo::parse_cgroup(&cg) {
        let m = if e.hierarchy == 0 {
            mounts.iter().find(|m| m.fstype == "cgroup2")
        } else if e.controllers.split(',').any(|c| c == "freezer") {
            mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "freezer")
            })
        } else {
            None
        };
        if let Some(m) = m {
            let rel = std::path::Path::new(&e.path)
                .strip_prefix(&m.root)
                .map(|p| p.to_path_buf())
                .unwrap_or_default();
            let kind = if e.hierarchy == 0 { "v2" } else { "v1" };
            out.push((kind.to_owned(), m.mount_point.join(rel)));
        }
    }
    out
}

/// True when `pid` is in a frozen cgroup (v1 freezer or v2 cgroup.freeze).
pub fn is_frozen(pid: i32) -> bool {
    cgroup_dirs(pid).iter().any(|(kind, dir)| {
        if kind == "v1" {
            std::fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN" || s.trim() == "FREEZING")
        } else {
            std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        }
    })
}

/// Thaws whatever cgroup keeps `pid` frozen (so a SIGKILL can take effect).
pub fn thaw_pid(pid: i32) {
    for (kind, dir) in cgroup_dirs(pid) {
        let r = if kind == "v1" {
            std::fs::write(dir.join("freezer.state"), "THAWED")
        } else {
            std::fs::write(dir.join("cgroup.freeze"), "0")
        };
        if let Err(e) = r {
            tracing::debug!("thaw {}: {e}", dir.display());
        }
    }
}

/// The processes of the container whose init is `init`: every process in the init's pid
/// namespace when it has its own, else just the init.
pub fn container_pids(init: i32) -> Vec<i32> {
    let ns = |pid: i32| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .map(|m| m.ino())
            .ok()
    };
    let (Some(theirs), Some(ours)) = (ns(init), ns(std::process::id() as i32)) else {
        return vec![init];
    };
    if theirs == ours {
        return vec![init];
    }
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![init];
    };
    let mut pids: Vec<i32> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&p: &i32| ns(p) == Some(theirs))
        .collect();
    pids.sort();
    pids
}

//! Detection of the cgroup hierarchies mounted on this host (v1, v2 or hybrid).
//!
//! Nothing is hard-coded: the hierarchies come from `/proc/self/mountinfo` and
//! our own cgroup in each from `/proc/self/cgroup`. Both files are read once
//! per command (plus the unified root's `cgroup.controllers`), and the paths are
//! parameters so tests feed fixtures.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The cgroup v1 controllers the kernel knows; any other super option of a
/// `cgroup` mount (`rw`, `noprefix`, `xattr`, `release_agent=...`) is ignored.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// Errors of hierarchy detection.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A proc file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line of `/proc/self/mountinfo` is malformed.
    #[error("malformed mountinfo line {line:?}")]
    Mountinfo {
        /// The line.
        line: String,
    },
    /// A line of `/proc/self/cgroup` is malformed.
    #[error("malformed /proc/self/cgroup line {line:?}")]
    ProcCgroup {
        /// The line.
        line: String,
    },
    /// No cgroup filesystem is mounted at all.
    #[error("no cgroup filesystem is mounted")]
    NoCgroupMount,
    /// A mounted hierarchy has no entry in `/proc/self/cgroup`.
    #[error("hierarchy {name} mounted at {} has no entry in /proc/self/cgroup", mountpoint.display())]
    NoOwnCgroup {
        /// The hierarchy's name (`cpu,cpuacct`, `name=systemd` or `unified`).
        name: String,
        /// Where it is mounted.
        mountpoint: PathBuf,
    },
}

/// The layout of cgroups on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 controllers plus a unified hierarchy (systemd's "hybrid" layout).
    Hybrid,
}

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Hierarchy {
    /// Controllers bound to it, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mountpoint: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4), usually `/`.
    pub root: String,
    /// Our own cgroup in it, from `/proc/self/cgroup`.
    pub own_path: String,
}

/// The mounted cgroup v2 (unified) hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedHierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.
    pub mountpoint: PathBuf,
    /// The mount's root inside the hierarchy.
    pub root: String,
    /// Our own cgroup in it (the `0::` line of `/proc/self/cgroup`).
    pub own_path: String,
    /// Controllers offered at the mount root (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy of this host and our place in each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSetup {
    /// The v1 hierarchies, in mountinfo order.
    pub v1: Vec<V1Hierarchy>,
    /// The unified hierarchy, if mounted.
    pub unified: Option<UnifiedHierarchy>,
}

impl CgroupSetup {
    /// Detects the hierarchies of the calling process from `/proc/self`.
    pub fn detect() -> Result<Self, DetectError> {
        Self::detect_from(
            Path::new("/proc/self/mountinfo"),
            Path::new("/proc/self/cgroup"),
        )
    }

    /// Detects the hierarchies from the given `mountinfo` and `cgroup` files,
    /// then reads `cgroup.controllers` at the unified mount root.
    pub fn detect_from(mountinfo: &Path, proc_cgroup: &Path) -> Result<Self, DetectError> {
        let read = |p: &Path| {
            fs::read_to_string(p).map_err(|source| DetectError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let mut setup = Self::parse(&read(mountinfo)?, &read(proc_cgroup)?)?;
        if let Some(unified) = &mut setup.unified {
            let file = unified.mountpoint.join("cgroup.controllers");
            unified.controllers = read(&file)?.split_whitespace().map(str::to_owned).collect();
        }
        Ok(setup)
    }

    /// Parses the content of `mountinfo` and `/proc/self/cgroup`. The unified
    /// hierarchy's `controllers` is left empty (it lives in cgroupfs).
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Self, DetectError> {
        let own = parse_proc_cgroup(proc_cgroup)?;
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<UnifiedHierarchy> = None;
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        for line in mountinfo.lines().filter(|l| !l.trim().is_empty()) {
            let Some(mount) = parse_mountinfo_line(line)? else {
                continue;
            };
            match mount.fstype {
                "cgroup2" => {
                    if unified.is_some() {
                        continue;
                    }
                    let own_path = own
                        .iter()
                        .find(|(id, ctrls, _)| *id == "0" && ctrls.is_empty())
                        .map(|(_, _, p)| p.clone())
                        .ok_or_else(|| DetectError::NoOwnCgroup {
                            name: "unified".into(),
                            mountpoint: mount.mountpoint.clone(),
                        })?;
                    unified = Some(UnifiedHierarchy {
                        mountpoint: mount.mountpoint,
                        root: mount.root,
                        own_path,
                        controllers: Vec::new(),
                    });
                }
                "cgroup" => {
                    let controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() || !seen.insert(sorted(&controllers)) {
                        continue;
                    }
                    let own_path = own
                        .iter()
                        .find(|(_, ctrls, _)| ctrls.iter().any(|c| controllers.contains(c)))
                        .map(|(_, _, p)| p.clone())
                        .ok_or_else(|| DetectError::NoOwnCgroup {
                            name: controllers.join(","),
                            mountpoint: mount.mountpoint.clone(),
                        })?;
                    v1.push(V1Hierarchy {
                        controllers,
                        mountpoint: mount.mountpoint,
                        root: mount.root,
                        own_path,
                    });
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(DetectError::NoCgroupMount);
        }
        Ok(CgroupSetup { v1, unified })
    }

    /// Whether this host is v1, v2 or hybrid.
    pub fn mode(&self) -> Mode {
        // A unified mount with v1 controllers beside it is hybrid, even when the
        // only v1 hierarchy is a named one such as name=systemd.
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => Mode::V2,
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::V1,
        }
    }

    /// The v1 hierarchy carrying `controller` (`memory`, `name=systemd`...).
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

struct MountLine<'a> {
    root: String,
    mountpoint: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// Returns `None` for lines that cannot be cgroup mounts.
fn parse_mountinfo_line(line: &str) -> Result<Option<MountLine<'_>>, DetectError> {
    let bad = || DetectError::Mountinfo { line: line.into() };
    let (left, right) = line.split_once(" - ").ok_or_else(bad)?;
    let mut right_fields = right.split(' ');
    let fstype = right_fields.next().ok_or_else(bad)?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        return Ok(None);
    }
    let _source = right_fields.next().ok_or_else(bad)?;
    let super_options = right_fields.next().unwrap_or("");
    let mut left_fields = left.split(' ');
    let root = left_fields.nth(3).ok_or_else(bad)?;
    let mountpoint = left_fields.next().ok_or_else(bad)?;
    Ok(Some(MountLine {
        root: unescape_octal(root),
        mountpoint: PathBuf::from(unescape_octal(mountpoint)),
        fstype,
        super_options,
    }))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type OwnEntry = (String, Vec<String>, String);

fn parse_proc_cgroup(content: &str) -> Result<Vec<OwnEntry>, DetectError> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(DetectError::ProcCgroup { line: line.into() });
            };
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Ok((id.to_owned(), ctrls, path.to_owned()))
        })
        .collect()
}

/// Joins `rel` (absolute or relative, already cleaned) below `base`.
pub(crate) fn join_below(base: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// The host directory of cgroup `path` (as seen in `/proc/self/cgroup`) in a
/// hierarchy mounted at `mountpoint` whose mount root is `root`.
pub(crate) fn host_dir(mountpoint: &Path, root: &str, path: &str) -> PathBuf {
    let rel = if root == "/" {
        path
    } else if let Some(rest) = path.strip_prefix(root) {
        if rest.is_empty() || rest.starts_with('/') {
            rest
        } else {
            path
        }
    } else {
        // Our cgroup is outside the mounted subtree (a cgroup namespace moved
        // us); the path is then relative to the namespace root, i.e. the mount.
        path
    };
    join_below(mountpoint, rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /mnt/other\\040memory rw,relatime - cgroup cgroup rw,memory
";
    pub(crate) const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn parses_hybrid() {
        let s = CgroupSetup::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(s.mode(), Mode::Hybrid);
        assert_eq!(s.v1.len(), 4, "the second memory mount is a duplicate");
        let mem = s.v1_hierarchy("memory").unwrap();
        assert_eq!(mem.mountpoint, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own_path, "/process_api/abc");
        let sd = s.v1_hierarchy("name=systemd").unwrap();
        assert_eq!(sd.controllers, vec!["name=systemd".to_string()]);
        let u = s.unified.as_ref().unwrap();
        assert_eq!(u.mountpoint, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(u.own_path, "/");
    }

    #[test]
    fn parses_v1_combined_and_v2() {
        let mi = "25 20 0:21 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let s = CgroupSetup::parse(mi, "3:cpu,cpuacct:/user\n").unwrap();
        assert_eq!(s.mode(), Mode::V1);
        assert_eq!(s.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(s.v1_hierarchy("cpuacct").unwrap().own_path, "/user");

        let mi = "30 20 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let s = CgroupSetup::parse(mi, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(s.mode(), Mode::V2);
        assert_eq!(
            s.unified.unwrap().own_path,
            "/user.slice/session-1.scope".to_string()
        );
    }

    #[test]
    fn rejects_missing_mounts_and_bad_lines() {
        assert!(matches!(
            CgroupSetup::parse("1 2 0:1 / / rw - ext4 /dev/sda rw\n", "0::/\n"),
            Err(DetectError::NoCgroupMount)
        ));
        assert!(matches!(
            CgroupSetup::parse("garbage\n", "0::/\n"),
            Err(DetectError::Mountinfo { .. })
        ));
        assert!(matches!(
            CgroupSetup::parse("", "nocolon\n"),
            Err(DetectError::ProcCgroup { .. })
        ));
        let mi = "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(matches!(
            CgroupSetup::parse(mi, "1:cpu:/\n"),
            Err(DetectError::NoOwnCgroup { .. })
        ));
    }

    #[test]
    fn unescapes_mountpoints() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/trail\\04"), "/trail\\04");
    }

    #[test]
    fn host_dir_strips_mount_root() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(host_dir(mp, "/", "/a/b"), mp.join("a/b"));
        assert_eq!(host_dir(mp, "/docker/x", "/docker/x/sub"), mp.join("sub"));
        assert_eq!(host_dir(mp, "/docker/x", "/docker/x"), mp.to_path_buf());
        assert_eq!(
            host_dir(mp, "/docker/x", "/docker/xy"),
            mp.join("docker/xy")
        );
        assert_eq!(host_dir(mp, "/", "/"), mp.to_path_buf());
    }

    #[test]
    fn detect_from_reads_unified_controllers() {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("cg");
        fs::create_dir(&mnt).unwrap();
        fs::write(mnt.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mi = dir.path().join("mountinfo");
        fs::write(
            &mi,
            format!("30 20 0:26 / {} rw - cgroup2 cgroup2 rw\n", mnt.display()),
        )
        .unwrap();
        let pc = dir.path().join("cgroup");
        fs::write(&pc, "0::/\n").unwrap();
        let s = CgroupSetup::detect_from(&mi, &pc).unwrap();
        assert_eq!(
            s.unified.unwrap().controllers,
            vec!["cpu", "memory", "pids"]
        );
    }
}

//! `top`: the container's processes as a ps-style table (podman's default columns:
//! USER PID PPID %CPU ELAPSED TTY TIME COMMAND).

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::{Container, Status};

/// The cgroup manager of a container (when the engine gives containers cgroups).
pub(crate) fn cgroup_of(e: &Engine, c: &Container) -> Option<liana_cgroups::Manager> {
    if !e.cgroups_usable() {
        return None;
    }
    let setup = liana_cgroups::CgroupSetup::detect().ok()?;
    let path = format!("/liana/{}", c.id);
    liana_cgroups::Manager::new(
        &setup,
        &liana_cgroups::ManagerConfig::new(&c.id, Some(&path)),
    )
    .ok()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn uptime_secs() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

fn hms(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h >= 24 {
        format!("{}-{:02}:{:02}:{:02}", h / 24, h % 24, m, s)
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn user_name(uid: u32, passwd: Option<&str>) -> String {
    passwd
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// The uid as the process's user namespace sees it (its uid_map read from the host
/// gives inside, outside, count).
fn inside_uid(pid: i32, host: u32) -> u32 {
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
    for l in map.lines() {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, count] = v[..] {
            let h = u64::from(host);
            if h >= outside && h < outside + count {
                return (inside + h - outside) as u32;
            }
        }
    }
    host
}

/// One row for a process.
fn row(pid: i32, passwd: Option<&str>) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // fields after the command: state(0) ppid(1) ... tty_nr(4) utime(11) stime(12) starttime(19)
    let ppid: i32 = f.get(1)?.parse().ok()?;
    let tty_nr: u32 = f.get(4)?.parse().ok()?;
    let cpu = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let hz = clock_ticks();
    let elapsed = (uptime_secs() - start as f64 / hz as f64).max(0.0);
    let cpu_secs = cpu as f64 / hz as f64;
    let pcpu = if elapsed > 0.0 {
        cpu_secs / elapsed * 100.0
    } else {
        0.0
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let host_uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let uid = inside_uid(pid, host_uid);
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut cmd = String::from_utf8_lossy(&cmd)
        .replace('\0', " ")
        .trim()
        .to_string();
    if cmd.is_empty() {
        cmd = format!("[{}]", &stat[stat.find('(')? + 1..close]);
    }
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        if major == 136 {
            format!("pts/{minor}")
        } else {
            format!("{major}:{minor}")
        }
    };
    Some(vec![
        user_name(uid, passwd),
        pid.to_string(),
        ppid.to_string(),
        format!("{pcpu:.3}"),
        hms(elapsed as u64),
        tty,
        hms(cpu_secs as u64),
        cmd,
    ])
}

/// The column titles.
pub const HEADER: [&str; 8] = [
    "USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND",
];

impl Engine {
    /// Host pids of a running container's processes.
    pub fn container_pids(&self, c: &Container) -> Vec<i32> {
        if let Some(m) = cgroup_of(self, c) {
            if let Ok(p) = m.pids() {
                if !p.is_empty() {
                    return p;
                }
            }
        }
        let mut p = liana_container::freezer::container_pids(c.state.pid);
        if p.len() <= 1 {
            // The host's pid namespace: the init and its descendants.
            p = descendants(c.state.pid);
        }
        p
    }

    /// `top`: rows of the table (without the header).
    pub fn top(&self, needle: &str) -> Result<Vec<Vec<String>>> {
        let c = self.lookup(needle)?;
        let status = c.observe(&self.paths).0;
        if status != Status::Running {
            return Err(Error::InvalidState {
                id: c.id.clone(),
                status,
                what: "top needs a running container",
            });
        }
        let passwd = crate::spec::process::read_in_root(&self.rootfs_path(&c), "/etc/passwd");
        Ok(self
            .container_pids(&c)
            .into_iter()
            .filter_map(|p| row(p, passwd.as_deref()))
            .collect())
    }
}

/// `pid` and every process below it.
fn descendants(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let children =
                    std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(
                    children
                        .split_whitespace()
                        .filter_map(|x| x.parse::<i32>().ok()),
                );
            }
        }
        i += 1;
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(hms(3661), "01:01:01");
        assert_eq!(hms(90000), "1-01:00:00");
        let me = row(std::process::id() as i32, None).unwrap();
        assert_eq!(me.len(), HEADER.len());
        assert_eq!(me[1], std::process::id().to_string());
    }
}

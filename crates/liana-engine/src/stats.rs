//! `stats`: CPU, memory and pids of running containers from their cgroups (or, without
//! cgroups, summed over their processes from /proc).

use std::time::Instant;

use crate::engine::Engine;
use crate::record::{Container, Status};

/// One reading.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Container id.
    pub id: String,
    /// Name.
    pub name: String,
    /// CPU time used so far, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, bytes.
    pub mem_usage: u64,
    /// Memory limit (the host's memory when unlimited), bytes.
    pub mem_limit: u64,
    /// Number of tasks.
    pub pids: u64,
    /// When it was taken.
    pub at: Instant,
}

/// The host's memory, bytes.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|x| x.parse::<u64>().ok())
                })
        })
        .map_or(0, |kb| kb * 1024)
}

fn proc_sample(pids: &[i32]) -> (u64, u64) {
    // SAFETY: sysconf takes integers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut cpu = 0;
    let mut rss = 0;
    for p in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(close) = stat.rfind(')') {
                let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
                let t: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0)
                    + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
                cpu += t * 1_000_000_000 / hz;
                rss += f.get(21).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * page;
            }
        }
    }
    (cpu, rss)
}

impl Engine {
    /// A reading for a running container.
    pub fn sample(&self, c: &Container) -> Option<Sample> {
        if c.observe(&self.paths).0 != Status::Running {
            return None;
        }
        let host = host_memory();
        let at = Instant::now();
        if let Some(st) = crate::top::cgroup_of(self, c).and_then(|m| m.stats().ok()) {
            let limit = st.memory.usage.limit;
            return Some(Sample {
                id: c.id.clone(),
                name: c.name.clone(),
                cpu_ns: st.cpu.usage.total,
                mem_usage: st
                    .memory
                    .usage
                    .usage
                    .saturating_sub(st.memory.cache.min(st.memory.usage.usage / 2)),
                mem_limit: if limit == 0 || limit > host {
                    host
                } else {
                    limit
                },
                pids: st.pids.current,
                at,
            });
        }
        let pids = self.container_pids(c);
        let (cpu_ns, rss) = proc_sample(&pids);
        Some(Sample {
            id: c.id.clone(),
            name: c.name.clone(),
            cpu_ns,
            mem_usage: rss,
            mem_limit: host,
            pids: pids.len() as u64,
            at,
        })
    }
}

//! The verbs that act on a running container's cgroup: pause, resume, ps, update,
//! events.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxPids, LinuxResources, Spec};

use super::{container_pids, manager_of, status_of, Runtime};
use crate::config;
use crate::error::{Error, Result};
use crate::state::{self, ContainerDir, Saved, Status};

/// `ps` output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsFormat {
    /// ps(1)'s table, filtered to the container.
    Table,
    /// A JSON array of pids.
    Json,
}

/// Resource changes of `update` (runc's flags); `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// `--resources FILE` content (JSON linux.resources), applied first.
    pub resources_json: Option<Vec<u8>>,
    /// `--blkio-weight`.
    pub blkio_weight: Option<u16>,
    /// `--cpu-period`.
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`.
    pub cpu_quota: Option<i64>,
    /// `--cpu-rt-period`.
    pub cpu_rt_period: Option<u64>,
    /// `--cpu-rt-runtime`.
    pub cpu_rt_runtime: Option<i64>,
    /// `--cpu-share`.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--memory` (bytes, or with k/m/g suffix).
    pub memory: Option<String>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<String>,
    /// `--memory-swap` (-1: unlimited).
    pub memory_swap: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
}

/// Parses a size like runc's flags take: `1024`, `64k`, `128M`, `1g`, `2GiB`, `-1`.
pub fn parse_size(s: &str) -> Option<i64> {
    let t = s.trim();
    if t == "-1" {
        return Some(-1);
    }
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((value * mult) as i64)
}

fn size_flag(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| parse_size(s).ok_or_else(|| Error::Invalid(format!("--{name} {s:?}: not a size"))))
        .transpose()
}

impl UpdateRequest {
    /// Applies the request on top of `current`.
    pub fn apply_to(&self, current: &LinuxResources) -> Result<LinuxResources> {
        let mut r = match &self.resources_json {
            Some(bytes) => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
                    .map_err(|e| {
                    Error::Invalid(format!("--resources: field `{}`: {}", e.path(), e.inner()))
                })?
            }
            None => current.clone(),
        };
        let mut mem = (*r.memory()).unwrap_or_default();
        let mut mem_set = false;
        if let Some(v) = size_flag("memory", &self.memory)? {
            mem.set_limit(Some(v));
            mem_set = true;
        }
        if let Some(v) = size_flag("memory-reservation", &self.memory_reservation)? {
            mem.set_reservation(Some(v));
            mem_set = true;
        }
        if let Some(v) = size_flag("memory-swap", &self.memory_swap)? {
            mem.set_swap(Some(v));
            mem_set = true;
        }
        if mem_set {
            r.set_memory(Some(mem));
        }
        let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
        let mut cpu_set = false;
        if let Some(v) = self.cpu_period {
            cpu.set_period(Some(v));
            cpu_set = true;
        }
        if let Some(v) = self.cpu_quota {
            cpu.set_quota(Some(v));
            cpu_set = true;
        }
        if let Some(v) = self.cpu_rt_period {
            cpu.set_realtime_period(Some(v));
            cpu_set = true;
        }
        if let Some(v) = self.cpu_rt_runtime {
            cpu.set_realtime_runtime(Some(v));
            cpu_set = true;
        }
        if let Some(v) = self.cpu_shares {
            cpu.set_shares(Some(v));
            cpu_set = true;
        }
        if let Some(v) = &self.cpuset_cpus {
            cpu.set_cpus(Some(v.clone()));
            cpu_set = true;
        }
        if let Some(v) = &self.cpuset_mems {
            cpu.set_mems(Some(v.clone()));
            cpu_set = true;
        }
        if cpu_set {
            r.set_cpu(Some(cpu));
        }
        if let Some(v) = self.pids_limit {
            let mut p: LinuxPids = (*r.pids()).unwrap_or_default();
            p.set_limit(v);
            r.set_pids(Some(p));
        }
        if let Some(w) = self.blkio_weight {
            let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
            b.set_weight(Some(w));
            r.set_block_io(Some(b));
        }
        Ok(r)
    }
}

fn load_spec(dir: &ContainerDir) -> Result<Spec> {
    let path = dir.file(state::CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(Error::sys(format!("read {}", path.display())))?;
    Ok(config::parse(&path, &bytes)?)
}

impl Runtime {
    fn running_manager(
        &self,
        id: &str,
        allowed: &[Status],
        op: &'static str,
    ) -> Result<(ContainerDir, Saved, liana_cgroups::Manager)> {
        let id = self.id(id)?;
        let (dir, saved) = self.open(&id)?;
        let status = status_of(&dir, &saved, true);
        if !allowed.contains(&status) {
            return Err(Error::InvalidState {
                id: id.to_string(),
                status,
                op,
            });
        }
        let m = manager_of(&saved)
            .filter(|m| m.exists())
            .ok_or_else(|| Error::Invalid(format!("container {id} has no cgroup to {op}")))?;
        Ok((dir, saved, m))
    }

    /// `pause`: freezes every process of the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let (_d, _s, m) =
            self.running_manager(id, &[Status::Running, Status::Created], "pause it")?;
        Ok(m.freeze()?)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let (_d, _s, m) = self.running_manager(id, &[Status::Paused], "resume it")?;
        Ok(m.thaw()?)
    }

    /// `update`: changes the resources of a running container and records them.
    pub fn update(&self, id: &str, req: &UpdateRequest) -> Result<()> {
        let (dir, _saved, m) = self.running_manager(
            id,
            &[Status::Running, Status::Paused, Status::Created],
            "update it",
        )?;
        let mut spec = load_spec(&dir)?;
        let mut linux = spec.linux().clone().unwrap_or_default();
        let current = linux.resources().clone().unwrap_or_default();
        let mut new = req.apply_to(&current)?;
        // Device rules are fixed at create: never resend them on update.
        new.set_devices(current.devices().clone());
        let mut apply = new.clone();
        apply.set_devices(None);
        m.update(&apply)?;
        linux.set_resources(Some(new));
        spec.set_linux(Some(linux));
        dir.write_atomic(
            state::CONFIG_FILE,
            &serde_json::to_vec(&spec).expect("spec serializes"),
        )?;
        Ok(())
    }

    /// `ps`: the container's processes.
    pub fn ps(&self, id: &str, format: PsFormat, ps_args: &[String]) -> Result<String> {
        let id = self.id(id)?;
        let (dir, saved) = self.peek(&id)?;
        let status = status_of(&dir, &saved, false);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::InvalidState {
                id: id.to_string(),
                status,
                op: "list its processes",
            });
        }
        let pids = container_pids(&saved);
        if format == PsFormat::Json {
            return Ok(serde_json::to_string(&pids).expect("pids serialize"));
        }
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(Error::sys("run ps"))?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let col = header
            .split_whitespace()
            .position(|h| h == "PID")
            .ok_or_else(|| Error::Invalid("ps output has no PID column".into()))?;
        let mut res = String::from(header);
        res.push('\n');
        for l in lines {
            let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| pids.contains(&p)) {
                res.push_str(l);
                res.push('\n');
            }
        }
        Ok(res)
    }

    /// `events`: statistics (once with `stats_once`, else every `interval`) and OOM
    /// notifications, one JSON object per line, until the container stops.
    pub fn events(
        &self,
        id: &str,
        stats_once: bool,
        interval: Duration,
        out: &mut dyn Write,
    ) -> Result<()> {
        let id = self.id(id)?;
        let (dir, saved) = self.peek(&id)?;
        let status = status_of(&dir, &saved, false);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::InvalidState {
                id: id.to_string(),
                status,
                op: "report its events",
            });
        }
        let m = manager_of(&saved)
            .filter(|m| m.exists())
            .ok_or_else(|| Error::Invalid(format!("container {id} has no cgroup")))?;
        let emit = |out: &mut dyn Write, line: String| -> Result<()> {
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(Error::sys("write events"))
        };
        let stats_line = |m: &liana_cgroups::Manager| -> Result<String> {
            let ev = liana_cgroups::Event::stats(id.as_str(), m.stats()?);
            Ok(serde_json::to_string(&ev).expect("stats serialize"))
        };
        if stats_once {
            return emit(out, stats_line(&m)?);
        }
        let mut oom = m.oom_watcher().ok();
        loop {
            if !state::is_alive(saved.pid, saved.pid_start) {
                return Ok(());
            }
            emit(out, stats_line(&m)?)?;
            let until = Instant::now() + interval;
            while Instant::now() < until {
                let left = until.saturating_duration_since(Instant::now());
                match oom.as_mut() {
                    Some(w) => match w.wait(Some(left))? {
                        Some(liana_cgroups::OomEvent::Oom { .. }) => {
                            let ev = liana_cgroups::Event::oom(id.as_str());
                            emit(out, serde_json::to_string(&ev).expect("serializes"))?;
                        }
                        Some(liana_cgroups::OomEvent::Gone) => return Ok(()),
                        None => {}
                    },
                    None => std::thread::sleep(left.min(Duration::from_millis(200))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxMemory;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("128M"), Some(128 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("-1"), Some(-1));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn flags_override_current() {
        let mut cur = LinuxResources::default();
        let mut m = LinuxMemory::default();
        m.set_limit(Some(100));
        cur.set_memory(Some(m));
        let req = UpdateRequest {
            pids_limit: Some(5),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let r = req.apply_to(&cur).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(100));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 5);
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        let req = UpdateRequest {
            memory: Some("1m".into()),
            resources_json: Some(br#"{"pids":{"limit":7}}"#.to_vec()),
            ..Default::default()
        };
        let r = req.apply_to(&cur).unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 7);
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1 << 20));
        let bad = UpdateRequest {
            resources_json: Some(br#"{"pids":{"limit":"x"}}"#.to_vec()),
            ..Default::default()
        };
        assert!(bad
            .apply_to(&cur)
            .unwrap_err()
            .to_string()
            .contains("pids.limit"));
    }
}

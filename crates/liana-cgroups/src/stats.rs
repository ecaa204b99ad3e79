//! Container statistics, serialised exactly like runc's `events --stats`
//! (`types/events.go` in runc): field names, and Go's `omitempty` (zero numbers,
//! empty lists and maps are left out; structs are always present).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One line of `runc events`: `{"type":"stats","id":"...","data":{...}}` or
/// `{"type":"oom","id":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<T> {
    /// `stats`, `oom`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The container id.
    pub id: String,
    /// The payload, absent for `oom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl Event<Stats> {
    /// A `stats` event.
    pub fn stats(id: &str, stats: Stats) -> Self {
        Event {
            kind: "stats".into(),
            id: id.into(),
            data: Some(stats),
        }
    }
}

impl Event<()> {
    /// An `oom` event.
    pub fn oom(id: &str) -> Self {
        Event {
            kind: "oom".into(),
            id: id.into(),
            data: None,
        }
    }
}

/// Everything `events --stats` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU usage and throttling.
    pub cpu: Cpu,
    /// cpuset configuration.
    pub cpuset: CpuSet,
    /// Memory usage.
    pub memory: Memory,
    /// Number of tasks.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// HugeTLB usage per page size (`2MB`, `1GB`...).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT (not collected by liana; kept for shape).
    pub intel_rdt: IntelRdt,
    /// Network interfaces (not collected by liana; `null` as in runc).
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

/// HugeTLB usage of one page size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugetlb {
    /// Current usage in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Maximum usage recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures.
    #[serde(default)]
    pub failcnt: u64,
}

/// One line of a blkio statistic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// Operation (`Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Value.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// I/O operations.
    #[serde(
        rename = "ioServicedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// Queued operations (CFQ only).
    #[serde(
        rename = "ioQueueRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// Service time (CFQ only).
    #[serde(
        rename = "ioServiceTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// Wait time (CFQ only).
    #[serde(
        rename = "ioWaitTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// Merged operations (CFQ only).
    #[serde(
        rename = "ioMergedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// Time (CFQ only).
    #[serde(
        rename = "ioTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// Sectors (CFQ only).
    #[serde(
        rename = "sectorsRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sectors_recursive: Vec<BlkioEntry>,
    /// Pressure stall information (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Number of tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    /// Tasks in the cgroup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit (0 when unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// CFS throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(rename = "throttledPeriods", default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time in nanoseconds.
    #[serde(rename = "throttledTime", default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel mode.
    #[serde(default)]
    pub kernel: u64,
    /// User mode.
    #[serde(default)]
    pub user: u64,
}

/// CPU statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Usage.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
    /// Pressure stall information (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// cpuset configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSet {
    /// Allowed CPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// `cpuset.cpu_exclusive`.
    #[serde(default)]
    pub cpu_exclusive: u64,
    /// Allowed memory nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// `cpuset.mem_hardwall`.
    #[serde(default)]
    pub mem_hardwall: u64,
    /// `cpuset.mem_exclusive`.
    #[serde(default)]
    pub mem_exclusive: u64,
    /// `cpuset.memory_migrate`.
    #[serde(default)]
    pub memory_migrate: u64,
    /// `cpuset.memory_spread_page`.
    #[serde(default)]
    pub memory_spread_page: u64,
    /// `cpuset.memory_spread_slab`.
    #[serde(default)]
    pub memory_spread_slab: u64,
    /// `cpuset.memory_pressure`.
    #[serde(default)]
    pub memory_pressure: u64,
    /// `cpuset.sched_load_balance`.
    #[serde(default)]
    pub sched_load_balance: u64,
    /// `cpuset.sched_relax_domain_level`.
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

/// One memory counter family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Limit in bytes (`u64::MAX`-ish when unlimited, as the kernel reports).
    #[serde(default)]
    pub limit: u64,
    /// Usage in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1 semantics, also on v2).
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP memory (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat` as is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    /// Pressure stall information (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Intel RDT statistics: not collected, always empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntelRdt {}

/// One PSI line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiData {
    /// 10 s average.
    pub avg10: f64,
    /// 60 s average.
    pub avg60: f64,
    /// 300 s average.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total: u64,
}

/// Pressure stall information of one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    /// Some tasks stalled.
    pub some: PsiData,
    /// All tasks stalled.
    pub full: PsiData,
}

/// Parses a `*.pressure` file.
pub(crate) fn parse_psi(content: &str) -> Option<Psi> {
    let mut psi = Psi::default();
    let mut any = false;
    for line in content.lines() {
        let mut it = line.split_whitespace();
        let target = match it.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => target.avg10 = v.parse().ok()?,
                "avg60" => target.avg60 = v.parse().ok()?,
                "avg300" => target.avg300 = v.parse().ok()?,
                "total" => target.total = v.parse().ok()?,
                _ => {}
            }
        }
        any = true;
    }
    any.then_some(psi)
}

/// Parses a cpu list such as `0-3,8,10-11`.
pub(crate) fn parse_cpu_list(s: &str) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 100;
        s.pids.current = 3;
        let v = serde_json::to_value(Event::stats("c1", s)).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c1");
        let d = &v["data"];
        assert_eq!(
            d["memory"]["usage"],
            serde_json::json!({"limit": 100, "failcnt": 0})
        );
        assert_eq!(d["pids"], serde_json::json!({"current": 3}));
        assert_eq!(
            d["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(d["cpu"]["throttling"], serde_json::json!({}));
        assert!(d["memory"]["kernelTCP"].is_object());
        assert!(d["network_interfaces"].is_null());
        assert_eq!(d["hugetlb"], serde_json::json!({}));
        assert_eq!(d["blkio"], serde_json::json!({}));
        let oom = serde_json::to_string(&Event::oom("c1")).unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }

    #[test]
    fn parses_psi_and_cpu_lists() {
        let p = parse_psi(
            "some avg10=1.50 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.full.total, 3);
        assert!(parse_psi("").is_none());
        assert_eq!(parse_cpu_list("0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u16>::new());
        assert!(parse_cpu_list("3-1").is_none());
    }
}

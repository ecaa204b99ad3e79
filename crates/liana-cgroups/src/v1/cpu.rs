//! v1 cpu: shares, CFS bandwidth (period, quota, burst), realtime, idle.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::error::{Error, Result};
use crate::files;
use crate::stats::Cpu;

/// One pending write: file, value, runtime-spec key.
pub(crate) type Write<'a> = (&'a str, String, &'a str);

/// Writes `writes` in order; if one fails with `EINVAL` (the kernel checks
/// each value against the others, e.g. burst <= quota, runtime <= period),
/// tries the reverse order, which is the right one when lowering instead of
/// raising. Returns the first error if both orders fail.
pub(crate) fn write_either_order(dir: &Path, writes: &[Write<'_>]) -> Result<()> {
    let attempt = |order: &mut dyn Iterator<Item = &Write<'_>>| -> Result<()> {
        for (file, value, key) in order {
            files::set(dir, file, value, key)?;
        }
        Ok(())
    };
    match attempt(&mut writes.iter()) {
        Ok(()) => Ok(()),
        Err(first @ Error::SetResource { .. }) if is_einval(&first) && writes.len() > 1 => {
            attempt(&mut writes.iter().rev()).map_err(|_| first)
        }
        Err(e) => Err(e),
    }
}

fn is_einval(e: &Error) -> bool {
    matches!(e, Error::SetResource { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
}

/// Writes `cpu.*` (not cpuset).
pub(crate) fn set(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(idle) = c.idle() {
        files::set(dir, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        if c.idle() == Some(1) {
            tracing::warn!("cpu.shares is ignored for an idle (cpu.idle=1) cgroup");
        } else {
            files::set(dir, "cpu.shares", &shares.to_string(), "cpu.shares")?;
        }
    }
    let mut bw: Vec<Write<'_>> = Vec::new();
    if let Some(p) = c.period().filter(|p| *p != 0) {
        bw.push(("cpu.cfs_period_us", p.to_string(), "cpu.period"));
    }
    if let Some(q) = c.quota().filter(|q| *q != 0) {
        let q = if q < 0 { -1 } else { q };
        bw.push(("cpu.cfs_quota_us", q.to_string(), "cpu.quota"));
    }
    if let Some(b) = c.burst() {
        bw.push(("cpu.cfs_burst_us", b.to_string(), "cpu.burst"));
    }
    write_either_order(dir, &bw)?;
    let mut rt: Vec<Write<'_>> = Vec::new();
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        rt.push(("cpu.rt_period_us", p.to_string(), "cpu.realtimePeriod"));
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        rt.push(("cpu.rt_runtime_us", r.to_string(), "cpu.realtimeRuntime"));
    }
    write_either_order(dir, &rt)
}

/// Throttling from `cpu.stat` (v1 reports throttled time in nanoseconds).
pub(crate) fn stats(dir: &Path, out: &mut Cpu) -> Result<()> {
    if let Some(s) = files::read_opt(dir, "cpu.stat")? {
        for (k, v) in files::flat_keyed(&s) {
            match k {
                "nr_periods" => out.throttling.periods = v,
                "nr_throttled" => out.throttling.throttled_periods = v,
                "throttled_time" => out.throttling.throttled_time = v,
                _ => {}
            }
        }
    }
    Ok(())
}

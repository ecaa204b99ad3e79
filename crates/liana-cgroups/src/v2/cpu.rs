//! v2 cpu: `cpu.weight` (converted from shares), `cpu.max`, `cpu.max.burst`,
//! `cpu.idle`; statistics from `cpu.stat`.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::error::Result;
use crate::files;
use crate::resources::SetMode;
use crate::stats::{parse_psi, Cpu};
use crate::v1::cpu::{write_either_order, Write};

/// Converts v1 shares (2..=262144) linearly to a v2 weight (1..=10000), as
/// runc and crun do; 0 stays 0 (unset).
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        s if s <= 2 => 1,
        s if s >= 262_144 => 10_000,
        s => 1 + ((s - 2) * 9999) / 262_142,
    }
}

/// Writes `cpu.*`. With only one of quota and period given, the other keeps
/// its current value on update (a new cgroup's is `max 100000`).
pub(crate) fn set(dir: &Path, c: &LinuxCpu, mode: SetMode) -> Result<()> {
    if let Some(idle) = c.idle() {
        files::set(dir, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        if c.idle() == Some(1) {
            tracing::warn!("cpu.shares is ignored for an idle (cpu.idle=1) cgroup");
        } else {
            let w = shares_to_weight(shares).to_string();
            files::set(dir, "cpu.weight", &w, "cpu.shares")?;
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    let mut writes: Vec<Write<'_>> = Vec::new();
    if quota.is_some() || period.is_some() {
        let current = match mode {
            SetMode::Update if quota.is_none() || period.is_none() => files::read(dir, "cpu.max")?,
            _ => "max 100000".to_string(),
        };
        let mut cur = files::last_line(&current).split_whitespace();
        let (cur_quota, cur_period) = (cur.next().unwrap_or("max"), cur.next().unwrap_or("100000"));
        let q = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => cur_quota.to_string(),
        };
        let p = period.map_or(cur_period.to_string(), |p| p.to_string());
        let key = if quota.is_some() {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        writes.push(("cpu.max", format!("{q} {p}"), key));
    }
    if let Some(b) = c.burst() {
        writes.push(("cpu.max.burst", b.to_string(), "cpu.burst"));
    }
    write_either_order(dir, &writes)
}

/// `cpu.stat` (microseconds converted to nanoseconds) and `cpu.pressure`.
pub(crate) fn stats(dir: &Path, out: &mut Cpu) -> Result<()> {
    if let Some(s) = files::read_opt(dir, "cpu.stat")? {
        for (k, v) in files::flat_keyed(&s) {
            match k {
                "usage_usec" => out.usage.total = v * 1000,
                "user_usec" => out.usage.user = v * 1000,
                "system_usec" => out.usage.kernel = v * 1000,
                "nr_periods" => out.throttling.periods = v,
                "nr_throttled" => out.throttling.throttled_periods = v,
                "throttled_usec" => out.throttling.throttled_time = v * 1000,
                _ => {}
            }
        }
    }
    out.psi = files::read_opt(dir, "cpu.pressure")?.and_then(|s| parse_psi(&s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 20), 10_000);
    }
}

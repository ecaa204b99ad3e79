//! v2 memory: `memory.max`, `memory.swap.max` (swap alone, not memory+swap),
//! `memory.low`; statistics from `memory.stat` and `memory.current`.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::error::{Error, Result};
use crate::files;
use crate::resources::SetMode;
use crate::stats::{parse_psi, Memory, MemoryEntry};

/// `-1` is `max`, other values as they are.
fn v2_value(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The runtime spec's `swap` is memory+swap; v2's `memory.swap.max` is swap
/// alone. Returns the value for `memory.swap.max`, `None` to leave it alone.
pub(crate) fn swap_value(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>, String> {
    let limit = limit.filter(|v| *v != 0);
    let swap = swap.filter(|v| *v != 0);
    match (limit, swap) {
        // Unlimited memory and swap unset: unlimited swap (v1 behaviour).
        (Some(-1), None) => Ok(Some("max".into())),
        (_, None) => Ok(None),
        (_, Some(-1)) => Ok(Some("max".into())),
        (Some(-1), Some(s)) => Ok(Some(s.to_string())),
        (None, Some(_)) => {
            Err("cannot set a swap limit without a memory limit on cgroup v2".into())
        }
        (Some(l), Some(_)) if l < 0 => Err(format!("invalid memory limit {l}")),
        (Some(l), Some(s)) if s < l => Err(format!(
            "memory+swap limit {s} must be greater than or equal to the memory limit {l}"
        )),
        (Some(l), Some(s)) => Ok(Some((s - l).to_string())),
    }
}

/// Writes `memory.*`.
pub(crate) fn set(dir: &Path, m: &LinuxMemory, mode: SetMode) -> Result<()> {
    let limit = m.limit().filter(|v| *v != 0);
    if let (Some(true), Some(l), SetMode::Update) = (m.check_before_update(), limit, mode) {
        let usage = files::read_u64(dir, "memory.current")?;
        if l > 0 && usage >= l as u64 {
            return Err(Error::MemoryBelowUsage {
                key: "memory.limit".into(),
                limit: l,
                usage,
                path: dir.to_path_buf(),
            });
        }
    }
    let swap = swap_value(m.limit(), m.swap()).map_err(|reason| Error::InvalidResource {
        key: "memory.swap".into(),
        reason,
    })?;
    if let Some(s) = swap {
        files::set(dir, "memory.swap.max", &s, "memory.swap")?;
    }
    if let Some(l) = limit {
        files::set(dir, "memory.max", &v2_value(l), "memory.limit")?;
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        files::set(dir, "memory.low", &v2_value(r), "memory.reservation")?;
    }
    if m.swappiness().is_some() {
        tracing::warn!("memory.swappiness has no cgroup v2 equivalent; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("memory.disableOOMKiller has no cgroup v2 equivalent; ignored");
    }
    Ok(())
}

/// Memory stats; swap is reported as memory+swap like v1, as runc does.
pub(crate) fn stats(dir: &Path, out: &mut Memory) -> Result<()> {
    if let Some(s) = files::read_opt(dir, "memory.stat")? {
        out.raw = files::flat_keyed(&s)
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        out.cache = out.raw.get("file").copied().unwrap_or(0);
    }
    let events = files::read_opt(dir, "memory.events")?.unwrap_or_default();
    out.usage = MemoryEntry {
        usage: files::read_u64_opt(dir, "memory.current")?.unwrap_or(0),
        max: files::read_u64_opt(dir, "memory.peak")?.unwrap_or(0),
        limit: files::read_u64_opt(dir, "memory.max")?.unwrap_or(u64::MAX),
        failcnt: files::keyed_value(&events, "max").unwrap_or(0),
    };
    if let Some(swap) = files::read_u64_opt(dir, "memory.swap.current")? {
        let limit = files::read_u64_opt(dir, "memory.swap.max")?.unwrap_or(u64::MAX);
        out.swap = MemoryEntry {
            usage: swap + out.usage.usage,
            max: 0,
            limit: if limit == u64::MAX || out.usage.limit == u64::MAX {
                u64::MAX
            } else {
                limit + out.usage.limit
            },
            failcnt: 0,
        };
    }
    out.psi = files::read_opt(dir, "memory.pressure")?.and_then(|s| parse_psi(&s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_swap_like_runc() {
        assert_eq!(swap_value(Some(-1), None).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_value(Some(100), None).unwrap(), None);
        assert_eq!(
            swap_value(Some(100), Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            swap_value(Some(100), Some(300)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            swap_value(Some(100), Some(100)).unwrap().as_deref(),
            Some("0")
        );
        assert_eq!(
            swap_value(Some(-1), Some(300)).unwrap().as_deref(),
            Some("300")
        );
        assert!(swap_value(None, Some(300)).is_err());
        assert!(swap_value(Some(300), Some(100)).is_err());
    }
}

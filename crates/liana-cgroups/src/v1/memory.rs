//! v1 memory: limit, memory+swap, soft limit, OOM killer, swappiness.

use std::io;
use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::error::{Error, Result};
use crate::files;
use crate::resources::SetMode;
use crate::stats::{Memory, MemoryEntry};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// Writes `memory.*`. When both the limit and memory+swap change, the order
/// matters (memsw must stay >= limit): raising writes memsw first, lowering
/// writes the limit first, judged against the current limit (a new cgroup's
/// is unlimited, so [`SetMode::Create`] reads nothing).
pub(crate) fn set(dir: &Path, m: &LinuxMemory, mode: SetMode) -> Result<()> {
    let limit = m.limit().filter(|v| *v != 0);
    let mut swap = m.swap().filter(|v| *v != 0);
    if limit == Some(-1) && swap.is_none() && dir.join(MEMSW).exists() {
        // Unlimited memory with swap unset means unlimited swap too (runc).
        swap = Some(-1);
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = match mode {
                SetMode::Create => u64::MAX,
                SetMode::Update => files::read_u64(dir, LIMIT)?,
            };
            if s == -1 || current < s as u64 {
                set_swap(dir, s)?;
                set_limit(dir, l)?;
            } else {
                set_limit(dir, l)?;
                set_swap(dir, s)?;
            }
        }
        (Some(l), None) => set_limit(dir, l)?,
        (None, Some(s)) => set_swap(dir, s)?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        files::set(
            dir,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
            "memory.reservation",
        )?;
    }
    match (m.disable_oom_killer(), mode) {
        (Some(true), _) => files::set(dir, "memory.oom_control", "1", "memory.disableOOMKiller")?,
        (Some(false), SetMode::Update) => {
            files::set(dir, "memory.oom_control", "0", "memory.disableOOMKiller")?
        }
        _ => {}
    }
    if let Some(s) = m.swappiness() {
        files::set(
            dir,
            "memory.swappiness",
            &s.to_string(),
            "memory.swappiness",
        )?;
    }
    Ok(())
}

fn set_limit(dir: &Path, limit: i64) -> Result<()> {
    let value = limit.to_string();
    let path = dir.join(LIMIT);
    match files::write_raw(&path, &value) {
        Ok(()) => Ok(()),
        // EBUSY: the new limit is below the current usage.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(Error::MemoryBelowUsage {
            key: "memory.limit".into(),
            limit,
            usage: files::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
            path: dir.to_path_buf(),
        }),
        Err(source) => Err(Error::SetResource {
            key: "memory.limit".into(),
            value,
            path,
            source,
        }),
    }
}

fn set_swap(dir: &Path, swap: i64) -> Result<()> {
    files::set(dir, MEMSW, &swap.to_string(), "memory.swap")
}

/// Memory stats from `memory.stat` and the usage files.
pub(crate) fn stats(dir: &Path, out: &mut Memory) -> Result<()> {
    if let Some(s) = files::read_opt(dir, "memory.stat")? {
        out.raw = files::flat_keyed(&s)
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        out.cache = out.raw.get("cache").copied().unwrap_or(0);
    }
    out.usage = entry(dir, "memory")?.unwrap_or_default();
    out.swap = entry(dir, "memory.memsw")?.unwrap_or_default();
    out.kernel = entry(dir, "memory.kmem")?.unwrap_or_default();
    out.kernel_tcp = entry(dir, "memory.kmem.tcp")?.unwrap_or_default();
    Ok(())
}

fn entry(dir: &Path, prefix: &str) -> Result<Option<MemoryEntry>> {
    let Some(usage) = files::read_u64_opt(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    let get = |f: &str| -> Result<u64> {
        match files::read_u64(dir, &format!("{prefix}.{f}")) {
            // kmem files exist but cannot be read on some kernels.
            Err(Error::ReadFile { source, .. })
                if source.kind() == io::ErrorKind::NotFound
                    || source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
            {
                Ok(0)
            }
            other => other,
        }
    };
    Ok(Some(MemoryEntry {
        usage,
        max: get("max_usage_in_bytes")?,
        failcnt: get("failcnt")?,
        limit: get("limit_in_bytes")?,
    }))
}

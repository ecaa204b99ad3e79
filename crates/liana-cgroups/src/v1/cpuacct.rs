//! v1 cpuacct: CPU usage statistics.

use std::path::Path;

use crate::error::{Error, Result};
use crate::files;
use crate::stats::Cpu;

fn per_cpu(dir: &Path, file: &str) -> Result<Vec<u64>> {
    match files::read_opt(dir, file)? {
        None => Ok(Vec::new()),
        Some(s) => s
            .split_whitespace()
            .map(|v| {
                v.parse().map_err(|_| Error::Parse {
                    path: dir.join(file),
                    reason: format!("bad number {v:?}"),
                })
            })
            .collect(),
    }
}

/// `cpuacct.usage*` and `cpuacct.stat` (ticks converted to nanoseconds).
pub(crate) fn stats(dir: &Path, out: &mut Cpu) -> Result<()> {
    out.usage.total = files::read_u64_opt(dir, "cpuacct.usage")?.unwrap_or(0);
    out.usage.percpu = per_cpu(dir, "cpuacct.usage_percpu")?;
    out.usage.percpu_kernel = per_cpu(dir, "cpuacct.usage_percpu_sys")?;
    out.usage.percpu_user = per_cpu(dir, "cpuacct.usage_percpu_user")?;
    if let Some(s) = files::read_opt(dir, "cpuacct.stat")? {
        let ns_per_tick = 1_000_000_000 / clock_ticks();
        for (k, v) in files::flat_keyed(&s) {
            match k {
                "user" => out.usage.user = v * ns_per_tick,
                "system" => out.usage.kernel = v * ns_per_tick,
                _ => {}
            }
        }
    }
    Ok(())
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

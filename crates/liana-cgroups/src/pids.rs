//! pids (v1 and v2 share the file names).

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use crate::error::Result;
use crate::files;
use crate::stats::Pids;

/// `pids.limit`: positive is a limit, negative is `max`, 0 is unset.
pub(crate) fn set(dir: &Path, p: &LinuxPids) -> Result<()> {
    let value = match p.limit() {
        0 => return Ok(()),
        l if l < 0 => "max".to_string(),
        l => l.to_string(),
    };
    files::set(dir, "pids.max", &value, "pids.limit")
}

/// `pids.current` and `pids.max` (`max` reported as 0, as runc).
pub(crate) fn stats(dir: &Path, out: &mut Pids) -> Result<()> {
    out.current = files::read_u64_opt(dir, "pids.current")?.unwrap_or(0);
    out.limit = match files::read_u64_opt(dir, "pids.max")? {
        Some(u64::MAX) | None => 0,
        Some(v) => v,
    };
    Ok(())
}

//! v2 freezer: `cgroup.freeze` requests, `cgroup.events` `frozen` confirms.

use std::io;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::files;
use crate::FreezerState;

/// Reads the state (`NoFreezer` when the kernel has no `cgroup.freeze`).
pub(crate) fn state(dir: &Path) -> Result<FreezerState> {
    let Some(want) = files::read_opt(dir, "cgroup.freeze")? else {
        return if dir.exists() {
            Err(Error::NoFreezer)
        } else {
            Err(Error::ReadFile {
                path: dir.join("cgroup.freeze"),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            })
        };
    };
    if files::last_line(&want) == "0" {
        return Ok(FreezerState::Thawed);
    }
    let events = files::read(dir, "cgroup.events")?;
    Ok(match files::keyed_value(&events, "frozen") {
        Some(1) => FreezerState::Frozen,
        _ => FreezerState::Freezing,
    })
}

/// Freezes and waits until `cgroup.events` says `frozen 1`; after `timeout`
/// thaws again and fails.
pub(crate) fn freeze(dir: &Path, timeout: Duration) -> Result<()> {
    files::write_control(dir, "cgroup.freeze", "1").map_err(|e| match e {
        Error::WriteFile { source, .. }
            if source.kind() == io::ErrorKind::NotFound && dir.exists() =>
        {
            Error::NoFreezer
        }
        other => other,
    })?;
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        if state(dir)? == FreezerState::Frozen {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let _ = files::write_control(dir, "cgroup.freeze", "0");
            return Err(Error::FreezeTimeout {
                path: dir.to_path_buf(),
            });
        }
        thread::sleep(Duration::from_micros(if i < 10 { 100 } else { 2000 }));
        i += 1;
    }
}

/// Thaws.
pub(crate) fn thaw(dir: &Path) -> Result<()> {
    files::write_control(dir, "cgroup.freeze", "0")
}

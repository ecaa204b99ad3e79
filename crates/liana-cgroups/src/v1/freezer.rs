//! v1 freezer: `freezer.state` is THAWED, FREEZING or FROZEN.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::files;
use crate::FreezerState;

const STATE: &str = "freezer.state";

/// Reads the state.
pub(crate) fn state(dir: &Path) -> Result<FreezerState> {
    let s = files::read(dir, STATE)?;
    match files::last_line(&s) {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::Parse {
            path: dir.join(STATE),
            reason: format!("unknown freezer state {other:?}"),
        }),
    }
}

/// Freezes and waits for FROZEN. A task stuck in a vfork or an uninterruptible
/// sleep can keep the cgroup in FREEZING; the request is re-issued, and after
/// `timeout` the cgroup is thawed again and an error returned.
pub(crate) fn freeze(dir: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        if i.is_multiple_of(25) {
            files::write_control(dir, STATE, "FROZEN")?;
        }
        if state(dir)? == FreezerState::Frozen {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let _ = files::write_control(dir, STATE, "THAWED");
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
    files::write_control(dir, STATE, "THAWED")
}

//! v1 devices: `devices.allow` / `devices.deny`, written as the least
//! disruptive transition from the current `devices.list`.

use std::path::Path;

use crate::devices::DeviceRuleSet;
use crate::error::{Error, Result};
use crate::files;

/// Moves the cgroup's device rules to `target`.
pub(crate) fn set(dir: &Path, target: &DeviceRuleSet) -> Result<()> {
    let list = files::read(dir, "devices.list")?;
    let current = DeviceRuleSet::from_v1_list(&list).ok_or_else(|| Error::Parse {
        path: dir.join("devices.list"),
        reason: "not a devices.list".into(),
    })?;
    for (allow, line) in current.transition(target) {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files::set(dir, file, &line, "devices")?;
    }
    Ok(())
}

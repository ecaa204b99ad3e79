//! `linux.resources.unified`: cgroup v2 files written as given, last, so they
//! override the structured settings.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::files;

/// The controller a unified key belongs to (`io.max` → `io`).
pub(crate) fn controller_of(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// Checks a key names a file directly in the cgroup directory.
pub(crate) fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(format!("{key:?} is not a cgroup v2 file name"));
    }
    Ok(())
}

/// Writes every key; on `ENOENT`, reports the missing controller.
pub(crate) fn set(
    dir: &Path,
    unified: &HashMap<String, String>,
    available: &[String],
) -> Result<()> {
    let mut keys: Vec<_> = unified.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let key = format!("unified[{k:?}]");
        match files::set(dir, k, v, &key) {
            Err(Error::SetResource { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let ctrl = controller_of(k);
                let reason = if ctrl != "cgroup" && !available.iter().any(|c| c == ctrl) {
                    format!(
                        "the {ctrl} controller is not available in {}",
                        dir.display()
                    )
                } else {
                    format!("{k} does not exist in {}", dir.display())
                };
                return Err(Error::Unsupported { key, reason });
            }
            other => other?,
        }
    }
    Ok(())
}

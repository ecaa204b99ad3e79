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

/// Checks a key names a file directly in the cgroup directory (wording as
/// crun's, whose tests look for it).
pub(crate) fn check_key(key: &str) -> std::result::Result<(), String> {
    let (ctrl, rest) = key.split_once('.').unwrap_or((key, ""));
    if ctrl.is_empty() || rest.is_empty() || key.contains('/') || key.contains("..") {
        return Err(format!(
            "the specified key has not the form CONTROLLER.VALUE `{key}`"
        ));
    }
    Ok(())
}

/// The message for a controller that is not available.
pub(crate) fn unavailable(ctrl: &str) -> String {
    format!("the requested cgroup controller `{ctrl}` is not available")
}

/// Writes every key. A missing file of an available controller keeps the
/// kernel's "no such file or directory" as the cause.
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
            Err(Error::SetResource { source, .. })
                if source.kind() == io::ErrorKind::NotFound
                    && controller_of(k) != "cgroup"
                    && !available.iter().any(|c| c == controller_of(k)) =>
            {
                return Err(Error::Unsupported {
                    key,
                    reason: unavailable(controller_of(k)),
                });
            }
            other => other?,
        }
    }
    Ok(())
}

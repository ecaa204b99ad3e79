//! cgroup v2 (the unified hierarchy): one module per controller.

pub(crate) mod cpu;
pub(crate) mod freezer;
pub(crate) mod io;
pub(crate) mod memory;
pub(crate) mod unified;

use std::fs;
use std::io as stdio;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files;
use crate::manager::{mkdir_all, UnifiedCgroup};

/// Creates the container's unified cgroup, enabling every controller of the
/// hierarchy root in each ancestor's `cgroup.subtree_control` on the way down
/// (from the mountpoint to the parent of the container's cgroup).
///
/// A controller that cannot be enabled somewhere (an ancestor holding
/// processes, a rootless parent that did not delegate it) is not an error
/// here: setting a limit of that controller fails later, naming the key.
pub(crate) fn create(u: &UnifiedCgroup, created: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(rel) = u.dir.strip_prefix(&u.mountpoint) else {
        return mkdir_all(&u.mountpoint, &u.dir, created);
    };
    let enable: String = u
        .controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cur = u.mountpoint.clone();
    for comp in rel.components() {
        if !enable.is_empty() {
            enable_controllers(&cur, &enable);
        }
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == stdio::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::CreateDir { path: cur, source });
            }
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path, enable: &str) {
    let file = dir.join("cgroup.subtree_control");
    if files::write_raw(&file, enable).is_ok() {
        return;
    }
    // One by one, so that one refused controller does not block the others.
    for c in enable.split(' ') {
        if let Err(e) = files::write_raw(&file, c) {
            tracing::debug!(file = %file.display(), controller = c, error = %e,
                "cannot enable cgroup v2 controller");
        }
    }
}

//! v1 net_cls and net_prio (no cgroup v2 equivalent).

use std::path::Path;

use oci_spec::runtime::LinuxNetwork;

use crate::error::Result;
use crate::files;

/// `network.classID`.
pub(crate) fn set_cls(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        files::set(dir, "net_cls.classid", &id.to_string(), "network.classID")?;
    }
    Ok(())
}

/// `network.priorities`, one `ifname prio` line per write.
pub(crate) fn set_prio(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        let line = format!("{} {}", p.name(), p.priority());
        files::set(dir, "net_prio.ifpriomap", &line, "network.priorities")?;
    }
    Ok(())
}

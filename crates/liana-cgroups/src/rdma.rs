//! rdma (v1 and v2 share `rdma.max`).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::LinuxRdma;

use crate::error::Result;
use crate::files;

/// One `device hca_handle=N hca_object=M` line per device.
pub(crate) fn set(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devices {
        let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
        let line = format!(
            "{dev} hca_handle={} hca_object={}",
            n(l.hca_handles()),
            n(l.hca_objects())
        );
        files::set(dir, "rdma.max", &line, &format!("rdma[{dev}]"))?;
    }
    Ok(())
}

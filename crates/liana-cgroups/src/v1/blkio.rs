//! v1 blkio: weights (CFQ `blkio.weight` or BFQ `blkio.bfq.weight`) and throttles.

use std::io;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::error::{Error, Result};
use crate::files;
use crate::stats::{Blkio, BlkioEntry};

/// Writes `file`, falling back to `bfq_file` when the CFQ file does not exist.
fn set_weight_file(dir: &Path, file: &str, bfq_file: &str, value: &str, key: &str) -> Result<()> {
    match files::set(dir, file, value, key) {
        Err(Error::SetResource { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            files::set(dir, bfq_file, value, key)
        }
        other => other,
    }
}

/// Writes `blkio.*`.
pub(crate) fn set(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set_weight_file(
            dir,
            "blkio.weight",
            "blkio.bfq.weight",
            &w.to_string(),
            "blockIO.weight",
        )?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        files::set(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
            set_weight_file(
                dir,
                "blkio.weight_device",
                "blkio.bfq.weight_device",
                &line,
                "blockIO.weightDevice",
            )?;
        }
        if let Some(w) = wd.leaf_weight() {
            let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
            files::set(
                dir,
                "blkio.leaf_weight_device",
                &line,
                "blockIO.weightDevice.leafWeight",
            )?;
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (list, file, key) in throttles {
        for t in list.iter().flatten() {
            let line = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            files::set(dir, file, &line, key)?;
        }
    }
    Ok(())
}

fn parse_entries(content: &str) -> Vec<BlkioEntry> {
    content
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f[..] {
                [dev, op, value] => (dev, op, value),
                // "major:minor value" files (sectors, time) have no op.
                [dev, value] if dev.contains(':') => (dev, "", value),
                _ => return None,
            };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// Statistics: CFQ files when present, else BFQ, else the throttle ones.
pub(crate) fn stats(dir: &Path, out: &mut Blkio) -> Result<()> {
    let read = |f: &str| -> Result<Option<Vec<BlkioEntry>>> {
        Ok(files::read_opt(dir, f)?.map(|s| parse_entries(&s)))
    };
    if let Some(bytes) = read("blkio.io_service_bytes_recursive")? {
        out.io_service_bytes_recursive = bytes;
        out.io_serviced_recursive = read("blkio.io_serviced_recursive")?.unwrap_or_default();
        out.io_queued_recursive = read("blkio.io_queued_recursive")?.unwrap_or_default();
        out.io_service_time_recursive =
            read("blkio.io_service_time_recursive")?.unwrap_or_default();
        out.io_wait_time_recursive = read("blkio.io_wait_time_recursive")?.unwrap_or_default();
        out.io_merged_recursive = read("blkio.io_merged_recursive")?.unwrap_or_default();
        out.io_time_recursive = read("blkio.time_recursive")?.unwrap_or_default();
        out.sectors_recursive = read("blkio.sectors_recursive")?.unwrap_or_default();
        return Ok(());
    }
    for prefix in ["blkio.bfq.", "blkio.throttle."] {
        if let Some(bytes) = read(&format!("{prefix}io_service_bytes_recursive"))? {
            out.io_service_bytes_recursive = bytes;
            out.io_serviced_recursive =
                read(&format!("{prefix}io_serviced_recursive"))?.unwrap_or_default();
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkio_lines() {
        let e = parse_entries("8:0 Read 4096\n8:0 Write 0\n8:16 1234\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].op, "Read");
        assert_eq!(e[0].value, 4096);
        assert_eq!(e[2].minor, 16);
        assert_eq!(e[2].op, "");
    }
}

//! v2 io: weights (`io.bfq.weight` as is, else `io.weight` converted) and
//! `io.max` throttles; statistics from `io.stat`.

use std::io;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::error::{Error, Result};
use crate::files;
use crate::stats::{parse_psi, Blkio, BlkioEntry};

/// Converts a blkio weight (10..=1000) linearly to an io.weight (1..=10000).
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        0
    } else {
        1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
    }
}

fn set_weight(dir: &Path, device: Option<(i64, i64)>, w: u16, key: &str) -> Result<()> {
    let prefix = device.map_or(String::new(), |(ma, mi)| format!("{ma}:{mi} "));
    match files::set(dir, "io.bfq.weight", &format!("{prefix}{w}"), key) {
        Err(Error::SetResource { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let v = blkio_weight_to_io_weight(w);
            let line = match device {
                Some(_) => format!("{prefix}{v}"),
                None => format!("default {v}"),
            };
            files::set(dir, "io.weight", &line, key)
        }
        other => other,
    }
}

/// Writes `io.*`.
pub(crate) fn set(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set_weight(dir, None, w, "blockIO.weight")?;
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("blockIO.leafWeight has no cgroup v2 equivalent; ignored");
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            set_weight(
                dir,
                Some((wd.major(), wd.minor())),
                w,
                "blockIO.weightDevice",
            )?;
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (list, name, key) in throttles {
        for t in list.iter().flatten() {
            // v1 uses 0 to remove a limit; v2 spells that "max".
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            let line = format!("{}:{} {name}={rate}", t.major(), t.minor());
            files::set(dir, "io.max", &line, key)?;
        }
    }
    Ok(())
}

/// `io.stat` mapped onto runc's blkio entries, plus `io.pressure`.
pub(crate) fn stats(dir: &Path, out: &mut Blkio) -> Result<()> {
    if let Some(s) = files::read_opt(dir, "io.stat")? {
        for line in s.lines() {
            let mut it = line.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse::<u64>() else {
                    continue;
                };
                let (list, op) = match k {
                    "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                    "dbytes" => (&mut out.io_service_bytes_recursive, "Discard"),
                    "rios" => (&mut out.io_serviced_recursive, "Read"),
                    "wios" => (&mut out.io_serviced_recursive, "Write"),
                    "dios" => (&mut out.io_serviced_recursive, "Discard"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    out.psi = files::read_opt(dir, "io.pressure")?.and_then(|s| parse_psi(&s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }
}

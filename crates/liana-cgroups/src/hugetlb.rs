//! v1 hugetlb: `hugetlb.<size>.limit_in_bytes` (and the reservation limit).

use std::io;
use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::error::{Error, Result};
use crate::files;
use crate::stats::Hugetlb;
use std::collections::BTreeMap;

/// The runtime-spec key of one hugepage limit.
pub(crate) fn key(l: &LinuxHugepageLimit) -> String {
    format!("hugepageLimits[{}]", l.page_size())
}

/// Writes the usage limit, then the reservation limit where the kernel has one.
pub(crate) fn set(dir: &Path, limits: &[LinuxHugepageLimit], v2: bool) -> Result<()> {
    for l in limits {
        let size = l.page_size();
        let value = if v2 && l.limit() < 0 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        let (file, rsvd) = if v2 {
            (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            )
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            )
        };
        files::set(dir, &file, &value, &key(l))?;
        match files::set(dir, &rsvd, &value, &key(l)) {
            Err(Error::SetResource { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Page sizes offered in `dir`, from its `hugetlb.<size>.*` file names.
pub(crate) fn page_sizes(dir: &Path) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("hugetlb.")?;
            let (size, _) = rest.split_once('.')?;
            Some(size.to_owned())
        })
        .collect();
    sizes.sort();
    sizes.dedup();
    sizes
}

/// Usage per page size (v1 files or v2 files).
pub(crate) fn stats(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) -> Result<()> {
    for size in page_sizes(dir) {
        let p = |f: &str| format!("hugetlb.{size}.{f}");
        let h = if v2 {
            let failcnt = files::read_opt(dir, &p("events"))?
                .and_then(|s| files::keyed_value(&s, "max"))
                .unwrap_or(0);
            Hugetlb {
                usage: files::read_u64_opt(dir, &p("current"))?.unwrap_or(0),
                max: 0,
                failcnt,
            }
        } else {
            Hugetlb {
                usage: files::read_u64_opt(dir, &p("usage_in_bytes"))?.unwrap_or(0),
                max: files::read_u64_opt(dir, &p("max_usage_in_bytes"))?.unwrap_or(0),
                failcnt: files::read_u64_opt(dir, &p("failcnt"))?.unwrap_or(0),
            }
        };
        out.insert(size, h);
    }
    Ok(())
}

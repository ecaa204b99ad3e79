//! v1 cpuset: a cgroup with empty `cpuset.cpus` or `cpuset.mems` accepts no
//! task, so every level is populated from its parent when created.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxCpu;

use crate::error::{Error, Result};
use crate::files;
use crate::stats::{parse_cpu_list, CpuSet};

/// `mkdir -p dir` in the cpuset hierarchy mounted at `mountpoint`, copying
/// `cpus`/`mems` down from the parent at every level where they are empty.
pub(crate) fn create(mountpoint: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    if dir == mountpoint || !dir.starts_with(mountpoint) {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(mountpoint);
    create(mountpoint, parent, created)?;
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            // A new cgroup is empty unless the parent has clone_children set,
            // in which case it already holds the very values we write.
            copy_from_parent(dir, parent, true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => copy_from_parent(dir, parent, false),
        Err(source) => Err(Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn copy_from_parent(dir: &Path, parent: &Path, fresh: bool) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !fresh && !files::last_line(&files::read(dir, file)?).is_empty() {
            continue;
        }
        let value = files::read(parent, file)?;
        let value = files::last_line(&value);
        if !value.is_empty() {
            files::write_control(dir, file, value)?;
        }
    }
    Ok(())
}

/// `cpu.cpus` and `cpu.mems`.
pub(crate) fn set(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        files::set(dir, "cpuset.cpus", cpus, "cpu.cpus")?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        files::set(dir, "cpuset.mems", mems, "cpu.mems")?;
    }
    Ok(())
}

/// cpuset part of the stats (v1 and v2 share the file names).
pub(crate) fn stats(dir: &Path, out: &mut CpuSet) -> Result<()> {
    let list = |file: &str| -> Result<Vec<u16>> {
        // v2 leaves cpuset.cpus empty when inherited; the effective list is
        // what the tasks get.
        let mut found = None;
        for name in [file.to_string(), format!("{file}.effective")] {
            if let Some(s) = files::read_opt(dir, &name)? {
                if !s.trim().is_empty() {
                    found = Some((name, s));
                    break;
                }
            }
        }
        let Some((name, s)) = found else {
            return Ok(Vec::new());
        };
        parse_cpu_list(&s).ok_or_else(|| Error::Parse {
            path: dir.join(&name),
            reason: format!("bad cpu list {:?}", s.trim()),
        })
    };
    out.cpus = list("cpuset.cpus")?;
    out.mems = list("cpuset.mems")?;
    let flag = |file: &str| files::read_u64_opt(dir, file).map(Option::unwrap_or_default);
    out.cpu_exclusive = flag("cpuset.cpu_exclusive")?;
    out.mem_hardwall = flag("cpuset.mem_hardwall")?;
    out.mem_exclusive = flag("cpuset.mem_exclusive")?;
    out.memory_migrate = flag("cpuset.memory_migrate")?;
    out.memory_spread_page = flag("cpuset.memory_spread_page")?;
    out.memory_spread_slab = flag("cpuset.memory_spread_slab")?;
    out.memory_pressure = flag("cpuset.memory_pressure")?;
    out.sched_load_balance = flag("cpuset.sched_load_balance")?;
    if let Some(s) = files::read_opt(dir, "cpuset.sched_relax_domain_level")? {
        out.sched_relax_domain_level = s.trim().parse().unwrap_or(-1);
    }
    Ok(())
}

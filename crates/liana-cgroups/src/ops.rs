//! Operations on a running container's cgroup: pause/resume, process
//! listing, signalling every process, statistics.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manager::{Manager, Target};
use crate::stats::Stats;
use crate::{files, hugetlb, pids, v1, v2};

/// How long [`Manager::freeze`] waits for the kernel to freeze every task.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// The freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    /// Running.
    Thawed,
    /// Freeze requested, not every task stopped yet.
    Freezing,
    /// Every task stopped.
    Frozen,
}

impl Manager {
    fn freezer(&self) -> Result<Target<'_>> {
        if self.v1.is_empty() && self.unified.is_none() {
            return Err(Error::NoCgroup);
        }
        self.target("freezer", "freezer").ok_or(Error::NoFreezer)
    }

    /// Freezes every process of the container (`runc pause`) and waits until
    /// the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::freeze(d, FREEZE_TIMEOUT),
            Target::V2(d) => v2::freezer::freeze(d, FREEZE_TIMEOUT),
        }
    }

    /// Thaws the container (`runc resume`).
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::thaw(d),
            Target::V2(d) => v2::freezer::thaw(d),
        }
    }

    /// The freezer state.
    pub fn freezer_state(&self) -> Result<FreezerState> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::state(d),
            Target::V2(d) => v2::freezer::state(d),
        }
    }

    /// Every process in the container's cgroup and its sub-cgroups, sorted.
    /// An absent cgroup has no processes.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.procs_dir().ok_or(Error::NoCgroup)?;
        let mut out = BTreeSet::new();
        for d in files::cgroup_tree(dir) {
            let content = match files::read_opt(&d, "cgroup.procs") {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                // A threaded v2 cgroup refuses cgroup.procs reads.
                Err(Error::ReadFile { source, .. })
                    if source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
                {
                    files::read_opt(&d, "cgroup.threads")?.unwrap_or_default()
                }
                Err(e) => return Err(e),
            };
            for line in content.lines().filter(|l| !l.is_empty()) {
                let pid = line.trim().parse().map_err(|_| Error::Parse {
                    path: d.join("cgroup.procs"),
                    reason: format!("bad pid {line:?}"),
                })?;
                out.insert(pid);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Sends `signal` to every process of the container (`kill --all`).
    ///
    /// SIGKILL on cgroup v2 uses `cgroup.kill` when the kernel has it (one
    /// write, no race with forks). Otherwise the cgroup is frozen first (when
    /// a freezer exists) so that no process can fork between listing and
    /// signalling, every pid is signalled, and the cgroup thawed again —
    /// stopped processes then receive their signal. Processes that exit in
    /// the meantime are not an error. Returns the number of processes
    /// signalled (0 when `cgroup.kill` was used).
    pub fn kill_all(&self, signal: Signal) -> Result<usize> {
        if signal == Signal::SIGKILL {
            // Every process also joined the unified cgroup (hybrid included).
            if let Some(u) = &self.unified {
                match files::write_control(&u.dir, "cgroup.kill", "1") {
                    Ok(()) => return Ok(0),
                    Err(Error::WriteFile { source, .. })
                        if source.kind() == io::ErrorKind::NotFound && u.dir.exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let frozen = match self.freeze() {
            Ok(()) => true,
            Err(Error::NoFreezer) => false,
            Err(e) => return Err(e),
        };
        let result = self.signal_pids(signal);
        if frozen {
            let thawed = self.thaw();
            let n = result?;
            thawed?;
            Ok(n)
        } else {
            result
        }
    }

    fn signal_pids(&self, signal: Signal) -> Result<usize> {
        let mut n = 0;
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) => n += 1,
                Err(nix::Error::ESRCH) => {}
                Err(source) => return Err(Error::Signal { pid, source }),
            }
        }
        Ok(n)
    }

    /// Statistics for `events --stats`.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if self.v1.is_empty() && self.unified.is_none() {
            return Err(Error::NoCgroup);
        }
        let present = |d: &Path| d.exists();
        match self.target("cpu", "cpu") {
            Some(Target::V1(d)) if present(d) => v1::cpu::stats(d, &mut s.cpu)?,
            Some(Target::V2(d)) if present(d) => v2::cpu::stats(d, &mut s.cpu)?,
            _ => {}
        }
        if let Some(Target::V1(d)) = self.target("cpuacct", "") {
            if present(d) {
                v1::cpuacct::stats(d, &mut s.cpu)?;
            }
        }
        if let Some(Target::V1(d) | Target::V2(d)) = self.target("cpuset", "cpuset") {
            if present(d) {
                v1::cpuset::stats(d, &mut s.cpuset)?;
            }
        }
        match self.target("memory", "memory") {
            Some(Target::V1(d)) if present(d) => v1::memory::stats(d, &mut s.memory)?,
            Some(Target::V2(d)) if present(d) => v2::memory::stats(d, &mut s.memory)?,
            _ => {}
        }
        if let Some(Target::V1(d) | Target::V2(d)) = self.target("pids", "pids") {
            if present(d) {
                pids::stats(d, &mut s.pids)?;
            }
        }
        match self.target("blkio", "io") {
            Some(Target::V1(d)) if present(d) => v1::blkio::stats(d, &mut s.blkio)?,
            Some(Target::V2(d)) if present(d) => v2::io::stats(d, &mut s.blkio)?,
            _ => {}
        }
        match self.target("hugetlb", "hugetlb") {
            Some(Target::V1(d)) if present(d) => hugetlb::stats(d, false, &mut s.hugetlb)?,
            Some(Target::V2(d)) if present(d) => hugetlb::stats(d, true, &mut s.hugetlb)?,
            _ => {}
        }
        Ok(s)
    }
}

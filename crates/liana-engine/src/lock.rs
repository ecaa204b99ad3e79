//! The per-container lock: an exclusive `flock` on `RUNROOT/containers/ID/lock`, held
//! while a command changes the container's lifecycle (start, cleanup, remove), so that
//! a `stop`, the monitor's cleanup and an `rm -f` never interleave.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct ContainerLock {
    _file: File,
}

impl ContainerLock {
    /// Takes the lock of the container whose run directory is `run_dir`, waiting for
    /// another holder.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        crate::paths::create_private_dir(run_dir)
            .map_err(Error::io("create container run directory", run_dir))?;
        let path = run_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("open container lock", &path))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock container", &path)(e.into()))?;
        Ok(ContainerLock { _file: file })
    }
}

//! After the exit and at the end: `container cleanup` (what the monitor runs when the
//! container exits), `rm`, `container prune`.

use std::time::{Duration, SystemTime};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lock::ContainerLock;
use crate::record::{read_exit_file, Container, RootfsSource, Status};

/// How long exit codes of removed containers are kept for `wait`.
const EXIT_KEEP: Duration = Duration::from_secs(300);

impl Engine {
    /// Releases what a container that exited held: the runtime's state, the root file
    /// system mount; records the exit code, or removes the container (`--rm`).
    pub fn cleanup(&self, id: &str) -> Result<()> {
        let run_dir = self.paths.run_dir(id);
        if !run_dir.exists() && self.db()?.get(id)?.is_none() {
            return Ok(());
        }
        let _lock = ContainerLock::acquire(&run_dir)?;
        let Some(c) = self.db()?.get(id)? else {
            return Ok(());
        };
        if c.state.status != Some(Status::Running) {
            return Ok(());
        }
        let exit = read_exit_file(&self.paths.exit_file(id));
        self.finish(&c, exit.map(|e| (e.exit_code, e.exited_at)))
    }

    /// [`Engine::cleanup`] in the process that monitored the container, which knows
    /// its record and exit.
    pub(crate) fn cleanup_after(
        &self,
        c: &Container,
        exit: Option<&liana_monitor::exitfile::Exit>,
    ) -> Result<()> {
        let _lock = ContainerLock::acquire(&self.paths.run_dir(&c.id))?;
        let exit = exit.map(|e| (e.code, humantime::format_rfc3339_nanos(e.time).to_string()));
        self.finish(c, exit)
    }

    fn finish(&self, c: &Container, exit: Option<(i32, String)>) -> Result<()> {
        let deleted = self.release(c);
        tracing::debug!(id = %c.id, "released");
        if c.settings.rm && deleted.is_ok() {
            return self.remove_locked(c, true);
        }
        if let Err(e) = &deleted {
            tracing::warn!(
                "container {} kept: the runtime could not delete it ({}); `liana rm` tries again",
                c.name,
                crate::error_chain(e)
            );
        }
        self.db()?.update(&c.id, |r| {
            r.state.status = Some(Status::Exited);
            r.state.pid = 0;
            r.state.exit_code = Some(exit.as_ref().map_or(-1, |e| e.0));
            r.state.finished_at = exit.map(|e| e.1);
            r.state.runtime_leftover = deleted.is_err();
        })?;
        Ok(())
    }

    /// Deletes the runtime's state and unmounts the root file system; the runtime's
    /// last error if it could not delete the container (everything else still goes).
    fn release(&self, c: &Container) -> Result<()> {
        let mut deleted = Ok(());
        match self.runtime(&c.settings.runtime) {
            Ok(rt) => {
                // A process that is still exiting keeps its cgroup busy for a moment
                // (the runtime retries for about a second); on a loaded machine that can
                // run out: try again rather than leave a cgroup and runtime state behind.
                let mut tries = 0;
                while let Err(e) = rt.delete(&c.id, true) {
                    tries += 1;
                    tracing::debug!("runtime delete {}: {}", c.id, crate::error_chain(&e));
                    if tries == 3 {
                        deleted = Err(e.into());
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
            Err(e) => deleted = Err(e),
        }
        // Some external runtimes leave the (empty) cgroup the engine gave the container
        // behind after their delete (runsc on cgroup v1 does): remove what is left of it.
        // The built-in runtime's delete removes it itself; no second pass on its exit path.
        let external = c.settings.runtime != crate::runtime::BUILTIN;
        if let Some(m) = external.then(|| crate::top::cgroup_of(self, c)).flatten() {
            if let Err(e) = m.destroy() {
                tracing::warn!("cleanup {}: remove its cgroup: {e}", c.id);
            }
        }
        self.net_teardown(c);
        if !matches!(c.rootfs, RootfsSource::Dir { .. }) {
            if let Err(e) = crate::mount::unmount_rootfs(&[], &self.paths.rootfs_mount(&c.id)) {
                tracing::warn!("cleanup {}: {e}", c.id);
            }
        }
        deleted
    }

    /// Removes a container; a running one only with `force` (it is killed first).
    /// `volumes` also removes its anonymous volumes. Returns its id.
    pub fn remove(&self, needle: &str, force: bool, volumes: bool) -> Result<String> {
        let mut c = self.lookup(needle)?;
        let id = c.id.clone();
        // An exit file means the process has ended and its monitor is finishing the
        // clean-up (`wait` has returned already): not running; let the monitor finish
        // rather than race it.
        if read_exit_file(&self.paths.exit_file(&id)).is_some() {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while c.observe(&self.paths).0 == Status::Running
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
                match self.db()?.get(&id)? {
                    Some(now) => c = now,
                    None => return Ok(id), // --rm: its clean-up removed it
                }
            }
        }
        if c.observe(&self.paths).0 == Status::Running {
            if !force {
                return Err(Error::InvalidState {
                    id,
                    status: Status::Running,
                    what: "cannot remove a running container: stop it first, or use --force",
                });
            }
            self.kill_and_wait(&c, Duration::from_secs(10))?;
        }
        let _lock = ContainerLock::acquire(&self.paths.run_dir(&id))?;
        let Some(c) = self.db()?.get(&id)? else {
            // Removed meanwhile (--rm).
            return Ok(id);
        };
        if c.state.status == Some(Status::Running) || c.state.runtime_leftover {
            // Not removed while the runtime still holds it: nothing would delete it
            // later. The record stays (marked) for another `rm`.
            if let Err(e) = self.release(&c) {
                self.db()?.update(&id, |r| {
                    r.state.status = Some(Status::Exited);
                    r.state.pid = 0;
                    r.state.runtime_leftover = true;
                })?;
                return Err(e);
            }
        }
        self.remove_locked(&c, volumes)?;
        Ok(id)
    }

    /// Removes everything of `c`; the caller holds its lock.
    pub(crate) fn remove_locked(&self, c: &Container, volumes: bool) -> Result<()> {
        let id = &c.id;
        // Also after a crash: whatever the last run left of the network goes now.
        self.net_teardown(c);
        let _ = crate::mount::unmount_rootfs(&[], &self.paths.rootfs_mount(id));
        if let RootfsSource::Snapshot { key, .. } = &c.rootfs {
            match self.store()?.snapshotter().remove(key) {
                Ok(()) => {}
                Err(liana_images::snapshot::SnapshotError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if volumes || c.settings.rm {
            let v = self.volumes()?;
            for n in &c.settings.anonymous_volumes {
                if let Err(e) = v.remove(n) {
                    tracing::warn!("remove volume {n}: {e}");
                }
            }
        }
        let dir = self.paths.container_dir(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io("remove", dir)(e));
            }
        }
        self.keep_exit_code(id);
        let _ = std::fs::remove_dir_all(self.paths.run_dir(id));
        self.db()?.remove(id)?;
        if let Some(n) = &c.settings.net.network {
            self.refresh_hosts(n, Some(id));
        }
        Ok(())
    }

    /// Moves the exit file of a container being removed to `RUNROOT/exits/ID` for a
    /// while, so that a `wait` racing with `--rm` still learns the code.
    fn keep_exit_code(&self, id: &str) {
        let exits = self.paths.runroot.join("exits");
        if std::fs::create_dir_all(&exits).is_err() {
            return;
        }
        let _ = std::fs::rename(self.paths.exit_file(id), exits.join(id));
        if let Ok(rd) = std::fs::read_dir(&exits) {
            let now = SystemTime::now();
            for e in rd.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > EXIT_KEEP);
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Removes every container that is not running; returns their ids.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in self.containers()? {
            if matches!(c.observe(&self.paths).0, Status::Created | Status::Exited) {
                match self.remove(&c.id, false, false) {
                    Ok(id) => out.push(id),
                    Err(Error::NoSuchContainer(_)) => {}
                    Err(e) => tracing::warn!("prune {}: {e}", c.id),
                }
            }
        }
        Ok(out)
    }
}

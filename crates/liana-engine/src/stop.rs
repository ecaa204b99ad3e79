//! `stop`, `kill`, `wait`, `restart`, `rename`.

use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::{process_alive, read_exit_file, Container, Status};

const POLL: Duration = Duration::from_millis(10);

impl Engine {
    /// Waits until the container's init is gone; false on timeout.
    fn wait_init(&self, c: &Container, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !process_alive(c.state.pid, c.state.pid_start) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the monitor (and the cleanup it runs) is gone.
    fn wait_monitor(&self, c: &Container, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Engine::monitor_alive(c) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
        true
    }

    /// SIGKILLs every process of the container and waits for the exit and cleanup.
    pub(crate) fn kill_and_wait(&self, c: &Container, timeout: Duration) -> Result<()> {
        let rt = self.runtime(&c.settings.runtime)?;
        if let Err(e) = rt.kill(&c.id, libc::SIGKILL, true) {
            tracing::debug!("kill {}: {}", c.id, crate::error_chain(&e));
            if process_alive(c.state.pid, c.state.pid_start) {
                // SAFETY: kill takes integers; the pid's start time was checked.
                unsafe { libc::kill(c.state.pid, libc::SIGKILL) };
            }
        }
        if !self.wait_init(c, timeout) {
            return Err(Error::Timeout {
                id: c.id.clone(),
                secs: timeout.as_secs(),
                what: "the container to die",
            });
        }
        self.wait_monitor(c, timeout);
        Ok(())
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds (default: the
    /// container's); returns once the container is cleaned up.
    pub fn stop(&self, needle: &str, timeout: Option<u64>) -> Result<Container> {
        let c = self.lookup(needle)?;
        if c.observe(&self.paths).0 != Status::Running {
            return Ok(c);
        }
        let secs = timeout.unwrap_or(c.settings.stop_timeout);
        let rt = self.runtime(&c.settings.runtime)?;
        if let Err(e) = rt.kill(&c.id, c.settings.stop_signal, false) {
            tracing::debug!("stop signal to {}: {}", c.id, crate::error_chain(&e));
        }
        if !self.wait_init(&c, Duration::from_secs(secs)) {
            tracing::info!(
                "container {} ignored signal {} for {secs} s: killing it",
                c.id,
                c.settings.stop_signal
            );
            self.kill_and_wait(&c, Duration::from_secs(10))?;
        } else {
            self.wait_monitor(&c, Duration::from_secs(10));
        }
        Ok(c)
    }

    /// `kill -s SIGNAL`.
    pub fn kill(&self, needle: &str, signal: i32) -> Result<Container> {
        let c = self.lookup(needle)?;
        let status = c.observe(&self.paths).0;
        if status != Status::Running {
            return Err(Error::InvalidState {
                id: c.id.clone(),
                status,
                what: "can only kill running containers",
            });
        }
        self.runtime(&c.settings.runtime)?
            .kill(&c.id, signal, false)?;
        Ok(c)
    }

    /// `wait`: blocks until the container exits; returns its exit code.
    pub fn wait(&self, needle: &str) -> Result<i32> {
        let id = self.lookup(needle)?.id;
        let kept = self.paths.runroot.join("exits").join(&id);
        loop {
            // The exit file is removed at every start: when present, the last run ended.
            if let Some(e) = read_exit_file(&self.paths.exit_file(&id)) {
                return Ok(e.exit_code);
            }
            match self.db()?.get(&id)? {
                None => {
                    return read_exit_file(&kept)
                        .map(|e| e.exit_code)
                        .ok_or(Error::NoSuchContainer(needle.into()))
                }
                Some(now) => {
                    if let (Status::Exited, code) = now.observe(&self.paths) {
                        return Ok(code.unwrap_or(-1));
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// `restart`: stop (if running), then start.
    pub fn restart(&self, needle: &str, timeout: Option<u64>) -> Result<Container> {
        let c = self.stop(needle, timeout)?;
        // The monitor's cleanup may still hold the lock; start waits for it.
        self.start(&c.id)
    }

    /// `rename`.
    pub fn rename(&self, needle: &str, new: &str) -> Result<()> {
        let c = self.lookup(needle)?;
        let new = crate::ids::validate_name(new)?;
        self.db()?.rename(&c.id, &new)
    }
}

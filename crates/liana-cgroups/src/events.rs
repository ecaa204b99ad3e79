//! OOM notifications for `events`.
//!
//! * v1: an eventfd registered for `memory.oom_control` through
//!   `cgroup.event_control`; the kernel signals it on every OOM in the cgroup
//!   and when the cgroup is removed.
//! * v2: inotify on `memory.events` and `cgroup.events`; an increase of the
//!   `oom_kill` (or `oom`) counter is an OOM, `populated 0` or removal ends it.
//!
//! [`OomWatcher`] is also [`AsFd`], to be polled in the caller's own loop
//! together with a stats interval or a signal fd.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::error::{Error, Result};
use crate::files;
use crate::manager::{Manager, Target};

/// What [`OomWatcher::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// `count` OOM kills (at least one) since the last event.
    Oom {
        /// New OOM events.
        count: u64,
    },
    /// The cgroup was removed or has no process left: no more events.
    Gone,
}

enum Inner {
    V1 {
        efd: EventFd,
        _control: File,
    },
    V2 {
        inotify: Inotify,
        last_oom: u64,
        last_kill: u64,
    },
}

/// Waits for OOM events of one container.
pub struct OomWatcher {
    dir: PathBuf,
    inner: Inner,
}

impl std::fmt::Debug for OomWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::V1 { .. } => "v1",
            Inner::V2 { .. } => "v2",
        };
        f.debug_struct("OomWatcher")
            .field("dir", &self.dir)
            .field("kind", &kind)
            .finish()
    }
}

fn watch_err(dir: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::OomWatch {
        path: dir.to_path_buf(),
        source,
    }
}

impl Manager {
    /// Starts watching for OOM events in the container's memory cgroup.
    pub fn oom_watcher(&self) -> Result<OomWatcher> {
        match self.target("memory", "memory") {
            Some(Target::V1(d)) => OomWatcher::v1(d),
            Some(Target::V2(d)) => OomWatcher::v2(d),
            None => Err(Error::Unsupported {
                key: "memory".into(),
                reason: "the container has no memory cgroup".into(),
            }),
        }
    }
}

impl OomWatcher {
    fn v1(dir: &Path) -> Result<OomWatcher> {
        let err = watch_err(dir);
        let control = File::open(dir.join("memory.oom_control")).map_err(&err)?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(|e| err(e.into()))?;
        let line = format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd());
        files::write_control(dir, "cgroup.event_control", &line)?;
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            inner: Inner::V1 {
                efd,
                _control: control,
            },
        })
    }

    fn v2(dir: &Path) -> Result<OomWatcher> {
        let err = watch_err(dir);
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| err(e.into()))?;
        for f in ["memory.events", "cgroup.events"] {
            inotify
                .add_watch(&dir.join(f), AddWatchFlags::IN_MODIFY)
                .map_err(|e| err(e.into()))?;
        }
        let events = files::read(dir, "memory.events")?;
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            inner: Inner::V2 {
                inotify,
                last_oom: files::keyed_value(&events, "oom").unwrap_or(0),
                last_kill: files::keyed_value(&events, "oom_kill").unwrap_or(0),
            },
        })
    }

    /// Waits for the next event; `None` after `timeout` (`None` waits forever).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Option<OomEvent>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let remaining = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, remaining) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(watch_err(&self.dir)(e.into())),
            }
            if let Some(ev) = self.check()? {
                return Ok(Some(ev));
            }
        }
    }

    fn check(&mut self) -> Result<Option<OomEvent>> {
        let dir = self.dir.clone();
        match &mut self.inner {
            Inner::V1 { efd, .. } => {
                let count = efd.read().map_err(|e| watch_err(&dir)(e.into()))?;
                // The eventfd also fires when the cgroup goes away.
                if !dir.join("memory.oom_control").exists() {
                    return Ok(Some(OomEvent::Gone));
                }
                Ok(Some(OomEvent::Oom { count }))
            }
            Inner::V2 {
                inotify,
                last_oom,
                last_kill,
            } => {
                // Drain; EAGAIN once empty.
                while let Ok(evs) = inotify.read_events() {
                    if evs.is_empty() {
                        break;
                    }
                }
                let Some(events) = files::read_opt(&dir, "memory.events")? else {
                    return Ok(Some(OomEvent::Gone));
                };
                let oom = files::keyed_value(&events, "oom").unwrap_or(0);
                let kill = files::keyed_value(&events, "oom_kill").unwrap_or(0);
                let count = kill
                    .saturating_sub(*last_kill)
                    .max(oom.saturating_sub(*last_oom));
                *last_oom = oom;
                *last_kill = kill;
                if count > 0 {
                    return Ok(Some(OomEvent::Oom { count }));
                }
                let populated = files::read_opt(&dir, "cgroup.events")?
                    .and_then(|s| files::keyed_value(&s, "populated"));
                if populated == Some(0) || populated.is_none() {
                    return Ok(Some(OomEvent::Gone));
                }
                Ok(None)
            }
        }
    }
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::V1 { efd, .. } => efd.as_fd(),
            Inner::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}

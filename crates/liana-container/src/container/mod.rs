//! The container lifecycle as runc's verbs: create, start, run, state, kill, delete,
//! list. Each takes the state root from [`Runtime`] and locks the container's state
//! directory while it changes anything.

mod exec;
mod ops;
mod run;

pub use exec::ExecRequest;
pub use ops::{parse_size, PsFormat, UpdateRequest};

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{self, ContainerId};
use crate::error::{Error, Result};
use crate::hooks::{self, HookState};
use crate::process::create::{self, CreateOptions, Created};
use crate::state::{self, ContainerDir, Saved, Status};

/// Runtime-wide settings (global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// State root (`--root`).
    pub root: PathBuf,
    /// Rootless mode.
    pub rootless: bool,
    /// Cgroup driver (`--cgroup-manager`, `--systemd-cgroup`).
    pub cgroup_driver: liana_cgroups::Driver,
}

/// Flags of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Config file instead of BUNDLE/config.json.
    pub config: Option<PathBuf>,
    /// --console-socket.
    pub console_socket: Option<PathBuf>,
    /// --pid-file.
    pub pid_file: Option<PathBuf>,
    /// --no-pivot.
    pub no_pivot: bool,
    /// --no-new-keyring.
    pub no_new_keyring: bool,
    /// --preserve-fds.
    pub preserve_fds: u32,
    /// The container process's stdin, stdout and stderr, in place of the caller's own
    /// fds 0, 1 and 2 (an engine passing pipes while keeping its terminal). They are
    /// duplicated onto 0, 1 and 2 right after the first fork; the caller keeps
    /// ownership and should open them close-on-exec.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// The state JSON `state` and `list --format json` print (runc's shape).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StateView {
    /// Spec version the runtime implements.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 once stopped).
    pub pid: i32,
    /// Status.
    pub status: Status,
    /// Bundle.
    pub bundle: PathBuf,
    /// Rootfs.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Owner.
    pub owner: String,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Status of a saved container, derived from its processes.
pub fn status_of(dir: &ContainerDir, saved: &Saved, locked_by_us: bool) -> Status {
    if saved.pid <= 0 {
        return if locked_by_us || !lock_free(dir) {
            Status::Creating
        } else {
            Status::Stopped
        };
    }
    if !state::is_alive(saved.pid, saved.pid_start) {
        return Status::Stopped;
    }
    // A created container can be paused too (runc), and resumes to created.
    let frozen = match manager_of(saved) {
        Some(m) if m.exists() => matches!(
            m.freezer_state(),
            Ok(liana_cgroups::FreezerState::Frozen | liana_cgroups::FreezerState::Freezing)
        ),
        _ => crate::freezer::is_frozen(saved.pid),
    };
    if frozen {
        Status::Paused
    } else if dir.fifo_exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// The container's cgroup manager, rebuilt from the state file.
pub fn manager_of(saved: &Saved) -> Option<liana_cgroups::Manager> {
    if saved.cgroup.is_null() {
        return None;
    }
    match serde_json::from_value::<liana_cgroups::CgroupState>(saved.cgroup.clone()) {
        Ok(st) => Some(liana_cgroups::Manager::from_state(st)),
        Err(e) => {
            tracing::warn!("container {}: unreadable cgroup state: {e}", saved.id);
            None
        }
    }
}

/// Every process of the container (its cgroup's, or its pid namespace's).
pub fn container_pids(saved: &Saved) -> Vec<i32> {
    if let Some(m) = manager_of(saved).filter(|m| m.exists()) {
        if let Ok(p) = m.pids() {
            if !p.is_empty() {
                return p;
            }
        }
    }
    crate::freezer::container_pids(saved.pid)
}

fn lock_free(dir: &ContainerDir) -> bool {
    use rustix::fs::{flock, FlockOperation};
    match flock(dir.fd(), FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(dir.fd(), FlockOperation::Unlock);
            true
        }
        Err(_) => false,
    }
}

fn view(saved: &Saved, status: Status) -> StateView {
    StateView {
        oci_version: OCI_VERSION.into(),
        id: saved.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            saved.pid
        },
        status,
        bundle: saved.bundle.clone(),
        rootfs: saved.rootfs.clone(),
        created: saved.created.clone(),
        owner: saved.owner.clone(),
        annotations: saved.annotations.clone(),
    }
}

impl Runtime {
    fn id(&self, id: &str) -> Result<ContainerId> {
        Ok(ContainerId::new(id)?)
    }

    /// Opens without locking, for read-only commands.
    fn peek(&self, id: &ContainerId) -> Result<(ContainerDir, Saved)> {
        let dir = ContainerDir::open_unlocked(&self.root, id)?;
        let saved = dir.load()?.unwrap_or_else(|| placeholder(id));
        Ok((dir, saved))
    }

    /// Opens and locks.
    fn open(&self, id: &ContainerId) -> Result<(ContainerDir, Saved)> {
        let dir = ContainerDir::open(&self.root, id)?;
        let saved = dir.load()?.unwrap_or_else(|| placeholder(id));
        Ok((dir, saved))
    }

    /// `create`: the container's init waits for `start`.
    pub fn create(&self, req: &CreateRequest) -> Result<StateView> {
        let created = self.create_inner(req, false)?;
        Ok(view(&created.saved, Status::Created))
    }

    fn create_inner(&self, req: &CreateRequest, keep_console: bool) -> Result<Created> {
        let id = self.id(&req.id)?;
        let detached_tty = !keep_console && req.console_socket.is_none();
        let cfg = config::load_with(&req.bundle, req.config.as_deref(), |raw| {
            if detached_tty && raw["process"]["terminal"] == serde_json::Value::Bool(true) {
                return Err(config::ConfigError::Invalid {
                    field: "process.terminal".into(),
                    reason: "true, but the runtime will detach: use --console-socket to \
                             receive the pty master"
                        .into(),
                });
            }
            Ok(())
        })?;
        let linux = cfg.spec.linux().as_ref();
        let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::compile(
                s,
                &self.root.join(crate::state::SECCOMP_CACHE_DIR),
            )?),
            None => None,
        };
        let manager = crate::cgroups::manager_for(
            id.as_str(),
            linux
                .and_then(|l| l.cgroups_path().as_ref())
                .and_then(|p| p.to_str()),
            self.cgroup_driver,
            self.rootless,
        )?;
        let resources =
            crate::cgroups::effective_resources(linux.and_then(|l| l.resources().as_ref()));
        let opts = CreateOptions {
            id,
            root: self.root.clone(),
            config: cfg,
            console_socket: req.console_socket.clone(),
            pid_file: req.pid_file.clone(),
            no_pivot: req.no_pivot,
            no_new_keyring: req.no_new_keyring,
            preserve_fds: req.preserve_fds,
            keep_console,
            rootless: self.rootless,
            cgroup: Some((manager, resources)),
            seccomp: seccomp.as_ref(),
            stdio: req.stdio,
        };
        Ok(create::create(opts)?)
    }

    /// `start`: lets a created container's process run.
    pub fn start(&self, id: &str) -> Result<()> {
        let id = self.id(id)?;
        let (dir, saved) = self.open(&id)?;
        start_locked(&dir, &saved)
    }

    /// `state`.
    pub fn state(&self, id: &str) -> Result<StateView> {
        let id = self.id(id)?;
        let (dir, saved) = self.peek(&id)?;
        let status = status_of(&dir, &saved, false);
        Ok(view(&saved, status))
    }

    /// `list`.
    pub fn list(&self) -> Result<Vec<StateView>> {
        let mut out = Vec::new();
        for name in state::list_ids(&self.root)? {
            let Ok(id) = ContainerId::new(&name) else {
                continue;
            };
            match self.peek(&id) {
                Ok((dir, saved)) => {
                    let status = status_of(&dir, &saved, false);
                    out.push(view(&saved, status));
                }
                Err(e) => tracing::warn!("skipping {name}: {e}"),
            }
        }
        Ok(out)
    }

    /// `kill [--all] ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let sig = crate::signals::parse(signal).ok_or_else(|| Error::Signal(signal.into()))?;
        let id = self.id(id)?;
        let (dir, saved) = self.open(&id)?;
        let status = status_of(&dir, &saved, true);
        if all && status == Status::Stopped {
            // As runc: what outlived an init without a pid namespace of its own is still
            // in the cgroup, and `kill --all` is how shims get rid of it.
            if let Some(m) = manager_of(&saved).filter(|m| m.exists()) {
                let signal = nix::sys::signal::Signal::try_from(sig)
                    .map_err(|_| Error::Signal(signal.into()))?;
                m.kill_all(signal)?;
            }
            return Ok(());
        }
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::InvalidState {
                id: id.to_string(),
                status,
                op: "kill it",
            });
        }
        if all {
            if let Some(m) = manager_of(&saved).filter(|m| m.exists()) {
                let signal = nix::sys::signal::Signal::try_from(sig)
                    .map_err(|_| Error::Signal(signal.into()))?;
                m.kill_all(signal)?;
                return Ok(());
            }
            for pid in crate::freezer::container_pids(saved.pid) {
                // SAFETY: kill takes integers.
                unsafe { libc::kill(pid, sig) };
            }
            return Ok(());
        }
        // SAFETY: kill takes integers.
        if unsafe { libc::kill(saved.pid, sig) } != 0 {
            return Err(Error::sys(format!("signal {sig} to pid {}", saved.pid))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// `delete [--force] ID`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let id = self.id(id)?;
        let (dir, saved) = match self.open(&id) {
            // runc: deleting a container that is already gone is fine with --force.
            Err(Error::State(state::StateError::NotFound { .. })) if force => return Ok(()),
            r => r?,
        };
        let status = status_of(&dir, &saved, false);
        match status {
            Status::Stopped | Status::Creating => kill_leftovers(&saved),
            Status::Created => kill_and_wait(&saved),
            Status::Running | Status::Paused if force => kill_and_wait(&saved),
            _ => {
                return Err(Error::InvalidState {
                    id: id.to_string(),
                    status,
                    op: "delete it without --force",
                })
            }
        }
        destroy(dir, &saved)
    }

    /// `delete --regex PATTERN`: deletes every matching container; returns their ids.
    pub fn delete_matching(&self, pattern: &str, force: bool) -> Result<Vec<String>> {
        let re = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::Invalid(format!("invalid --regex {pattern:?}: {e}")))?;
        let mut deleted = Vec::new();
        for name in state::list_ids(&self.root)? {
            if re.is_match(&name) {
                self.delete(&name, force)?;
                deleted.push(name);
            }
        }
        Ok(deleted)
    }
}

fn placeholder(id: &ContainerId) -> Saved {
    Saved {
        version: state::FORMAT_VERSION,
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: PathBuf::new(),
        rootfs: PathBuf::new(),
        created: String::new(),
        owner: String::new(),
        annotations: HashMap::new(),
        external_descriptors: String::new(),
        cgroup: serde_json::Value::Null,
        rootless: false,
        extra_pids: Vec::new(),
    }
}

fn start_locked(dir: &ContainerDir, saved: &Saved) -> Result<()> {
    let status = status_of(dir, saved, true);
    if status != Status::Created {
        return Err(Error::InvalidState {
            id: saved.id.clone(),
            status,
            op: "start it (only a created container can be started)",
        });
    }
    let path = dir.file(state::FIFO_FILE);
    let fifo = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open exec fifo {}", path.display()))(e.into()))?;
    loop {
        let mut pfd = [rustix::event::PollFd::new(
            &fifo,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut pfd, Some(&timeout)) {
            Ok(n) if n > 0 => {
                let mut b = [0u8; 1];
                match rustix::io::read(&fifo, &mut b) {
                    Ok(1) => break,
                    Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
                    Err(e) => return Err(Error::sys("read exec fifo")(e.into())),
                }
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::sys("poll exec fifo")(e.into())),
        }
        if !state::is_alive(saved.pid, saved.pid_start) {
            return Err(Error::InvalidState {
                id: saved.id.clone(),
                status: Status::Stopped,
                op: "start it (its init exited before start)",
            });
        }
    }
    let _ = rustix::fs::unlinkat(dir.fd(), state::FIFO_FILE, rustix::fs::AtFlags::empty());
    let spec = load_spec(dir);
    if let Some(hooks) = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststart().clone())
    {
        let st = HookState {
            oci_version: OCI_VERSION,
            id: &saved.id,
            status: "running",
            pid: Some(saved.pid),
            bundle: &saved.bundle,
            annotations: &saved.annotations,
        };
        if let Err(e) = hooks::run("poststart", &hooks, &st) {
            tracing::warn!("{}", crate::process::chain(&e));
        }
    }
    Ok(())
}

fn load_spec(dir: &ContainerDir) -> Option<oci_spec::runtime::Spec> {
    let bytes = std::fs::read(dir.file(state::CONFIG_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// SIGKILLs the container's processes and waits until the init is gone (thawing a
/// frozen cgroup that would keep it from dying).
fn kill_and_wait(saved: &Saved) {
    let manager = manager_of(saved).filter(|m| m.exists());
    if let Some(m) = &manager {
        if let Err(e) = m.kill_all(nix::sys::signal::Signal::SIGKILL) {
            tracing::debug!("kill cgroup of {}: {e}", saved.id);
        }
    }
    for pid in container_pids(saved)
        .into_iter()
        .chain(std::iter::once(saved.pid))
    {
        // SAFETY: kill takes integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut thawed = false;
    let started = Instant::now();
    let busy = |m: &Option<liana_cgroups::Manager>| {
        state::is_alive(saved.pid, saved.pid_start)
            || m.as_ref()
                .is_some_and(|m| m.pids().is_ok_and(|p| !p.is_empty()))
    };
    while busy(&manager) && Instant::now() < deadline {
        if !thawed && started.elapsed() > Duration::from_millis(200) {
            // SIGKILL does not take effect in a frozen cgroup.
            if let Some(m) = &manager {
                let _ = m.thaw();
            }
            crate::freezer::thaw_pid(saved.pid);
            thawed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs whatever is still in the cgroup of a container whose init is gone and waits
/// until the cgroup is empty, so that it can be removed: without a pid namespace of its
/// own, processes outlive the init (runc kills them on delete too), and after a crash
/// in the middle of `create` an init whose pid was never saved may still be there.
/// Signals through the cgroup only: the saved pid may belong to another process by now.
fn kill_leftovers(saved: &Saved) {
    let Some(m) = manager_of(saved).filter(|m| m.exists()) else {
        return;
    };
    let busy = || m.pids().is_ok_and(|p| !p.is_empty());
    if !busy() {
        return;
    }
    if let Err(e) = m.kill_all(nix::sys::signal::Signal::SIGKILL) {
        tracing::debug!("kill what is left in the cgroup of {}: {e}", saved.id);
    }
    let started = Instant::now();
    let mut thawed = false;
    while busy() && started.elapsed() < Duration::from_secs(10) {
        if !thawed && started.elapsed() > Duration::from_millis(200) {
            // SIGKILL does not take effect in a frozen cgroup.
            let _ = m.thaw();
            thawed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Removes the cgroups, runs poststop hooks and removes the state directory.
fn destroy(dir: ContainerDir, saved: &Saved) -> Result<()> {
    if let Some(m) = manager_of(saved) {
        m.destroy()?;
    }
    let spec = load_spec(&dir);
    if let Some(hooks) = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().clone())
    {
        let st = HookState {
            oci_version: OCI_VERSION,
            id: &saved.id,
            status: "stopped",
            pid: None,
            bundle: &saved.bundle,
            annotations: &saved.annotations,
        };
        if let Err(e) = hooks::run("poststop", &hooks, &st) {
            tracing::warn!("{}", crate::process::chain(&e));
        }
    }
    dir.remove()?;
    Ok(())
}

pub use run::RunOutcome;

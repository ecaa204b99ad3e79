//! `exec`: run another process in a running container, with the container's
//! namespaces, cgroup, seccomp, capabilities, rlimits and AppArmor profile unless the
//! request overrides them.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, User};

use super::run::{forwarded_signals, wait};
use super::{manager_of, status_of, RunOutcome, Runtime};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::process::exec::{self, ExecOptions};
use crate::process::setup::ProcessPlan;
use crate::state::{self, Status};

/// Flags of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Container id.
    pub id: String,
    /// `--process FILE`: the whole process as JSON.
    pub process: Option<PathBuf>,
    /// Command and arguments (ignored with --process).
    pub args: Vec<String>,
    /// `--env`, appended to the container's.
    pub env: Vec<String>,
    /// `--cwd`.
    pub cwd: Option<String>,
    /// `--user uid[:gid]`.
    pub user: Option<String>,
    /// `--additional-gids`.
    pub additional_gids: Vec<u32>,
    /// `--cap`, added to the bounding, effective and permitted sets.
    pub caps: Vec<String>,
    /// `--no-new-privs`.
    pub no_new_privs: bool,
    /// `--apparmor`.
    pub apparmor: Option<String>,
    /// `--process-label`.
    pub process_label: Option<String>,
    /// `--tty`.
    pub tty: bool,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--detach`.
    pub detach: bool,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
    /// The process's stdin, stdout and stderr instead of the caller's fds 0, 1, 2
    /// (see [`super::CreateRequest::stdio`]).
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::Invalid(format!("--user {s:?}: expected UID[:GID] with numeric ids"));
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// The process to run: `--process`, or the container's process with the flags applied.
fn build_process(req: &ExecRequest, cfg: &Config) -> Result<Process> {
    let mut p = if let Some(path) = &req.process {
        let bytes = std::fs::read(path).map_err(Error::sys(format!(
            "read --process file {}",
            path.display()
        )))?;
        config::parse_process(path, &bytes)?
    } else {
        let mut p = cfg.spec.process().clone().unwrap_or_default();
        if req.args.is_empty() {
            return Err(Error::Invalid("exec: no command given".into()));
        }
        p.set_args(Some(req.args.clone()));
        p.set_terminal(Some(false));
        if let Some(c) = &req.cwd {
            p.set_cwd(c.into());
        }
        p
    };
    if req.tty {
        p.set_terminal(Some(true));
    }
    if !req.env.is_empty() {
        // Later values win: replace a variable the container already sets.
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &req.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &req.user {
        let (uid, gid) = parse_user(u)?;
        let mut user: User = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(user.gid()));
        p.set_user(user);
    }
    if !req.additional_gids.is_empty() {
        let mut user = p.user().clone();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&req.additional_gids);
        user.set_additional_gids(Some(gids));
        p.set_user(user);
    }
    if req.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &req.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &req.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !req.caps.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_else(empty_caps);
        for name in &req.caps {
            let parsed: std::result::Result<Capability, _> =
                serde_json::from_value(serde_json::Value::String(name.clone()));
            let Ok(cap) = parsed else {
                tracing::warn!("exec --cap {name}: unknown capability, ignored");
                continue;
            };
            let add = |set: &Option<Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid("exec: the process has no args".into()));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::Invalid(format!(
            "exec: cwd {:?} is not an absolute path",
            p.cwd()
        )));
    }
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    let none: Capabilities = HashSet::new();
    c.set_bounding(Some(none.clone()));
    c.set_effective(Some(none.clone()));
    c.set_inheritable(Some(none.clone()));
    c.set_permitted(Some(none.clone()));
    c.set_ambient(Some(none));
    c
}

impl Runtime {
    /// `exec`: returns the process's exit status, or `Detached`.
    pub fn exec(&self, req: &ExecRequest) -> Result<RunOutcome> {
        let id = self.id(&req.id)?;
        let (dir, saved) = self.peek(&id)?;
        let status = status_of(&dir, &saved, false);
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if req.ignore_paused => {}
            Status::Paused => {
                return Err(Error::InvalidState {
                    id: id.to_string(),
                    status,
                    op: "exec in it (use --ignore-paused)",
                })
            }
            _ => {
                return Err(Error::InvalidState {
                    id: id.to_string(),
                    status,
                    op: "exec in it",
                })
            }
        }
        let path = dir.file(state::CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(Error::sys(format!("read {}", path.display())))?;
        let spec = config::parse(&path, &bytes)?;
        let cfg = Config {
            spec,
            bundle: saved.bundle.clone(),
            rootfs: saved.rootfs.clone(),
        };
        let process = build_process(req, &cfg)?;
        if process.terminal().unwrap_or(false) && req.detach && req.console_socket.is_none() {
            return Err(Error::Invalid(
                "exec --tty --detach needs --console-socket to receive the pty master".into(),
            ));
        }
        let mut plan = ProcessPlan::from_spec(&process, cfg.spec.annotations().as_ref());
        plan.preserve_fds = req.preserve_fds;
        let seccomp = match cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::compile(
                s,
                &self.root.join(crate::state::SECCOMP_CACHE_DIR),
            )?),
            None => None,
        };
        let manager = manager_of(&saved).filter(|m| m.exists());
        let mask = forwarded_signals();
        if !req.detach {
            mask.thread_block()
                .map_err(|e| Error::sys("block signals")(e.into()))?;
        }
        let started = exec::start(ExecOptions {
            config: &cfg,
            id: &id,
            init_pid: saved.pid,
            plan,
            console_socket: req.console_socket.as_deref(),
            cgroup: manager.as_ref(),
            seccomp: seccomp.as_ref(),
            stdio: req.stdio,
        })?;
        if let Some(p) = &req.pid_file {
            state::write_pid_file(p, started.pid)?;
        }
        if req.detach {
            return Ok(RunOutcome::Detached);
        }
        Ok(RunOutcome::Exited(wait(
            started.pid,
            started.console,
            &mask,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:10").unwrap(), (1000, Some(10)));
        assert!(parse_user("bob").is_err());
        assert!(parse_user("1:x").is_err());
    }
}

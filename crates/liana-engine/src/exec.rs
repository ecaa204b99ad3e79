//! `exec`: another process in a running container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::thread::JoinHandle;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::options::ExecOptions;
use crate::record::{Container, Status};
use crate::runtime::ExecProcess;

impl Engine {
    /// The host path of a container's root file system, from its bundle.
    pub(crate) fn rootfs_path(&self, c: &Container) -> PathBuf {
        let cfg = std::fs::read(self.paths.container_dir(&c.id).join("config.json")).ok();
        cfg.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["root"]["path"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| self.paths.rootfs_mount(&c.id))
    }

    /// Runs a process in a running container; returns its exit code (0 when detached).
    pub fn exec(&self, needle: &str, o: &ExecOptions) -> Result<i32> {
        let c = self.lookup(needle)?;
        let status = c.observe(&self.paths).0;
        if status != Status::Running {
            return Err(Error::InvalidState {
                id: c.id.clone(),
                status,
                what: "can only exec in running containers",
            });
        }
        if o.command.is_empty() {
            return Err(Error::flag("exec", "no command given"));
        }
        let user = match &o.user {
            Some(u) => {
                let root = self.rootfs_path(&c);
                let passwd = crate::spec::process::read_in_root(&root, "/etc/passwd");
                let group = crate::spec::process::read_in_root(&root, "/etc/group");
                Some(crate::spec::process::resolve_user(
                    u,
                    passwd.as_deref(),
                    group.as_deref(),
                )?)
            }
            None => None,
        };
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(Error::io("open", "/dev/null"))?;
        let n = null.as_raw_fd();
        let builtin = c.settings.runtime == crate::runtime::BUILTIN;
        // External runtimes get pipes, copied here: some (runsc) make the stdio they
        // are given non-blocking, which would break the caller's terminal or pipe.
        let relay = if !builtin && !o.detach && !o.tty {
            Some(Relay::new(o.interactive)?)
        } else {
            None
        };
        let stdio = if o.detach {
            Some([n, n, n])
        } else if let Some(r) = &relay {
            Some([
                r.stdin.as_ref().map_or(n, |f| f.as_raw_fd()),
                r.stdout.as_raw_fd(),
                r.stderr.as_raw_fd(),
            ])
        } else if !o.interactive && !o.tty {
            Some([n, 1, 2])
        } else {
            None
        };
        let p = ExecProcess {
            args: o.command.clone(),
            env: o
                .env
                .iter()
                .filter_map(|e| crate::spec::process::expand_env(e))
                .collect(),
            cwd: o.workdir.clone(),
            user: user.as_ref().map(|u| (u.uid, u.gid)),
            additional_gids: user.map(|u| u.additional_gids).unwrap_or_default(),
            tty: o.tty,
            detach: o.detach,
            stdio,
            privileged: o.privileged,
        };
        let rt = self.runtime(&c.settings.runtime)?;
        let started = relay.map(Relay::start);
        let res = rt.exec(&c.id, &self.paths.container_dir(&c.id), &p);
        if let Some((copies, ends)) = started {
            // Our copies of the process's ends go, so the copies see EOF.
            drop(ends);
            copies.finish();
        }
        match res {
            Ok(code) => Ok(code.unwrap_or(0)),
            Err(e) => {
                let message = crate::error_chain(&e);
                let lower = message.to_ascii_lowercase();
                let code = if lower.contains("no such file") || lower.contains("not found") {
                    127
                } else if lower.contains("permission denied") {
                    126
                } else {
                    return Err(e.into());
                };
                Err(Error::Exec {
                    id: c.id,
                    code,
                    message,
                })
            }
        }
    }
}

/// Pipes between an external runtime's exec and our stdio.
struct Relay {
    /// The process's ends.
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    /// Our ends.
    ours: [Option<OwnedFd>; 3],
}

/// The copying threads of a [`Relay`].
struct Copies {
    out: Vec<JoinHandle<()>>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe")(e.into()))
}

fn copy(from: OwnedFd, to: i32) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = liana_monitor::sys::read(from.as_raw_fd(), &mut buf) {
        if n == 0 || liana_monitor::sys::write_all(to, &buf[..n]).is_err() {
            break;
        }
    }
}

impl Relay {
    fn new(stdin: bool) -> Result<Self> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = if stdin {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        Ok(Relay {
            stdin: in_r,
            stdout: out_w,
            stderr: err_w,
            ours: [in_w, Some(out_r), Some(err_r)],
        })
    }

    /// Starts copying; returns the copies and the process's ends, which the caller
    /// keeps until the runtime has them.
    fn start(mut self) -> (Copies, [Option<OwnedFd>; 3]) {
        let mut out = Vec::new();
        if let Some(r) = self.ours[1].take() {
            out.push(std::thread::spawn(move || copy(r, 1)));
        }
        if let Some(r) = self.ours[2].take() {
            out.push(std::thread::spawn(move || copy(r, 2)));
        }
        if let Some(w) = self.ours[0].take() {
            // Not joined: it may sit in read(0) after the process is gone.
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = liana_monitor::sys::read(0, &mut buf) {
                    if n == 0 || liana_monitor::sys::write_all(w.as_raw_fd(), &buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        (
            Copies { out },
            [self.stdin, Some(self.stdout), Some(self.stderr)],
        )
    }
}

impl Copies {
    fn finish(self) {
        for h in self.out {
            let _ = h.join();
        }
    }
}

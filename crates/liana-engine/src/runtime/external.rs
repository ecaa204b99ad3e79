//! External OCI runtimes, driven by runc's command line:
//! `RUNTIME [ARGS] --root DIR create --bundle B --pid-file F [--console-socket S] ID`,
//! `start ID`, `kill [--all] ID SIG`, `delete [--force] ID`,
//! `exec --process F [--tty] [--detach] ID`, `ps --format json ID`.
//!
//! Rootless, the runtime runs inside the user namespace of [`super::userns`], as it
//! would inside podman's rootless namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ExecProcess, OciRuntime, RuntimeContext, RuntimeError};

/// See the module documentation.
#[derive(Debug)]
pub struct External {
    name: String,
    path: PathBuf,
    args: Vec<String>,
    ctx: RuntimeContext,
    /// Namespace fds commands join (kept open until the runtime is dropped).
    keep: std::cell::RefCell<Vec<super::userns::Namespaces>>,
}

fn dup(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

impl External {
    /// A runtime binary with its global flags.
    pub fn new(name: &str, path: PathBuf, args: Vec<String>, ctx: RuntimeContext) -> Self {
        External {
            name: name.into(),
            path,
            args,
            ctx,
            keep: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn command(&self, op: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.args)
            .arg("--root")
            .arg(&self.ctx.state_root)
            .args(op);
        if self.ctx.rootless {
            match super::userns::ensure(&self.ctx.runroot) {
                Ok(ns) => {
                    let (u, m) = (ns.user.as_raw_fd(), ns.mnt.as_raw_fd());
                    // SAFETY: the closure runs in the forked child before exec and only
                    // makes system calls; the fds stay open in the Command until spawn.
                    unsafe {
                        c.pre_exec(move || super::userns::join(u, m));
                    }
                    self.keep.borrow_mut().push(ns);
                }
                Err(e) => tracing::warn!("rootless user namespace for {}: {e}", self.name),
            }
        }
        c
    }

    fn spawn_err(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
        move |source| RuntimeError::Spawn {
            runtime: self.path.clone(),
            op,
            source,
        }
    }

    /// Runs `op`, capturing its output; fails on a non-zero exit.
    fn run(&self, op: &'static str, args: &[&str]) -> Result<Vec<u8>, RuntimeError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(self.spawn_err(op))?;
        if !out.status.success() {
            return Err(RuntimeError::Failed {
                runtime: self.path.clone(),
                op,
                status: out.status.to_string(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }
}

impl OciRuntime for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32, RuntimeError> {
        std::fs::create_dir_all(&self.ctx.state_root).map_err(self.spawn_err("create"))?;
        let pid_file = bundle.join("pidfile");
        let _ = std::fs::remove_file(&pid_file);
        let bundle_s = bundle.to_string_lossy().into_owned();
        let pid_s = pid_file.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &bundle_s, "--pid-file", &pid_s];
        let cs;
        if let Some(s) = console_socket {
            cs = s.to_string_lossy().into_owned();
            args.extend(["--console-socket", &cs]);
        }
        args.push(id);
        let mut c = self.command(&args);
        let [i, o, e] = stdio;
        c.stdin(dup(i).map_err(self.spawn_err("create"))?)
            .stdout(dup(o).map_err(self.spawn_err("create"))?)
            .stderr(dup(e).map_err(self.spawn_err("create"))?);
        let status = c.status().map_err(self.spawn_err("create"))?;
        if !status.success() {
            return Err(RuntimeError::Failed {
                runtime: self.path.clone(),
                op: "create",
                status: status.to_string(),
                message: String::new(),
            });
        }
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        text.trim().parse().map_err(|_| RuntimeError::Output {
            runtime: self.path.clone(),
            op: "create (pid file)",
            output: text,
        })
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("start", &["start", id]).map(|_| ())
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, &sig]);
        self.run("kill", &args).map(|_| ())
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.run("delete", &args).map(|_| ())
    }

    fn exec(&self, id: &str, bundle: &Path, p: &ExecProcess) -> Result<Option<i32>, RuntimeError> {
        let spec_text =
            std::fs::read(bundle.join("config.json")).map_err(self.spawn_err("exec"))?;
        let spec: serde_json::Value =
            serde_json::from_slice(&spec_text).map_err(|e| RuntimeError::Output {
                runtime: self.path.clone(),
                op: "exec (read config.json)",
                output: e.to_string(),
            })?;
        let mut proc = spec["process"].clone();
        proc["args"] = serde_json::json!(p.args);
        proc["terminal"] = serde_json::json!(p.tty);
        let mut env: Vec<String> = serde_json::from_value(proc["env"].clone()).unwrap_or_default();
        for e in &p.env {
            crate::spec::process::set_env(&mut env, e.clone());
        }
        proc["env"] = serde_json::json!(env);
        if let Some(c) = &p.cwd {
            proc["cwd"] = serde_json::json!(c);
        }
        if let Some((u, g)) = p.user {
            proc["user"] =
                serde_json::json!({"uid": u, "gid": g, "additionalGids": p.additional_gids});
        }
        if p.privileged {
            let all = crate::spec::security::kernel_caps();
            proc["capabilities"] =
                serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        let file = bundle.join(format!("exec-{}.json", crate::ids::new_id()));
        std::fs::write(
            &file,
            serde_json::to_vec(&proc).expect("process serializes"),
        )
        .map_err(self.spawn_err("exec"))?;
        let file_s = file.to_string_lossy().into_owned();
        let mut args = vec!["exec", "--process", &file_s];
        if p.tty {
            args.push("--tty");
        }
        if p.detach {
            args.push("--detach");
        }
        args.push(id);
        let mut c = self.command(&args);
        if let Some([i, o, e]) = p.stdio {
            c.stdin(dup(i).map_err(self.spawn_err("exec"))?)
                .stdout(dup(o).map_err(self.spawn_err("exec"))?)
                .stderr(dup(e).map_err(self.spawn_err("exec"))?);
        }
        let status = c.status();
        let _ = std::fs::remove_file(&file);
        let status = status.map_err(self.spawn_err("exec"))?;
        if p.detach {
            if !status.success() {
                return Err(RuntimeError::Failed {
                    runtime: self.path.clone(),
                    op: "exec",
                    status: status.to_string(),
                    message: String::new(),
                });
            }
            return Ok(None);
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(Some(match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 1,
        }))
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let out = self.run("ps", &["ps", "--format", "json", id])?;
        serde_json::from_slice(&out).map_err(|_| RuntimeError::Output {
            runtime: self.path.clone(),
            op: "ps",
            output: String::from_utf8_lossy(&out).into_owned(),
        })
    }
}

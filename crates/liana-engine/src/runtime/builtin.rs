//! The built-in runtime: [`liana_container::Runtime`] called in this process.

use std::os::fd::RawFd;
use std::path::Path;

use liana_container::{CreateRequest, ExecRequest, PsFormat, RunOutcome, Runtime};

use super::{ExecProcess, OciRuntime, RuntimeContext, RuntimeError, BUILTIN};

/// See the module documentation.
#[derive(Debug)]
pub struct Builtin {
    rt: Runtime,
}

impl Builtin {
    /// The runtime with its state under `ctx.state_root`.
    pub fn new(ctx: RuntimeContext) -> Self {
        Builtin {
            rt: Runtime {
                root: ctx.state_root,
                rootless: ctx.rootless,
                cgroup_driver: if ctx.cgroups {
                    liana_cgroups::Driver::Cgroupfs
                } else {
                    liana_cgroups::Driver::Disabled
                },
            },
        }
    }
}

fn err(op: &'static str, id: &str) -> impl FnOnce(liana_container::Error) -> RuntimeError {
    let id = id.to_string();
    move |source| RuntimeError::Builtin { op, id, source }
}

impl OciRuntime for Builtin {
    fn name(&self) -> &str {
        BUILTIN
    }

    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [RawFd; 3],
        console_socket: Option<&Path>,
    ) -> Result<i32, RuntimeError> {
        let req = CreateRequest {
            id: id.into(),
            bundle: bundle.into(),
            console_socket: console_socket.map(Into::into),
            stdio: Some(stdio),
            ..Default::default()
        };
        Ok(self.rt.create(&req).map_err(err("create", id))?.pid)
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.rt.start(id).map_err(err("start", id))
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        self.rt
            .kill(id, &signal.to_string(), all)
            .map_err(err("kill", id))
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        self.rt.delete(id, force).map_err(err("delete", id))
    }

    fn exec(&self, id: &str, _bundle: &Path, p: &ExecProcess) -> Result<Option<i32>, RuntimeError> {
        let caps = if p.privileged {
            crate::spec::security::kernel_caps()
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            Vec::new()
        };
        let req = ExecRequest {
            id: id.into(),
            args: p.args.clone(),
            env: p.env.clone(),
            cwd: p.cwd.clone(),
            user: p.user.map(|(u, g)| format!("{u}:{g}")),
            additional_gids: p.additional_gids.clone(),
            caps,
            tty: p.tty,
            detach: p.detach,
            stdio: p.stdio,
            ..Default::default()
        };
        match self.rt.exec(&req).map_err(err("exec in", id))? {
            RunOutcome::Detached => Ok(None),
            RunOutcome::Exited(c) => Ok(Some(c)),
        }
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let out = self
            .rt
            .ps(id, PsFormat::Json, &[])
            .map_err(err("list processes of", id))?;
        serde_json::from_str(&out).map_err(|_| RuntimeError::Output {
            runtime: BUILTIN.into(),
            op: "ps",
            output: out,
        })
    }
}

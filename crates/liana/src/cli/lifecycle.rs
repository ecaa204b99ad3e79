//! `stop`, `kill`, `restart`, `wait`, `rm`, `rename`, `container prune`,
//! `container cleanup`.

// Engine errors carry their context by design (see liana-engine); they are only
// passed through here.
#![allow(clippy::result_large_err)]

use clap::Args;

use super::env::HostEnv;

/// Containers and a timeout.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for the stop signal before SIGKILL (default: the container's).
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Containers.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short, long)]
    pub force: bool,
    /// Also remove anonymous volumes.
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Container.
    pub container: String,
    /// New name.
    pub name: String,
}

/// `container cleanup` (run by the monitor).
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Container ID.
    pub id: String,
}

/// `container prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (there is no prompt; accepted for compatibility).
    #[arg(short, long)]
    pub force: bool,
}

fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> liana_engine::Result<()>,
) -> anyhow::Result<i32> {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {}", liana_engine::error_chain(&e));
                code = if e.kind() == liana_engine::ErrorKind::NotFound {
                    1
                } else {
                    super::EXIT_FAILURE
                };
            }
        }
    }
    Ok(code)
}

/// `stop`.
pub fn stop(env: &HostEnv, a: StopArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    each(&a.containers, |c| e.stop(c, a.time).map(|_| ()))
}

/// `kill`.
pub fn kill(env: &HostEnv, a: KillArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    let sig = liana_engine::create::parse_signal(&a.signal)
        .ok_or_else(|| anyhow::anyhow!("invalid signal {:?}", a.signal))?;
    each(&a.containers, |c| e.kill(c, sig).map(|_| ()))
}

/// `restart`.
pub fn restart(env: &HostEnv, a: StopArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    each(&a.containers, |c| e.restart(c, a.time).map(|_| ()))
}

/// `wait`: prints each exit code.
pub fn wait(env: &HostEnv, a: ContainersArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    let mut last = 0;
    for c in &a.containers {
        let code = e.wait(c)?;
        println!("{code}");
        last = code;
    }
    let _ = last;
    Ok(0)
}

/// `rm`.
pub fn rm(env: &HostEnv, a: RmArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    each(&a.containers, |c| {
        e.remove(c, a.force, a.volumes).map(|_| ())
    })
}

/// `rename`.
pub fn rename(env: &HostEnv, a: RenameArgs) -> anyhow::Result<()> {
    Ok(env.engine()?.rename(&a.container, &a.name)?)
}

/// `container prune`.
pub fn prune(env: &HostEnv, _a: PruneArgs) -> anyhow::Result<()> {
    for id in env.engine()?.prune()? {
        println!("{id}");
    }
    Ok(())
}

/// `container cleanup`.
pub fn cleanup(env: &HostEnv, a: CleanupArgs) -> anyhow::Result<()> {
    Ok(env.engine()?.cleanup(&a.id)?)
}

//! `logs`, `exec`, `attach`, `cp`.

use clap::Args;
use liana_engine::attach::AttachEnd;
use liana_engine::cp::parse_cp_path;
use liana_engine::logs::LogsOptions;
use liana_engine::ExecOptions;

use super::env::HostEnv;

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Container.
    pub container: String,
}

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Give the process every capability.
    #[arg(long)]
    pub privileged: bool,
    /// Container.
    pub container: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Container.
    pub container: String,
}

/// `cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: CONTAINER:PATH or a host path.
    pub src: String,
    /// Destination: CONTAINER:PATH or a host path.
    pub dest: String,
}

/// `logs`.
pub fn logs(env: &HostEnv, a: LogsArgs) -> anyhow::Result<()> {
    let e = env.engine()?;
    let o = LogsOptions {
        follow: a.follow,
        tail: a.tail,
        timestamps: a.timestamps,
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    Ok(e.logs(&a.container, o, &mut out, &mut err)?)
}

/// `exec`: the process's exit code.
pub fn exec(env: &HostEnv, a: ExecArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    let o = ExecOptions {
        command: a.command,
        interactive: a.interactive,
        tty: a.tty,
        detach: a.detach,
        env: a.env,
        user: a.user,
        workdir: a.workdir,
        privileged: a.privileged,
    };
    Ok(e.exec(&a.container, &o)?)
}

/// `attach`: the container's exit code (0 when detached).
pub fn attach(env: &HostEnv, a: AttachArgs) -> anyhow::Result<i32> {
    match env.engine()?.attach(&a.container, !a.no_stdin)? {
        AttachEnd::Exited(c) => Ok(c),
        AttachEnd::Detached => {
            eprintln!("\r\nread escape sequence");
            Ok(0)
        }
    }
}

/// `cp`.
pub fn cp(env: &HostEnv, a: CpArgs) -> anyhow::Result<()> {
    Ok(env
        .engine()?
        .copy(&parse_cp_path(&a.src), &parse_cp_path(&a.dest))?)
}

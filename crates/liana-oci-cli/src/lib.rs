//! Command-line arguments of `liana-runtime`, shaped like runc's (and crun's where
//! podman relies on them). One struct per verb; the binary maps each to a library call.
//!
//! Nothing here does work: parsing only, so other front ends (tests, wrappers) can reuse
//! the exact flag set.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Global flags shared by every verb (runc's, plus crun's `--cgroup-manager`).
#[derive(Debug, Parser)]
#[command(
    name = "liana-runtime",
    about = "liana-runtime: an OCI runtime-spec runtime, a drop-in for runc",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (default /run/liana, or
    /// $XDG_RUNTIME_DIR/liana for an unprivileged user).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of the --log file.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Enable debug logging.
    #[arg(long)]
    pub debug: bool,

    /// Manage cgroups through systemd (runc's flag).
    #[arg(long)]
    pub systemd_cgroup: bool,

    /// Cgroup manager: cgroupfs, systemd or disabled (crun's flag).
    #[arg(long, value_enum)]
    pub cgroup_manager: Option<CgroupManager>,

    /// Treat the runtime as rootless: auto (detect), true or false.
    #[arg(long, value_enum, default_value_t = Rootless::Auto)]
    pub rootless: Rootless,

    /// Path to criu (accepted for runc compatibility; checkpointing is not supported).
    #[arg(long, hide = true)]
    pub criu: Option<PathBuf>,

    /// Print the version.
    #[arg(short = 'v', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: {"level","msg","time"}, as runc writes.
    Json,
}

/// Cgroup manager selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CgroupManager {
    /// Write cgroupfs directly.
    Cgroupfs,
    /// Ask systemd over D-Bus.
    Systemd,
    /// Do not use cgroups at all.
    Disabled,
}

/// `--rootless` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    /// Detect from the effective uid and the user namespace.
    Auto,
    /// Force rootless behaviour.
    True,
    /// Force rootful behaviour.
    False,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new specification file (config.json).
    Spec(Spec),
    /// Create a container; its process waits for `start`.
    Create(Create),
    /// Start the user process of a created container.
    Start(Start),
    /// Create and start a container.
    Run(Run),
    /// Print the state of a container as JSON.
    State(State),
    /// Send a signal to the container's init process.
    Kill(Kill),
    /// Delete a container and the resources it holds.
    Delete(Delete),
    /// List containers.
    List(List),
    /// Run a new process inside a container.
    Exec(Box<Exec>),
    /// List the processes running inside a container.
    Ps(Ps),
    /// Suspend all processes of a container.
    Pause(Id),
    /// Resume all processes of a paused container.
    Resume(Id),
    /// Update the resource limits of a running container.
    Update(Box<Update>),
    /// Print container events and statistics.
    Events(Events),
    /// Print the features this runtime implements (runtime-spec features.md).
    Features,
}

/// A single container id.
#[derive(Debug, Args)]
pub struct Id {
    /// Container id.
    pub id: String,
}

/// `spec`
#[derive(Debug, Args)]
pub struct Spec {
    /// Bundle directory in which to write config.json.
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Generate a configuration for a rootless container.
    #[arg(long)]
    pub rootless: bool,
}

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory (default: current directory).
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Configuration file to use instead of BUNDLE/config.json (crun's flag).
    #[arg(short = 'f', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket that receives the master end of the console pty.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root to jail the process (MS_MOVE + chroot instead).
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors (3..3+N) to the container.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// `create`
#[derive(Debug, Args)]
pub struct Create {
    #[command(flatten)]
    pub args: CreateArgs,
}

/// `run`
#[derive(Debug, Args)]
pub struct Run {
    #[command(flatten)]
    pub args: CreateArgs,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
}

/// `start`
#[derive(Debug, Args)]
pub struct Start {
    /// Container id.
    pub id: String,
}

/// `state`
#[derive(Debug, Args)]
pub struct State {
    /// Container id.
    pub id: String,
}

/// `kill`
#[derive(Debug, Args)]
pub struct Kill {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (with or without SIG) or number; default SIGTERM.
    pub signal: Option<String>,
}

/// `delete`
#[derive(Debug, Args)]
pub struct Delete {
    /// Kill the container first if it is still running.
    #[arg(short, long)]
    pub force: bool,
    /// Treat ID as a regular expression and delete every matching container (crun's flag).
    #[arg(short, long)]
    pub regex: bool,
    /// Container id.
    pub id: String,
}

/// Output format of `list` and `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// `list`
#[derive(Debug, Args)]
pub struct List {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only container ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `exec`
#[derive(Debug, Args)]
pub struct Exec {
    /// Unix socket that receives the master end of the console pty.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// User as uid[:gid].
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// JSON file with the process to run (runtime-spec process object).
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Detach from the process.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process pid to.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label of the process.
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability to the process's sets.
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the process.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in this sub-cgroup of the container.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,
    /// Allow exec into a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ps`
#[derive(Debug, Args)]
pub struct Ps {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Container id.
    pub id: String,
    /// Options passed to ps(1).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update`
#[derive(Debug, Args)]
pub struct Update {
    /// JSON file with linux.resources to apply ("-" for stdin).
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10..1000).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds; -1 for unlimited.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period in microseconds.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPUs allowed (e.g. 0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g accepted); -1 for unlimited.
    #[arg(short, long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited.
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids; -1 for unlimited.
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Kernel memory limit (ignored, as runc).
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    /// Kernel memory TCP limit (ignored, as runc).
    #[arg(long, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long, hide = true)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long, hide = true)]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

/// `events`
#[derive(Debug, Args)]
pub struct Events {
    /// Print statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn crun_style_invocation_parses() {
        let cli = Cli::try_parse_from([
            "liana-runtime",
            "--cgroup-manager",
            "cgroupfs",
            "--root",
            "/tmp/r",
            "run",
            "--config",
            "config.json",
            "--preserve-fds",
            "3",
            "--detach",
            "ctr",
        ])
        .unwrap();
        assert_eq!(cli.cgroup_manager, Some(CgroupManager::Cgroupfs));
        match cli.command {
            Some(Command::Run(r)) => {
                assert!(r.detach);
                assert_eq!(r.args.preserve_fds, 3);
                assert_eq!(r.args.id, "ctr");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn kill_accepts_signal_and_all() {
        let cli = Cli::try_parse_from(["liana-runtime", "kill", "--all", "c1", "KILL"]).unwrap();
        match cli.command {
            Some(Command::Kill(k)) => {
                assert!(k.all);
                assert_eq!(k.signal.as_deref(), Some("KILL"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn exec_keeps_command_flags() {
        let cli = Cli::try_parse_from(["liana-runtime", "exec", "-t", "c1", "sh", "-c", "ls -l"])
            .unwrap();
        match cli.command {
            Some(Command::Exec(e)) => {
                assert!(e.tty);
                assert_eq!(e.command, ["sh", "-c", "ls -l"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

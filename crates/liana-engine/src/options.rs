//! What the command line asks for: `run`/`create` and `exec` options, as plain data the
//! CLI fills in and the spec steps read.

use std::path::PathBuf;

/// Options of `run` and `create`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--name`.
    pub name: Option<String>,
    /// `-d`.
    pub detach: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `--rm`.
    pub rm: bool,
    /// `-e KEY=VALUE` or `-e KEY` (from our environment).
    pub env: Vec<String>,
    /// `--env-file`.
    pub env_files: Vec<PathBuf>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
    /// `--entrypoint` (an empty string clears the image's).
    pub entrypoint: Option<String>,
    /// The command after the image.
    pub command: Vec<String>,
    /// `-v`.
    pub volumes: Vec<String>,
    /// `--tmpfs`.
    pub tmpfs: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `-m`.
    pub memory: Option<String>,
    /// `--memory-swap`.
    pub memory_swap: Option<String>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--ulimit`.
    pub ulimits: Vec<String>,
    /// `--pid`.
    pub pid: Option<String>,
    /// `--ipc`.
    pub ipc: Option<String>,
    /// `--uts`.
    pub uts: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `-p`, `--publish`.
    pub publish: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--network-alias`.
    pub network_aliases: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--init`.
    pub init: bool,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--rootfs`: the image argument is a directory.
    pub rootfs: bool,
    /// `--log-driver`.
    pub log_driver: Option<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<u64>,
    /// `--label KEY=VALUE`.
    pub labels: Vec<String>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub command: Vec<String>,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `-d`.
    pub detach: bool,
    /// `-e`.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--privileged`.
    pub privileged: bool,
}

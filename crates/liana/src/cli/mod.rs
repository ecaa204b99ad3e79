//! Command-line front end: global flags, one module per verb group, error → exit code.

mod build;
mod env;
mod image;
mod info;
mod io;
mod lifecycle;
mod login;
mod network;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use liana_images::{ErrorKind, HasKind};

/// Exit code for failures (podman's convention).
pub const EXIT_FAILURE: i32 = 125;
/// Exit code when the image (or name) does not exist.
pub const EXIT_NOT_FOUND: i32 = 1;

/// Global flags.
#[derive(Debug, Parser)]
#[command(
    name = "liana",
    version,
    about = "liana: a daemonless, rootless-friendly container engine"
)]
pub struct Cli {
    /// Storage root for images, content and metadata (default /var/lib/liana for root,
    /// $XDG_DATA_HOME/liana for users).
    #[arg(long, global = true, value_name = "DIR", env = "LIANA_ROOT")]
    pub root: Option<PathBuf>,

    /// Root for runtime state (default /run/liana, or $XDG_RUNTIME_DIR/liana).
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,

    /// Snapshotter for unpacked layers.
    #[arg(long, global = true, value_enum, default_value_t = SnapshotterArg::Auto)]
    pub snapshotter: SnapshotterArg,

    /// registries.conf to use instead of the default files
    /// (also $CONTAINERS_REGISTRIES_CONF).
    #[arg(long, global = true, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,

    /// liana config file (default /etc/liana/liana.toml, or
    /// $XDG_CONFIG_HOME/liana/liana.toml; also $LIANA_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--snapshotter` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SnapshotterArg {
    /// overlayfs when available (root), else native.
    Auto,
    /// overlayfs.
    Overlay,
    /// Full copies.
    Native,
}

/// Verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Build an image from a Dockerfile and a context directory.
    Build(build::BuildArgs),
    /// Pull an image from a registry.
    Pull(image::PullArgs),
    /// Push an image to a registry.
    Push(image::PushArgs),
    /// List images.
    Images(image::ListArgs),
    /// Remove images.
    Rmi(image::RmArgs),
    /// Add a name to an image.
    Tag(image::TagArgs),
    /// Save images to an archive.
    Save(image::SaveArgs),
    /// Load images from an archive.
    Load(image::LoadArgs),
    /// Log in to a registry.
    Login(login::LoginArgs),
    /// Log out of a registry.
    Logout(login::LogoutArgs),
    /// Run a command in a new container.
    Run(run::RunArgs),
    /// Create a container without starting it.
    Create(run::CreateArgs),
    /// Start containers.
    Start(run::StartArgs),
    /// Stop containers (stop signal, then SIGKILL after a timeout).
    Stop(lifecycle::StopArgs),
    /// Send a signal to containers.
    Kill(lifecycle::KillArgs),
    /// Restart containers.
    Restart(lifecycle::StopArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(lifecycle::ContainersArgs),
    /// Remove containers.
    Rm(lifecycle::RmArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// List containers.
    Ps(info::PsArgs),
    /// Show details of containers (or images) as JSON.
    Inspect(info::InspectArgs),
    /// Show the processes of a container.
    Top(info::TopArgs),
    /// Show CPU, memory and pids of running containers.
    Stats(info::StatsArgs),
    /// Show the output of a container.
    Logs(io::LogsArgs),
    /// Run a command in a running container.
    Exec(io::ExecArgs),
    /// Attach to a running container's terminal or output.
    Attach(io::AttachArgs),
    /// Copy files between a container and the host.
    Cp(io::CpArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
}

/// `liana container ...`
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container.
    Run(run::RunArgs),
    /// Create a container.
    Create(run::CreateArgs),
    /// Start containers.
    Start(run::StartArgs),
    /// Stop containers.
    Stop(lifecycle::StopArgs),
    /// Send a signal to containers.
    Kill(lifecycle::KillArgs),
    /// Restart containers.
    Restart(lifecycle::StopArgs),
    /// Wait for containers to exit.
    Wait(lifecycle::ContainersArgs),
    /// Remove containers.
    #[command(alias = "remove")]
    Rm(lifecycle::RmArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(info::PsArgs),
    /// Show details of containers as JSON.
    Inspect(info::InspectArgs),
    /// Show the processes of a container.
    Top(info::TopArgs),
    /// Show resource usage.
    Stats(info::StatsArgs),
    /// Show the output of a container.
    Logs(io::LogsArgs),
    /// Run a command in a running container.
    Exec(io::ExecArgs),
    /// Attach to a running container.
    Attach(io::AttachArgs),
    /// Copy files between a container and the host.
    Cp(io::CpArgs),
    /// Remove all stopped containers.
    Prune(lifecycle::PruneArgs),
    /// Release what an exited container holds (run by its monitor).
    #[command(hide = true)]
    Cleanup(lifecycle::CleanupArgs),
}

impl Command {
    /// Verbs that create or enter containers must run from a sealed copy of the binary.
    fn enters_containers(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Build(_)
                | Command::Start(_)
                | Command::Restart(_)
                | Command::Exec(_)
                | Command::Container(
                    ContainerCommand::Run(_)
                        | ContainerCommand::Start(_)
                        | ContainerCommand::Restart(_)
                        | ContainerCommand::Exec(_)
                )
        )
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIANA_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "liana={level},liana_images={level},liana_engine={level},liana_container={level}"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// The exit code for an error: kinds from the library, else a generic failure.
fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<liana_engine::Error>() {
            return match x {
                liana_engine::Error::Exec { code, .. } => *code,
                liana_engine::Error::NoSuchContainer(_) | liana_engine::Error::NoSuchNetwork(_) => {
                    EXIT_NOT_FOUND
                }
                _ => EXIT_FAILURE,
            };
        }
        let kind = if let Some(x) = cause.downcast_ref::<liana_images::StoreError>() {
            Some(x.kind())
        } else if let Some(x) = cause.downcast_ref::<liana_images::pull::PullError>() {
            Some(x.kind())
        } else {
            cause
                .downcast_ref::<liana_images::push::PushError>()
                .map(|x| x.kind())
        };
        if let Some(k) = kind {
            return if k == ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_FAILURE
            };
        }
    }
    EXIT_FAILURE
}

/// An error and its causes, `: `-separated.
fn chain_text(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let env = env::HostEnv::new(&cli);
    if cli.command.enters_containers() {
        let exe = std::env::var_os("LIANA_EXE")
            .map(PathBuf::from)
            .unwrap_or_default();
        if let Err(e) = liana_container::sealed::ensure_protected(&exe, &env.runroot) {
            eprintln!("Error: re-execute from a protected copy of liana: {e}");
            return EXIT_FAILURE;
        }
    }
    init_logging(&cli.log_level);
    let ok = |r: anyhow::Result<()>| r.map(|()| 0);
    let res = match cli.command {
        Command::Image(c) => ok(image::run(&env, c)),
        Command::Build(a) => build::build(&env, a),
        Command::Pull(a) => ok(image::pull(&env, a)),
        Command::Push(a) => ok(image::push(&env, a)),
        Command::Images(a) => ok(image::list(&env, a)),
        Command::Rmi(a) => ok(image::remove(&env, a)),
        Command::Tag(a) => ok(image::tag(&env, a)),
        Command::Save(a) => ok(image::save(&env, a)),
        Command::Load(a) => ok(image::load(&env, a)),
        Command::Login(a) => ok(login::login(&env, a)),
        Command::Logout(a) => ok(login::logout(&env, a)),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(&env, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            ok(run::create(&env, a))
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => run::start(&env, a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            lifecycle::stop(&env, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            lifecycle::kill(&env, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            lifecycle::restart(&env, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            lifecycle::wait(&env, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => lifecycle::rm(&env, a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            ok(lifecycle::rename(&env, a))
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ok(info::ps(&env, a)),
        Command::Inspect(a) | Command::Container(ContainerCommand::Inspect(a)) => {
            info::inspect(&env, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => ok(info::top(&env, a)),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            ok(info::stats(&env, a))
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => ok(io::logs(&env, a)),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => io::exec(&env, a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => io::attach(&env, a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => ok(io::cp(&env, a)),
        Command::Network(c) => ok(network::run(&env, c)),
        Command::Container(ContainerCommand::Prune(a)) => ok(lifecycle::prune(&env, a)),
        Command::Container(ContainerCommand::Cleanup(a)) => ok(lifecycle::cleanup(&env, a)),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", chain_text(&e));
            exit_code(&e)
        }
    }
}

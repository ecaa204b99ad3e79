//! Command-line front end: global flags, one module per verb group, error → exit code.

mod env;
mod image;
mod login;

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
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIANA_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("liana={level},liana_images={level}"))
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

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let env = env::HostEnv::new(&cli);
    let res = match cli.command {
        Command::Image(c) => image::run(&env, c),
        Command::Pull(a) => image::pull(&env, a),
        Command::Push(a) => image::push(&env, a),
        Command::Images(a) => image::list(&env, a),
        Command::Rmi(a) => image::remove(&env, a),
        Command::Tag(a) => image::tag(&env, a),
        Command::Save(a) => image::save(&env, a),
        Command::Load(a) => image::load(&env, a),
        Command::Login(a) => login::login(&env, a),
        Command::Logout(a) => login::logout(&env, a),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            let msg = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("Error: {msg}");
            exit_code(&e)
        }
    }
}

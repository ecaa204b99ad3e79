//! `run`, `create`, `start`: turning an image into a running container.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use liana_engine::create::ImageSource;
use liana_engine::RunOptions;
use liana_images::pull::{NoProgress, PullOptions};
use liana_monitor::supervise::Local;

use super::env::{HostEnv, RemoteArgs};

/// Flags shared by `run` and `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Name of the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take ours).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint (a command, or a JSON array).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount or volume: [SOURCE:]DEST[:ro|rw,...].
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs: DEST[:OPTIONS].
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the root file system read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 128m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1 or 0: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Resource limit: NAME=SOFT[:HARD].
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// PID namespace: private or host.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC namespace: private or host.
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace: private or host.
    #[arg(long)]
    pub uts: Option<String>,
    /// Network: bridge (root's default), NAME (a network), none, host,
    /// slirp4netns[:OPTIONS] or pasta[:OPTIONS] (the rootless default), container:ID.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Publish container ports on the host: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp],
    /// ports may be ranges (8000-8002:80-82).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// IPv4 address on the bridge network.
    #[arg(long)]
    pub ip: Option<String>,
    /// MAC address on the bridge network.
    #[arg(long)]
    pub mac_address: Option<String>,
    /// DNS server for /etc/resolv.conf (instead of the host's).
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add NAME:IP to /etc/hosts.
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Another name of the container on its bridge network (DNS and other containers'
    /// /etc/hosts).
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Add a capability.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges.
    #[arg(long)]
    pub privileged: bool,
    /// seccomp=unconfined|FILE, no-new-privileges.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Run a tiny init as pid 1 that reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    /// OCI runtime: liana (built-in), runc, crun, runsc, youki, a runtimes table entry
    /// of the config file, or a path.
    #[arg(long)]
    pub runtime: Option<String>,
    /// IMAGE is a root file system directory, not an image.
    #[arg(long)]
    pub rootfs: bool,
    /// Log driver: k8s-file, json-file or none.
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop.
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Image (or root file system directory with --rootfs).
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output (and exit with its code).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin too.
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn options(a: &CreateArgs, detach: bool) -> RunOptions {
    RunOptions {
        name: a.name.clone(),
        detach,
        interactive: a.interactive,
        tty: a.tty,
        rm: a.rm,
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        command: a.command.clone(),
        volumes: a.volumes.clone(),
        tmpfs: a.tmpfs.clone(),
        read_only: a.read_only,
        memory: a.memory.clone(),
        memory_swap: a.memory_swap.clone(),
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        ulimits: a.ulimit.clone(),
        pid: a.pid.clone(),
        ipc: a.ipc.clone(),
        uts: a.uts.clone(),
        network: a.network.clone(),
        publish: a.publish.clone(),
        ip: a.ip.clone(),
        mac_address: a.mac_address.clone(),
        dns: a.dns.clone(),
        add_hosts: a.add_host.clone(),
        network_aliases: a.network_alias.clone(),
        hostname: a.hostname.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        security_opt: a.security_opt.clone(),
        init: a.init,
        runtime: a.runtime.clone(),
        rootfs: a.rootfs,
        log_driver: a.log_driver.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        labels: a.labels.clone(),
    }
}

fn image_source(
    env: &HostEnv,
    engine: &liana_engine::Engine,
    a: &CreateArgs,
) -> anyhow::Result<ImageSource> {
    if a.rootfs {
        return Ok(ImageSource::Rootfs(PathBuf::from(&a.image)));
    }
    let pull = PullOptions {
        remote: env.remote(&a.remote)?,
        ..Default::default()
    };
    Ok(ImageSource::Image(Box::new(
        engine
            .image_for_run(&a.image, &pull, &NoProgress)
            .with_context(|| format!("image {}", a.image))?,
    )))
}

fn create_container(
    env: &HostEnv,
    engine: &liana_engine::Engine,
    a: &CreateArgs,
    detach: bool,
) -> anyhow::Result<liana_engine::Container> {
    let src = image_source(env, engine, a)?;
    Ok(engine.create(&options(a, detach), src)?)
}

fn stdin_is_tty() -> bool {
    // SAFETY: isatty takes an fd number.
    unsafe { libc::isatty(0) == 1 }
}

/// `run`: returns the container's exit code (0 when detached).
pub fn run(env: &HostEnv, a: RunArgs) -> anyhow::Result<i32> {
    let engine = env.engine()?;
    if a.detach {
        let c = create_container(env, &engine, &a.create, true)?;
        let id = c.id.clone();
        if let Err(e) = engine.start_created(c) {
            let _ = engine.remove(&id, true, true);
            return Err(e.into());
        }
        println!("{id}");
        return Ok(0);
    }
    let local = Local {
        stdin: a.create.interactive,
        tty: a.create.tty && stdin_is_tty(),
    };
    let src = image_source(env, &engine, &a.create)?;
    Ok(engine.run_attached_new(&options(&a.create, false), src, local)?)
}

/// `create`: prints the new container's ID.
pub fn create(env: &HostEnv, a: CreateArgs) -> anyhow::Result<()> {
    let engine = env.engine()?;
    let c = create_container(env, &engine, &a, true)?;
    println!("{}", c.id);
    Ok(())
}

/// `start`.
pub fn start(env: &HostEnv, a: StartArgs) -> anyhow::Result<i32> {
    let engine = env.engine()?;
    if a.attach {
        anyhow::ensure!(
            a.containers.len() == 1,
            "start --attach takes one container"
        );
        let local = Local {
            stdin: a.interactive,
            tty: stdin_is_tty(),
        };
        return Ok(engine.start_attached(&a.containers[0], local)?);
    }
    let mut code = 0;
    for c in &a.containers {
        match engine.start(c) {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {}", liana_engine::error_chain(&e));
                code = super::EXIT_FAILURE;
            }
        }
    }
    Ok(code)
}

//! `liana-runtime`: parses runc's flags, calls the runtime library, maps errors to exit
//! codes (the container's status for `run`, 1 for any error, with the message on stderr
//! and in the --log file).

mod logging;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};
use liana_container::{CreateRequest, RunOutcome, Runtime};
use liana_oci_cli::{Cli, Command, CreateArgs, Format, Rootless};

fn main() {
    let cli = Cli::parse();
    if cli.version {
        print_version();
        return;
    }
    let Some(command) = cli.command.as_ref() else {
        let _ = Cli::command().print_help();
        std::process::exit(1);
    };
    if matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        // Never run set-up stages from the host binary itself (CVE-2019-5736).
        let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
        let scratch = cli
            .root
            .clone()
            .unwrap_or_else(liana_container::state::default_root)
            .join(".exe");
        if let Err(e) = liana_container::sealed::ensure_protected(&exe, &scratch) {
            eprintln!("liana-runtime: cannot re-execute from a protected copy of itself: {e}");
            std::process::exit(1);
        }
    }
    logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    match dispatch(&cli, command) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("{msg}");
            if cli.log.is_some() {
                eprintln!("liana-runtime: {msg}");
            }
            std::process::exit(1);
        }
    }
}

fn print_version() {
    let _ = stdout(&format!(
        "liana-runtime version {}\nspec: {}\n+CAP +IDMAPPED-MOUNTS\n",
        env!("CARGO_PKG_VERSION"),
        liana_container::container::OCI_VERSION
    ));
}

/// Writes `text` to stdout. A reader that went away (`liana-runtime list | head -1`) is
/// not an error: the output is simply cut, as runc's is.
fn stdout(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn runtime(cli: &Cli) -> Result<Runtime> {
    let rootless = match cli.rootless {
        Rootless::True => true,
        Rootless::False => false,
        Rootless::Auto => detect_rootless(),
    };
    use liana_oci_cli::CgroupManager as M;
    let cgroup_driver = match (cli.cgroup_manager, cli.systemd_cgroup) {
        (Some(M::Cgroupfs), _) => liana_cgroups::Driver::Cgroupfs,
        (Some(M::Disabled), _) => liana_cgroups::Driver::Disabled,
        (Some(M::Systemd), _) | (None, true) => liana_cgroups::Driver::Systemd,
        (None, false) => liana_cgroups::Driver::Cgroupfs,
    };
    Ok(Runtime {
        root: cli
            .root
            .clone()
            .unwrap_or_else(liana_container::state::default_root),
        rootless,
        cgroup_driver,
    })
}

fn detect_rootless() -> bool {
    if !is_root() {
        return true;
    }
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn create_request(a: &CreateArgs) -> CreateRequest {
    CreateRequest {
        id: a.id.clone(),
        bundle: a.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
        config: a.config.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        stdio: None,
    }
}

fn dispatch(cli: &Cli, command: &Command) -> Result<i32> {
    match command {
        Command::Spec(s) => {
            let bundle = s.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists: remove it first", path.display());
            }
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let v = liana_container::spec::default_spec(s.rootless, uid, gid);
            let text = serde_json::to_string_pretty(&v)?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Command::Create(c) => {
            runtime(cli)?.create(&create_request(&c.args))?;
            Ok(0)
        }
        Command::Start(s) => {
            runtime(cli)?.start(&s.id)?;
            Ok(0)
        }
        Command::Run(r) => match runtime(cli)?.run(&create_request(&r.args), r.detach, r.keep)? {
            RunOutcome::Detached => Ok(0),
            RunOutcome::Exited(code) => Ok(code),
        },
        Command::State(s) => {
            let st = runtime(cli)?.state(&s.id)?;
            stdout(&(serde_json::to_string_pretty(&st)? + "\n"))?;
            Ok(0)
        }
        Command::Kill(k) => {
            runtime(cli)?.kill(&k.id, k.signal.as_deref().unwrap_or("SIGTERM"), k.all)?;
            Ok(0)
        }
        Command::Delete(d) => {
            let rt = runtime(cli)?;
            if d.regex {
                rt.delete_matching(&d.id, d.force)?;
            } else {
                rt.delete(&d.id, d.force)?;
            }
            Ok(0)
        }
        Command::List(l) => {
            let all = runtime(cli)?.list()?;
            let mut out = Vec::new();
            if l.quiet {
                for s in &all {
                    writeln!(out, "{}", s.id)?;
                }
            } else if l.format == Format::Json {
                writeln!(out, "{}", serde_json::to_string(&all)?)?;
            } else {
                let rows: Vec<[String; 6]> = all
                    .iter()
                    .map(|s| {
                        [
                            s.id.clone(),
                            s.pid.to_string(),
                            s.status.to_string(),
                            s.bundle.display().to_string(),
                            s.created.clone(),
                            s.owner.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &mut out,
                    ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                    &rows,
                )?;
            }
            stdout(&String::from_utf8_lossy(&out))?;
            Ok(0)
        }
        Command::Features => {
            stdout(
                &(serde_json::to_string_pretty(&liana_container::features::features())? + "\n"),
            )?;
            Ok(0)
        }
        Command::Exec(e) => {
            let req = liana_container::ExecRequest {
                id: e.id.clone(),
                process: e.process.clone(),
                args: e.command.clone(),
                env: e.env.clone(),
                cwd: e.cwd.clone(),
                user: e.user.clone(),
                additional_gids: e.additional_gids.clone(),
                caps: e.cap.clone(),
                no_new_privs: e.no_new_privs,
                apparmor: e.apparmor.clone(),
                process_label: e.process_label.clone(),
                tty: e.tty,
                console_socket: e.console_socket.clone(),
                detach: e.detach,
                pid_file: e.pid_file.clone(),
                preserve_fds: e.preserve_fds,
                ignore_paused: e.ignore_paused,
                stdio: None,
            };
            if !e.cgroup.is_empty() {
                bail!("exec --cgroup: sub-cgroups are not supported yet");
            }
            match runtime(cli)?.exec(&req)? {
                RunOutcome::Detached => Ok(0),
                RunOutcome::Exited(code) => Ok(code),
            }
        }
        Command::Ps(p) => {
            let format = match p.format {
                Format::Json => liana_container::PsFormat::Json,
                Format::Table => liana_container::PsFormat::Table,
            };
            let out = runtime(cli)?.ps(&p.id, format, &p.ps_args)?;
            let nl = if format == liana_container::PsFormat::Json {
                "\n"
            } else {
                ""
            };
            stdout(&format!("{out}{nl}"))?;
            Ok(0)
        }
        Command::Pause(p) => {
            runtime(cli)?.pause(&p.id)?;
            Ok(0)
        }
        Command::Resume(p) => {
            runtime(cli)?.resume(&p.id)?;
            Ok(0)
        }
        Command::Update(u) => {
            let resources_json = match u.resources.as_deref() {
                Some(p) if p == std::path::Path::new("-") => {
                    let mut b = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                    Some(b)
                }
                Some(p) => Some(std::fs::read(p).with_context(|| format!("read {}", p.display()))?),
                None => None,
            };
            let req = liana_container::UpdateRequest {
                resources_json,
                blkio_weight: u.blkio_weight,
                cpu_period: u.cpu_period,
                cpu_quota: u.cpu_quota,
                cpu_rt_period: u.cpu_rt_period,
                cpu_rt_runtime: u.cpu_rt_runtime,
                cpu_shares: u.cpu_share,
                cpuset_cpus: u.cpuset_cpus.clone(),
                cpuset_mems: u.cpuset_mems.clone(),
                memory: u.memory.clone(),
                memory_reservation: u.memory_reservation.clone(),
                memory_swap: u.memory_swap.clone(),
                pids_limit: u.pids_limit,
            };
            runtime(cli)?.update(&u.id, &req)?;
            Ok(0)
        }
        Command::Events(e) => {
            let interval = humantime::parse_duration(&e.interval)
                .with_context(|| format!("--interval {:?}", e.interval))?;
            if interval.is_zero() {
                bail!("--interval must be greater than 0");
            }
            runtime(cli)?.events(&e.id, e.stats, interval, &mut std::io::stdout().lock())?;
            Ok(0)
        }
    }
}

fn print_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

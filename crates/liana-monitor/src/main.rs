//! `liana-monitor`: the resident parent of one detached container (see the crate docs).
//!
//! ```text
//! liana-monitor --pid PID --exit-file PATH [--log-driver DRIVER --log-path PATH]
//!               [--stdin-fd N] [--stdout-fd N] [--stderr-fd N] [--console-fd N]
//!               [--attach-fd N] [-- EXIT-COMMAND [ARG...]]
//! ```
//!
//! The fds are inherited from the process that created the container (and that
//! executed this binary, so the container's init is already our child). When the init
//! exits, the exit file is written and the exit command replaces this process.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use liana_monitor::exitfile;
use liana_monitor::logfile::{LogDriver, LogWriter};
use liana_monitor::supervise::{self, Io, Options};
use liana_monitor::sys::{self, SigSet};

#[derive(Default)]
struct Args {
    pid: i32,
    exit_file: Option<PathBuf>,
    log_driver: Option<LogDriver>,
    log_path: Option<PathBuf>,
    stdin: Option<RawFd>,
    stdout: Option<RawFd>,
    stderr: Option<RawFd>,
    console: Option<RawFd>,
    attach: Option<RawFd>,
    exit_command: Vec<std::ffi::OsString>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args_os().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--" {
            a.exit_command = it.collect();
            break;
        }
        let flag = flag.to_string_lossy().into_owned();
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let text = value.to_string_lossy().into_owned();
        let fd = || {
            text.parse::<RawFd>()
                .map_err(|_| format!("{flag}: bad fd {text:?}"))
        };
        match flag.as_str() {
            "--pid" => a.pid = text.parse().map_err(|_| format!("bad pid {text:?}"))?,
            "--exit-file" => a.exit_file = Some(value.into()),
            "--log-driver" => {
                a.log_driver = Some(
                    LogDriver::parse(&text).ok_or_else(|| format!("bad log driver {text:?}"))?,
                )
            }
            "--log-path" => a.log_path = Some(value.into()),
            "--stdin-fd" => a.stdin = Some(fd()?),
            "--stdout-fd" => a.stdout = Some(fd()?),
            "--stderr-fd" => a.stderr = Some(fd()?),
            "--console-fd" => a.console = Some(fd()?),
            "--attach-fd" => a.attach = Some(fd()?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.pid <= 0 || a.exit_file.is_none() {
        return Err("--pid and --exit-file are required".into());
    }
    Ok(a)
}

fn take(fd: Option<RawFd>) -> Option<OwnedFd> {
    let fd = fd?;
    sys::set_cloexec(fd, true).ok()?;
    // SAFETY: the fd was handed to us on the command line by our parent; nothing else
    // in this process owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("liana-monitor: {e}");
            std::process::exit(2);
        }
    };
    let mut signals = SigSet::empty();
    signals.add(libc::SIGCHLD);
    if let Err(e) = signals.block() {
        eprintln!("liana-monitor: block SIGCHLD: {e}");
        std::process::exit(1);
    }
    sys::set_disposition(libc::SIGCHLD, false);
    for sig in [
        libc::SIGPIPE,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGQUIT,
    ] {
        sys::set_disposition(sig, true);
    }
    let io = Io {
        stdin: take(args.stdin),
        stdout: take(args.stdout),
        stderr: take(args.stderr),
        console: take(args.console),
    };
    let log = match (args.log_driver, &args.log_path) {
        (Some(d), Some(p)) => match LogWriter::open(p, d) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("liana-monitor: open log {}: {e}", p.display());
                None
            }
        },
        _ => None,
    };
    let mut ignore = |_sig: i32| {};
    let opts = Options {
        pid: args.pid,
        io,
        log,
        attach: take(args.attach),
        local: None,
        signals,
        on_signal: &mut ignore,
    };
    let exit = match supervise::supervise(opts) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("liana-monitor: {e}");
            std::process::exit(1);
        }
    };
    let exit_file = args.exit_file.expect("checked");
    if let Err(e) = exitfile::write(&exit_file, &exit) {
        eprintln!("liana-monitor: write {}: {e}", exit_file.display());
    }
    if args.exit_command.is_empty() {
        return;
    }
    exec_exit_command(&args.exit_command);
}

/// Replaces this process with the exit command, with default signal handling.
fn exec_exit_command(cmd: &[std::ffi::OsString]) {
    for sig in [
        libc::SIGPIPE,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGQUIT,
    ] {
        sys::set_disposition(sig, false);
    }
    SigSet::unblock_all();
    let argv: Vec<CString> = cmd
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: a NULL-terminated argv of valid C strings that outlive the call.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    eprintln!(
        "liana-monitor: exec {:?}: {}",
        cmd[0],
        std::io::Error::last_os_error()
    );
    std::process::exit(1);
}

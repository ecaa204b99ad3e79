//! The rootless drivers: user-mode networking by a helper process that owns a tap
//! (slirp4netns) or a socket splice (pasta) in the container's namespace.
//!
//! - slirp4netns: `--configure --mtu=65520`, tap0 10.0.2.100/24, gateway 10.0.2.2
//!   (the host's loopback with `allow_host_loopback=true`), DNS at 10.0.2.3;
//!   published ports through its API socket (`add_hostfwd`); it exits by itself when
//!   the engine's end of its `--exit-fd` pipe closes (the monitor died).
//! - pasta (passt): `--config-net`, ports with `-t`/`-u`; as root this version must
//!   get a namespace file with `--runas 0:0 --netns FILE --netns-only`.
//!
//! Both write their pid in the state directory; teardown kills them by pid, after
//! checking the process's name.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::PortMapping;
use crate::{op, NetError};

/// Whose network namespace the helper serves.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The namespace of this process (rootless: the helper joins its user namespace
    /// too).
    Pid(i32),
    /// A namespace file (root).
    File(&'a Path),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Helper<'a> {
    /// Directory for the pid file, log and API socket (short: sockets have a path
    /// limit).
    pub state_dir: &'a Path,
    /// The namespace.
    pub target: Target<'a>,
    /// Options after `slirp4netns:` / `pasta:`, split at commas.
    pub options: &'a [String],
    /// Published ports.
    pub ports: &'a [PortMapping],
}

fn helper_err(helper: &'static str, message: impl Into<String>) -> NetError {
    NetError::Helper {
        helper,
        message: message.into(),
    }
}

fn log_tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("; ")
}

fn pipe() -> Result<(OwnedFd, OwnedFd), NetError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| op("create a pipe")(e.into()))
}

fn set_cloexec(fd: i32, on: bool) {
    // SAFETY: fcntl on a descriptor number; async-signal-safe.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFD);
        if fl >= 0 {
            let nf = if on {
                fl | libc::FD_CLOEXEC
            } else {
                fl & !libc::FD_CLOEXEC
            };
            libc::fcntl(fd, libc::F_SETFD, nf);
        }
    }
}

/// Clears the signal mask a helper would inherit (the attached engine blocks every
/// signal it forwards), so that it can be stopped. Runs between fork and exec.
fn unblock_signals() {
    // SAFETY: sigemptyset and sigprocmask on a local set; async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The slirp4netns command line for `h` (without the fds).
fn slirp_args(h: &Helper<'_>) -> Result<Vec<String>, NetError> {
    let mut mtu = "65520".to_string();
    let mut loopback = false;
    let mut extra = Vec::new();
    for o in h.options {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), "true"));
        let yes = || match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(helper_err(
                "slirp4netns",
                format!("option {k}: expected true or false, got {v:?}"),
            )),
        };
        match k {
            "allow_host_loopback" => loopback = yes()?,
            "mtu" => {
                v.parse::<u32>()
                    .map_err(|_| helper_err("slirp4netns", format!("option mtu: {v:?}")))?;
                mtu = v.into();
            }
            "enable_ipv6" => {
                if yes()? {
                    extra.push("--enable-ipv6".into())
                }
            }
            "disable_dns" => {
                if yes()? {
                    extra.push("--disable-dns".into())
                }
            }
            "outbound_addr" => extra.push(format!("--outbound-addr={v}")),
            "cidr" => extra.push(format!("--cidr={v}")),
            "port_handler" if v == "slirp4netns" => {}
            _ => {
                return Err(helper_err(
                    "slirp4netns",
                    format!("unknown option {o:?} (allow_host_loopback, mtu, enable_ipv6, disable_dns, outbound_addr, cidr)"),
                ))
            }
        }
    }
    let mut a = vec!["--configure".into(), format!("--mtu={mtu}")];
    if !loopback {
        a.push("--disable-host-loopback".into());
    }
    a.extend(extra);
    a.push("--api-socket".into());
    a.push(h.state_dir.join("slirp.sock").display().to_string());
    Ok(a)
}

/// Starts slirp4netns for `h`; returns once tap0 is configured and the ports are
/// published. The returned fd is the engine's end of the exit pipe: keep it open
/// (across exec) while the container runs.
pub fn start_slirp(h: &Helper<'_>) -> Result<(i32, OwnedFd), NetError> {
    std::fs::create_dir_all(h.state_dir)
        .map_err(op(format!("create {}", h.state_dir.display())))?;
    let mut args = slirp_args(h)?;
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    args.push(format!("--ready-fd={}", ready_w.as_raw_fd()));
    args.push(format!("--exit-fd={}", exit_r.as_raw_fd()));
    match h.target {
        Target::Pid(p) => args.push(p.to_string()),
        Target::File(f) => {
            args.push("--netns-type=path".into());
            args.push(f.display().to_string());
        }
    }
    args.push("tap0".into());
    let log = h.state_dir.join("slirp.log");
    let logf = std::fs::File::create(&log).map_err(op(format!("create {}", log.display())))?;
    let _ = std::fs::remove_file(h.state_dir.join("slirp.sock"));
    let (rw, er) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
    let mut cmd = Command::new("slirp4netns");
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(op("dup log"))?)
        .stderr(logf);
    // SAFETY: the closure only calls setsid and fcntl, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            unblock_signals();
            set_cloexec(rw, false);
            set_cloexec(er, false);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| helper_err("slirp4netns", format!("run it (install slirp4netns): {e}")))?;
    drop(ready_w);
    drop(exit_r);
    let pid = child.id() as i32;
    let _ = std::fs::write(h.state_dir.join("slirp.pid"), pid.to_string());
    let mut ready = std::fs::File::from(ready_r);
    let mut b = [0u8; 1];
    let ok = matches!(ready.read(&mut b), Ok(1));
    if !ok {
        let _ = child.kill();
        let _ = child.wait();
        return Err(helper_err(
            "slirp4netns",
            format!("did not start: {}", log_tail(&log)),
        ));
    }
    // Reaped by whoever is the parent later (the monitor reaps every child).
    std::mem::forget(child);
    for p in h.ports {
        if let Err(e) = slirp_hostfwd(&h.state_dir.join("slirp.sock"), p) {
            let _ = stop(h.state_dir);
            return Err(e);
        }
    }
    set_cloexec(exit_w.as_raw_fd(), false);
    Ok((pid, exit_w))
}

fn slirp_hostfwd(sock: &Path, p: &PortMapping) -> Result<(), NetError> {
    let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {
        "proto": p.protocol,
        "host_addr": p.host_ip.map_or("0.0.0.0".to_string(), |a| a.to_string()),
        "host_port": p.host_port,
        "guest_port": p.container_port,
    }});
    let what = format!(
        "publish port {}:{}/{}",
        p.host_port, p.container_port, p.protocol
    );
    let mut s =
        UnixStream::connect(sock).map_err(op(format!("{what}: connect to {}", sock.display())))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(req.to_string().as_bytes())
        .map_err(op(what.clone()))?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).map_err(op(what.clone()))?;
    let reply: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap_or_default();
    if let Some(e) = reply.get("error") {
        return Err(helper_err("slirp4netns", format!("{what}: {e}")));
    }
    Ok(())
}

/// Starts pasta for `h`; returns its pid once the namespace is configured.
pub fn start_pasta(h: &Helper<'_>) -> Result<i32, NetError> {
    std::fs::create_dir_all(h.state_dir)
        .map_err(op(format!("create {}", h.state_dir.display())))?;
    let log = h.state_dir.join("pasta.log");
    let pidf = h.state_dir.join("pasta.pid");
    let _ = std::fs::remove_file(&pidf);
    let mut args: Vec<String> = vec!["--config-net".into(), "-q".into()];
    args.extend(["-l".into(), log.display().to_string()]);
    args.extend(["-P".into(), pidf.display().to_string()]);
    args.extend(h.options.iter().cloned());
    let has = |f: &str| h.options.iter().any(|o| o == f);
    for (proto, flag) in [("tcp", "-t"), ("udp", "-u")] {
        let mine: Vec<&PortMapping> = h.ports.iter().filter(|p| p.protocol == proto).collect();
        if mine.is_empty() {
            if !has(flag) {
                args.extend([flag.into(), "none".into()]);
            }
            continue;
        }
        for p in mine {
            let addr = p.host_ip.map(|a| format!("{a}/")).unwrap_or_default();
            args.extend([
                flag.into(),
                format!("{addr}{}:{}", p.host_port, p.container_port),
            ]);
        }
    }
    for flag in ["-T", "-U"] {
        if !has(flag) {
            args.extend([flag.into(), "none".into()]);
        }
    }
    match h.target {
        Target::Pid(p) => args.push(p.to_string()),
        Target::File(f) => {
            args.extend(["--runas".into(), "0:0".into(), "--netns".into()]);
            args.push(f.display().to_string());
            args.push("--netns-only".into());
        }
    }
    // pasta forks into the background once the namespace is ready; the parent's exit
    // is the readiness signal.
    let mut cmd = Command::new("pasta");
    // SAFETY: the closure only calls sigprocmask, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            unblock_signals();
            Ok(())
        });
    }
    let out = cmd
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| helper_err("pasta", format!("run it (install passt): {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(p) = read_pid(&pidf) {
            break Some(p);
        }
        if !out.status.success() || Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    match pid {
        Some(p) if out.status.success() => Ok(p),
        _ => {
            let _ = stop(h.state_dir);
            let err = String::from_utf8_lossy(&out.stderr);
            let err: Vec<&str> = err.lines().filter(|l| !l.contains("syslog")).collect();
            Err(helper_err(
                "pasta",
                format!("did not start: {} {}", err.join("; "), log_tail(&log)),
            ))
        }
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Stops the helpers recorded in `state_dir` and removes the directory.
pub fn stop(state_dir: &Path) -> Vec<NetError> {
    let mut errs = Vec::new();
    for (file, names) in [
        ("slirp.pid", &["slirp4netns"][..]),
        (
            "pasta.pid",
            &["pasta", "passt", "pasta.avx2", "passt.avx2"][..],
        ),
    ] {
        let pf: PathBuf = state_dir.join(file);
        let Some(pid) = read_pid(&pf) else { continue };
        if pid > 1 && names.contains(&comm(pid).as_str()) {
            // SAFETY: kill takes integers; the pid is our helper (its name checked).
            if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    errs.push(op(format!("stop {} (pid {pid})", names[0]))(e));
                }
            }
            let alive = || {
                // Our own child (attached run): reap it.
                // SAFETY: waitpid with WNOHANG on a pid; harmless if not our child.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    !s.contains(") Z ") && names.iter().any(|n| s.contains(&format!("({n})")))
                })
            };
            let deadline = Instant::now() + Duration::from_secs(2);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive() {
                // SAFETY: kill takes integers; still our helper (checked above).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_file(&pf);
    }
    if let Err(e) = std::fs::remove_dir_all(state_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errs.push(op(format!("remove {}", state_dir.display()))(e));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp_options() {
        let d = Path::new("/r/n");
        let opts = vec!["allow_host_loopback=true".to_string(), "mtu=1500".into()];
        let h = Helper {
            state_dir: d,
            target: Target::Pid(1),
            options: &opts,
            ports: &[],
        };
        let a = slirp_args(&h).unwrap();
        assert!(a.contains(&"--mtu=1500".to_string()), "{a:?}");
        assert!(!a.contains(&"--disable-host-loopback".to_string()), "{a:?}");
        let bad = vec!["bogus=1".to_string()];
        let h = Helper { options: &bad, ..h };
        assert!(slirp_args(&h).unwrap_err().to_string().contains("bogus"));
    }
}

//! The container process's own attributes (runtime-spec `process`), shared by the init
//! and `exec`: rlimits, user and groups, capabilities, no_new_privs, cwd, environment,
//! and the final execve.
//!
//! A [`ProcessPlan`] is built from the config before fork; the functions here run in
//! the forked child, in the order the kernel's permission rules impose.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process};

use crate::capabilities::{self, CapSets};
use crate::procfs::Procfs;

/// A failed process set-up step.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A syscall failed.
    #[error("{op}")]
    Sys {
        /// What failed.
        op: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The executable does not exist (a path), or no directory of PATH has it (a name).
    /// The words are runc's: podman and docker map "no such file" and "not found" in
    /// the runtime's error to exit code 127.
    #[error("exec {name:?}: {}", not_found_reason(.name))]
    NotFound {
        /// args[0].
        name: String,
    },
    /// The executable path exists but is not an executable regular file. "permission
    /// denied" is what podman and docker map to exit code 126.
    #[error("exec {name:?}: permission denied (not an executable regular file)")]
    NotExecutable {
        /// args[0].
        name: String,
    },
    /// The working directory resolved outside the container.
    #[error("process.cwd {cwd:?} is outside the container")]
    CwdOutside {
        /// The configured cwd.
        cwd: PathBuf,
    },
}

fn not_found_reason(name: &str) -> &'static str {
    if name.contains('/') {
        "no such file or directory"
    } else {
        "executable file not found in $PATH"
    }
}

impl SetupError {
    /// The exit status of a container process that could not be started, as a shell's:
    /// 127 when the executable is missing, 126 when it cannot be executed, else 1.
    pub fn exit_status(&self) -> i32 {
        match self {
            SetupError::NotFound { .. } => 127,
            SetupError::NotExecutable { .. } => 126,
            _ => 1,
        }
    }
}

fn sys(op: impl Into<String>) -> impl FnOnce(io::Error) -> SetupError {
    let op = op.into();
    move |source| SetupError::Sys { op, source }
}

/// The annotation that keeps the runtime's supplementary groups (crun's).
pub const KEEP_GROUPS_ANNOTATION: &str = "run.oci.keep_original_groups";

/// Everything needed to turn the set-up process into the container process.
#[derive(Debug, Clone, Default)]
pub struct ProcessPlan {
    /// argv.
    pub args: Vec<String>,
    /// Environment (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Keep the runtime's supplementary groups instead.
    pub keep_groups: bool,
    /// umask.
    pub umask: Option<u32>,
    /// Capability sets; `None` keeps what the process has.
    pub caps: Option<CapSets>,
    /// (resource, soft, hard).
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    /// Set no_new_privs.
    pub no_new_privileges: bool,
    /// /proc/self/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// AppArmor profile.
    pub apparmor: Option<String>,
    /// SELinux process label.
    pub selinux_label: Option<String>,
    /// Allocate a pty.
    pub terminal: bool,
    /// (height, width) of the pty.
    pub console_size: Option<(u16, u16)>,
    /// Number of fds (from 3) passed through.
    pub preserve_fds: u32,
    /// Set LISTEN_PID for socket activation (LISTEN_FDS was in the runtime's env).
    pub listen_fds: bool,
}

/// The rlimit resource number of a spec rlimit type.
pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

impl ProcessPlan {
    /// Builds the plan from the config's `process`.
    pub fn from_spec(
        p: &Process,
        annotations: Option<&std::collections::HashMap<String, String>>,
    ) -> Self {
        let user = p.user();
        let (h, w) = p
            .console_size()
            .as_ref()
            .map_or((0, 0), |b| (b.height() as u16, b.width() as u16));
        Self {
            args: p.args().clone().unwrap_or_default(),
            env: p.env().clone().unwrap_or_default(),
            cwd: p.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            keep_groups: annotations
                .and_then(|a| a.get(KEEP_GROUPS_ANNOTATION))
                .is_some_and(|v| v == "1" || v == "true"),
            umask: user.umask(),
            caps: p.capabilities().as_ref().map(CapSets::from_spec),
            rlimits: p
                .rlimits()
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|l| (rlimit_resource(l.typ()), l.soft(), l.hard()))
                        .collect()
                })
                .unwrap_or_default(),
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            apparmor: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
            selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
            terminal: p.terminal().unwrap_or(false),
            console_size: (h > 0 && w > 0).then_some((h, w)),
            preserve_fds: 0,
            listen_fds: false,
        }
    }

    /// Value of an env variable in the plan.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// Sets (replaces) an env variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env
            .retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(key));
        self.env.push(format!("{key}={value}"));
    }
}

/// Applies rlimits, oom_score_adj and the LSM labels: what needs the runtime's
/// privileges, before the user switch.
pub fn apply_privileged(plan: &ProcessPlan, procfs: &Procfs) -> Result<(), SetupError> {
    for &(res, soft, hard) in &plan.rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit struct valid for the call.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            return Err(sys(format!(
                "setrlimit {} to {soft}/{hard}",
                rlimit_name(res)
            ))(io::Error::last_os_error()));
        }
    }
    if let Some(adj) = plan.oom_score_adj {
        procfs
            .write("self/oom_score_adj", adj.to_string().as_bytes())
            .map_err(sys(format!("set oom_score_adj to {adj}")))?;
    }
    if let Some(profile) = &plan.apparmor {
        if apparmor_enabled() {
            let data = format!("exec {profile}");
            procfs
                .write("self/attr/apparmor/exec", data.as_bytes())
                .or_else(|_| procfs.write("self/attr/exec", data.as_bytes()))
                .map_err(sys(format!("apply AppArmor profile {profile}")))?;
        } else {
            tracing::warn!("AppArmor is not enabled on this host: profile {profile} ignored");
        }
    }
    if let Some(label) = &plan.selinux_label {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            procfs
                .write("self/attr/exec", label.as_bytes())
                .map_err(sys(format!("set SELinux label {label}")))?;
        } else {
            tracing::warn!("SELinux is not enabled on this host: label {label} ignored");
        }
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn rlimit_name(res: libc::c_int) -> String {
    format!("resource {res}")
}

/// Switches to the container user: drops the bounding set, sets groups, gid and uid
/// while keeping the permitted capabilities, and makes them effective until
/// [`finish_capabilities`].
pub fn switch_user(plan: &ProcessPlan, last_cap: u32) -> Result<(), SetupError> {
    if let Some(caps) = &plan.caps {
        capabilities::drop_bounding(caps, last_cap).map_err(sys("drop bounding capabilities"))?;
    }
    // SAFETY: PR_SET_KEEPCAPS takes an integer.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(sys("prctl(PR_SET_KEEPCAPS)")(io::Error::last_os_error()));
    }
    if !plan.keep_groups {
        let groups: Vec<libc::gid_t> = plan.additional_gids.clone();
        // SAFETY: setgroups reads `len` gids from a valid buffer.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            // EPERM: setgroups is denied in this user namespace (rootless single
            // mapping); only fatal when groups were asked for.
            if !(e.raw_os_error() == Some(libc::EPERM) && groups.is_empty()) {
                return Err(sys(format!("setgroups {groups:?}"))(e));
            }
        }
    }
    // SAFETY: setresgid/setresuid take integers.
    if unsafe { libc::setresgid(plan.gid, plan.gid, plan.gid) } != 0 {
        return Err(sys(format!("setresgid {}", plan.gid))(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(plan.uid, plan.uid, plan.uid) } != 0 {
        return Err(sys(format!("setresuid {}", plan.uid))(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: PR_SET_KEEPCAPS takes an integer.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(caps) = &plan.caps {
        // Keep every permitted capability effective while the runtime finishes
        // (seccomp without no_new_privs needs CAP_SYS_ADMIN).
        let interim = CapSets {
            effective: caps.permitted | current_permitted(),
            permitted: caps.permitted | current_permitted(),
            ..*caps
        };
        capabilities::apply(
            &CapSets {
                ambient: 0,
                ..interim
            },
            last_cap,
        )
        .map_err(sys("set capabilities"))?;
    }
    if let Some(mask) = plan.umask {
        // SAFETY: umask takes an integer.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}

fn current_permitted() -> u64 {
    let mut hdr = [0x2008_0522u32, 0];
    let mut data = [[0u32; 3]; 2];
    // SAFETY: capget writes two v3 data structs into `data`.
    let r = unsafe { libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr()) };
    if r != 0 {
        return 0;
    }
    (data[0][1] as u64) | ((data[1][1] as u64) << 32)
}

/// Sets the final capability sets (after seccomp, right before exec).
pub fn finish_capabilities(plan: &ProcessPlan, last_cap: u32) -> Result<(), SetupError> {
    if let Some(caps) = &plan.caps {
        capabilities::apply(caps, last_cap).map_err(sys("set capabilities"))?;
    }
    if plan.no_new_privileges {
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integers.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(sys("set no_new_privs")(io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Changes to the working directory and makes sure it is inside the container (a cwd
/// reached through a leaked fd would show as unreachable).
pub fn enter_cwd(cwd: &Path) -> Result<(), SetupError> {
    std::env::set_current_dir(cwd)
        .map_err(sys(format!("chdir to process.cwd {}", cwd.display())))?;
    let mut buf = [0u8; 4096];
    // SAFETY: getcwd writes at most buf.len() bytes into buf.
    let p = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
    if p.is_null() || buf[0] != b'/' {
        return Err(SetupError::CwdOutside {
            cwd: cwd.to_owned(),
        });
    }
    Ok(())
}

/// HOME from the container's /etc/passwd for `uid`, or `/`.
pub fn home_of(uid: u32) -> String {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return "/".into();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
        })
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// Finds args[0] along the container's PATH (a name with a `/` is used as is).
pub fn find_executable(name: &str, path: Option<&str>) -> Result<CString, SetupError> {
    let nf = || SetupError::NotFound {
        name: name.to_owned(),
    };
    if name.is_empty() {
        return Err(nf());
    }
    if name.contains('/') {
        let c = CString::new(name).map_err(|_| nf())?;
        // SAFETY: stat and access read a NUL-terminated path; `st` is valid for writes.
        let (exists, ok) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let exists = libc::stat(c.as_ptr(), &mut st) == 0;
            (
                exists,
                exists
                    && st.st_mode & libc::S_IFMT == libc::S_IFREG
                    && libc::access(c.as_ptr(), libc::X_OK) == 0,
            )
        };
        return match (exists, ok) {
            (_, true) => Ok(c),
            (true, false) => Err(SetupError::NotExecutable {
                name: name.to_owned(),
            }),
            (false, false) => Err(nf()),
        };
    }
    let path = path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{name}");
        let Ok(c) = CString::new(candidate) else {
            continue;
        };
        // SAFETY: access and stat read a NUL-terminated path; `st` is valid for writes.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(c.as_ptr(), &mut st) == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFREG
                && libc::access(c.as_ptr(), libc::X_OK) == 0
            {
                return Ok(c);
            }
        }
    }
    Err(nf())
}

/// Marks every fd but stdio and the preserved ones close-on-exec, and clears the flag on
/// the preserved ones that are not the runtime's own.
pub fn prepare_fds(preserve: u32, own: &[RawFd]) -> Result<(), SetupError> {
    let first_closed = 3 + preserve as RawFd;
    crate::sys::cloexec_from(first_closed).map_err(sys("mark fds close-on-exec"))?;
    for fd in 3..first_closed {
        if own.contains(&fd) {
            continue;
        }
        if crate::sys::fd_is_open(fd) {
            crate::sys::set_cloexec(fd, false).map_err(sys(format!("preserve fd {fd}")))?;
        }
    }
    Ok(())
}

/// Resets signal dispositions and the mask the runtime set, so the container process
/// starts with defaults (Rust ignores SIGPIPE, the runtime blocks signals it forwards).
pub fn reset_signals() {
    // SAFETY: plain signal-state syscalls with valid, zeroed structs.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// execve(2); returns only on failure.
pub fn exec(path: &CString, args: &[String], env: &[String]) -> SetupError {
    let to_c = |v: &[String]| -> Vec<CString> {
        v.iter()
            .filter_map(|s| CString::new(s.as_bytes()).ok())
            .collect()
    };
    let argv = to_c(args);
    let envp = to_c(env);
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated strings that
    // outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    SetupError::Sys {
        op: format!("exec {}", path.to_string_lossy()),
        source: io::Error::last_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_helpers() {
        let mut p = ProcessPlan {
            env: vec!["A=1".into(), "PATH=/bin".into()],
            ..Default::default()
        };
        assert_eq!(p.env_var("PATH"), Some("/bin"));
        assert_eq!(p.env_var("PAT"), None);
        p.set_env("A", "2");
        assert_eq!(p.env_var("A"), Some("2"));
        assert_eq!(p.env.len(), 2);
    }

    #[test]
    fn executable_lookup() {
        assert!(find_executable("sh", Some("/nonexistent:/bin")).is_ok());
        assert!(matches!(
            find_executable("definitely-not-here", Some("/bin")),
            Err(SetupError::NotFound { .. })
        ));
        assert_eq!(
            find_executable("/bin/sh", None).unwrap().to_str().unwrap(),
            "/bin/sh"
        );
        assert!(matches!(
            find_executable("/not.here", None),
            Err(SetupError::NotFound { .. })
        ));
        assert!(matches!(
            find_executable("/etc/passwd", None),
            Err(SetupError::NotExecutable { .. })
        ));
        assert!(matches!(
            find_executable("/", None),
            Err(SetupError::NotExecutable { .. })
        ));
        let e = find_executable("/not.here", None).unwrap_err().to_string();
        assert!(e.contains("no such file or directory"), "{e}");
        let e = find_executable("nope", Some("/bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        let e = find_executable("/etc/passwd", None).unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{e}");
        assert_eq!(e.exit_status(), 126);
    }

    #[test]
    fn rlimit_mapping() {
        assert_eq!(
            rlimit_resource(PosixRlimitType::RlimitNofile),
            libc::RLIMIT_NOFILE as libc::c_int
        );
    }
}

//! Shared harness of the integration tests: bundles with a busybox rootfs and the static
//! `liana-checker` probe, a private state root per test, running the CLI as root or as
//! the unprivileged test user, and leak checks.
//!
//! Tests need root (CI runs them as root); rootless tests run the runtime as the user
//! `lianatest` (created by the test set-up with /etc/subuid and /etc/subgid entries).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use serde_json::Value;

/// The unprivileged user rootless tests run as.
pub const TEST_USER: &str = "lianatest";

/// Workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The runtime binary under test: liana-runtime, or the binary named by
/// `LIANA_IT_RUNTIME` (e.g. `/usr/sbin/runc`, to check that the tests themselves are
/// right against the runtime liana replaces).
pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("LIANA_IT_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_liana-runtime")),
    }
}

/// True when the tests run against another runtime than liana (`LIANA_IT_RUNTIME`).
pub fn other_runtime() -> bool {
    std::env::var_os("LIANA_IT_RUNTIME").is_some_and(|p| !p.is_empty())
}

/// The static checker, built on first use.
pub fn checker_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let dir = workspace().join("target/checker");
    let bin = dir.join("release/liana-checker");
    BUILD.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args([
                "rustc",
                "-q",
                "-p",
                "liana-checker",
                "--release",
                "--target-dir",
            ])
            .arg(&dir)
            .args(["--", "-C", "target-feature=+crt-static"])
            .status()
            .expect("run cargo to build liana-checker");
        assert!(st.success(), "building the static liana-checker failed");
    });
    bin
}

/// Fails the test unless it runs as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "integration tests run real containers and need root (CI runs them as root)"
    );
}

/// uid/gid of the test user; panics with a hint when it does not exist.
pub fn test_user() -> (u32, u32) {
    let out = Command::new("id").args(["-u", TEST_USER]).output().unwrap();
    assert!(
        out.status.success(),
        "user {TEST_USER} is missing: run scripts/test-setup.sh (useradd + /etc/subuid)"
    );
    let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = Command::new("id").args(["-g", TEST_USER]).output().unwrap();
    let gid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

/// A unique container id.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn chown_r(path: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A bundle: a rootfs with busybox applets and /checker, and a config.json.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config, written by [`Bundle::write`] (and before every run).
    pub config: Value,
    owner: Option<(u32, u32)>,
}

impl Bundle {
    /// A rootful bundle from `liana-runtime spec`, with terminal off.
    pub fn new() -> Self {
        Self::make(None)
    }

    /// A bundle owned by the test user, with `spec --rootless` generated as that user.
    pub fn rootless() -> Self {
        Self::make(Some(test_user()))
    }

    fn make(owner: Option<(u32, u32)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("liana-it-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "var"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::copy(checker_bin(), rootfs.join("checker")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
        std::fs::set_permissions(
            rootfs.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        if let Some((uid, gid)) = owner {
            chown_r(dir.path(), uid, gid);
        }
        let mut spec = Command::new(runtime_bin());
        spec.arg("spec").arg("--bundle").arg(dir.path());
        if owner.is_some() {
            spec.arg("--rootless");
        }
        let out = as_user(spec, owner).output().unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["/checker", "report"]);
        let b = Self { dir, config, owner };
        b.write();
        b
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = serde_json::json!(args);
        self.write();
        self
    }

    /// Edits the config with `f`, then writes it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.write();
        self
    }

    /// Writes config.json.
    pub fn write(&self) {
        let p = self.dir.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
    }
}

fn as_user(cmd: Command, owner: Option<(u32, u32)>) -> Command {
    match owner {
        None => cmd,
        Some(_) => {
            let prog = cmd.get_program().to_owned();
            let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                TEST_USER,
                "--regid",
                TEST_USER,
                "--init-groups",
                "--",
            ])
            .arg(prog)
            .args(args);
            if let Some(d) = cmd.get_current_dir() {
                c.current_dir(d);
            }
            c
        }
    }
}

/// Runs `cmd` with stdout and stderr in temporary files; waits only for the process.
pub fn output_via_files(mut cmd: Command) -> Output {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    cmd.stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let status = cmd.status().unwrap();
    let read = |f: &mut std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// A private state root, and who runs the runtime.
pub struct Runtime {
    root: tempfile::TempDir,
    owner: Option<(u32, u32)>,
    extra: Vec<String>,
    bin: PathBuf,
}

impl Runtime {
    /// Runs the runtime as root.
    pub fn new() -> Self {
        require_root();
        Self {
            root: tempfile::Builder::new()
                .prefix("liana-state-")
                .tempdir()
                .unwrap(),
            owner: None,
            extra: Vec::new(),
            bin: runtime_bin(),
        }
    }

    /// Runs the runtime as the unprivileged test user.
    pub fn rootless() -> Self {
        require_root();
        let (uid, gid) = test_user();
        let root = tempfile::Builder::new()
            .prefix("liana-state-")
            .tempdir()
            .unwrap();
        chown_r(root.path(), uid, gid);
        Self {
            root,
            owner: Some((uid, gid)),
            extra: Vec::new(),
            bin: runtime_bin(),
        }
    }

    /// Adds global flags (e.g. `--cgroup-manager disabled`).
    pub fn with_flags(mut self, flags: &[&str]) -> Self {
        self.extra.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Runs this binary instead of the runtime under test (e.g. a copy that a test may
    /// see overwritten).
    pub fn with_binary(mut self, bin: &Path) -> Self {
        self.bin = bin.to_owned();
        self
    }

    /// The binary this runner executes.
    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command with the global flags set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root.path())
            .args(&self.extra)
            .args(args);
        c.stdin(Stdio::null());
        as_user(c, self.owner)
    }

    /// Runs with the bundle as working directory.
    pub fn in_bundle(&self, b: &Bundle, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        c.current_dir(b.path());
        output_via_files(c)
    }

    /// Runs and returns the output. Output goes through files, not pipes, so that a
    /// container that inherits them (create, run -d) does not hold the call up.
    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd(args))
    }

    /// Runs with `fds` (fd number in the runtime, fd of the test) inherited by the
    /// runtime without close-on-exec, and `env` set: the runtime's caller leaks them.
    pub fn run_leaking(
        &self,
        args: &[&str],
        fds: &[(i32, std::os::fd::BorrowedFd<'_>)],
        env: &[(&str, &str)],
    ) -> Output {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let pairs: Vec<(i32, i32)> = fds.iter().map(|(n, fd)| (*n, fd.as_raw_fd())).collect();
        // SAFETY: the closure only calls dup2/fcntl, which are async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                // Move every source out of the way first, so that targets may overlap
                // sources.
                let mut moved = Vec::new();
                for &(_, src) in &pairs {
                    let tmp = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 1000);
                    if tmp < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    moved.push(tmp);
                }
                for (&(target, _), &tmp) in pairs.iter().zip(&moved) {
                    if libc::dup2(tmp, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        output_via_files(c)
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `run --bundle B ID` in the foreground; returns (exit code, stdout, stderr).
    pub fn run_container(&self, b: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.run(&["run", "--bundle", b.path().to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the bundle's checker (`/checker report`) and parses its report.
    pub fn report(&self, b: &Bundle, id: &str) -> Value {
        let (code, out, err) = self.run_container(b, id);
        assert_eq!(code, 0, "container failed: {out}{err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad report {out:?}: {e}"))
    }

    /// `state ID` as JSON.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Best effort: never leave containers behind, even when a test failed.
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                if e.path().join("status").exists() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    let _ = self.run(&["delete", "--force", &id]);
                }
            }
        }
    }
}

/// Directories named `id` in any cgroup hierarchy (there should be none after delete).
pub fn cgroup_leftovers(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 4 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if e.file_name().to_string_lossy() == id {
                    found.push(e.path());
                }
                walk(&e.path(), id, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), id, 0, &mut found);
    found
}

/// Mount points of the host under `path` (there should be none after delete).
pub fn mounts_under(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(p.as_ref()))
        .collect()
}

/// Pids of processes whose command line mentions `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Asserts nothing of container `id` is left: state dir, cgroups, mounts, processes.
pub fn assert_gone(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(
        !rt.root().join(id).exists(),
        "state dir of {id} left behind"
    );
    assert!(
        cgroup_leftovers(id).is_empty(),
        "cgroups left: {:?}",
        cgroup_leftovers(id)
    );
    assert!(
        mounts_under(b.path()).is_empty(),
        "mounts left: {:?}",
        mounts_under(b.path())
    );
}

/// Waits up to `secs` seconds for `path` to exist.
pub fn wait_for_file(path: &Path, secs: f64) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    path.exists()
}

/// Waits up to `secs` seconds for container `id` to stop.
pub fn wait_stopped(rt: &Runtime, id: &str, secs: f64) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        if rt.state(id)["status"] == "stopped" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// The fd numbers of a checker report.
pub fn report_fds(r: &Value) -> Vec<i64> {
    r["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect()
}

/// Parses the first JSON object printed on a line of `out`.
pub fn parse_report(out: &str) -> Value {
    out.lines()
        .find_map(|l| {
            serde_json::from_str::<Value>(l.trim())
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or_else(|| panic!("no JSON report in {out:?}"))
}

/// A unix socket that accepts one connection and receives one fd with SCM_RIGHTS (a
/// console socket for `--console-socket`, or a seccomp agent's socket for
/// `listenerPath`), on a thread.
pub struct FdReceiver {
    dir: tempfile::TempDir,
    thread: Option<std::thread::JoinHandle<Option<Received>>>,
}

/// An fd received over a unix socket, and the bytes that came with it.
pub type Received = (std::os::fd::OwnedFd, Vec<u8>);

impl FdReceiver {
    /// Listens at a fresh path; `owner` gets the socket (for rootless runtimes).
    pub fn new(owner: Option<(u32, u32)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("liana-sock-")
            .tempdir()
            .unwrap();
        Self::listen(dir, owner)
    }

    /// Takes the next connection at the same path (after [`FdReceiver::take`]).
    pub fn again(self, owner: Option<(u32, u32)>) -> Self {
        let _ = std::fs::remove_file(self.path());
        Self::listen(self.dir, owner)
    }

    fn listen(dir: tempfile::TempDir, owner: Option<(u32, u32)>) -> Self {
        let path = dir.path().join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        let thread = std::thread::spawn(move || {
            use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
            listener.set_nonblocking(true).unwrap();
            let start = std::time::Instant::now();
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if start.elapsed().as_secs() < 30 => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    Err(_) => return None,
                }
            };
            stream.set_nonblocking(false).unwrap();
            let mut data = Vec::new();
            let mut fd = None;
            loop {
                let mut buf = vec![0u8; 65536];
                let mut iov = [std::io::IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
                let msg = nix::sys::socket::recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .ok()?;
                let n = msg.bytes;
                for c in msg.cmsgs().ok()? {
                    if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // SAFETY: received with SCM_RIGHTS: a new fd that we own.
                            let owned = unsafe { OwnedFd::from_raw_fd(f) };
                            fd.get_or_insert(owned);
                        }
                    }
                }
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            fd.map(|f| (f, data))
        });
        Self {
            dir,
            thread: Some(thread),
        }
    }

    /// The socket's path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Waits for the fd and whatever was sent with it.
    pub fn take(&mut self) -> Option<Received> {
        self.thread.take()?.join().ok().flatten()
    }
}

/// Reads what is available on `fd` for up to `secs` seconds, until `until` shows up
/// (with an empty `until`, until end of file: a pty master once the process is gone).
pub fn read_until(fd: std::os::fd::BorrowedFd<'_>, until: &str, secs: f64) -> String {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: read into a buffer of the given size.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
        if !until.is_empty() && String::from_utf8_lossy(&out).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|st| st != 'Z' && st != 'X')
}

/// The host directory of `pid`'s cgroup in each hierarchy, keyed by v1 controller
/// (`memory`, `cpu`, `name=systemd`...) and `""` for the unified hierarchy.
pub fn cgroup_dirs(pid: i32) -> std::collections::BTreeMap<String, PathBuf> {
    let mut mounts = std::collections::BTreeMap::new();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let (root, target, fstype) = (f[3], f[4], f[sep + 1]);
        let keys: Vec<String> = match fstype {
            "cgroup2" => vec![String::new()],
            "cgroup" => f[sep + 3]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro" | "clone_children" | "noprefix"))
                .filter(|o| !o.starts_with("release_agent=") && !o.starts_with("xattr"))
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        for k in keys {
            mounts.insert(k, (root.to_owned(), PathBuf::from(target)));
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for l in std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
    {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap_or(""), parts.next());
        let Some(path) = path else { continue };
        for c in ctrls.split(',') {
            if let Some((root, target)) = mounts.get(c) {
                let rel = path
                    .strip_prefix(root.as_str())
                    .unwrap_or(path)
                    .trim_start_matches('/');
                out.insert(c.to_owned(), target.join(rel));
            }
        }
    }
    out
}

/// Reads a control file of `pid`'s cgroup in `controller`'s hierarchy, trimmed.
pub fn cgroup_file(pid: i32, controller: &str, file: &str) -> String {
    let dir = cgroup_dirs(pid)
        .remove(controller)
        .unwrap_or_else(|| panic!("pid {pid} has no {controller:?} cgroup"));
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

impl Runtime {
    /// Runs with `input` on stdin (e.g. `update --resources -`).
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::{Seek, Write};
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(input).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut c = self.cmd(args);
        c.stdin(f);
        output_via_files(c)
    }

    /// `run -d --bundle B ID`, asserting success; returns the init pid.
    pub fn run_detached(&self, b: &Bundle, id: &str) -> i32 {
        self.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), id]);
        self.state(id)["pid"].as_i64().unwrap() as i32
    }
}

//! CVE-2019-5736 and CVE-2016-9962: the runtime binary and the exec stage's fds.

use super::*;

// ---------------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime binary through /proc/PID/exe
// ---------------------------------------------------------------------------------

/// Copies the dynamic loader and libraries `bin` needs into `rootfs`, at the same paths:
/// the attacker owns the image, so the runtime can be made to run inside it.
fn copy_libraries(bin: &Path, rootfs: &Path) {
    let out = std::process::Command::new("ldd").arg(bin).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        let Some(path) = path else { continue };
        let dest = rootfs.join(path.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&path, &dest).unwrap();
    }
}

/// Runs `cmd` for at most 20 s; false when it cannot run at all (its binary was
/// overwritten).
fn run_briefly(mut cmd: std::process::Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    for _ in 0..2000 {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat /proc/{0}/status | grep -E 'State|Sig'; ls -l /proc/{0}/fd; cat /proc/{0}/stack; \
             ps -eo pid,ppid,stat,cmd | grep -v grep | grep -E 'liana|checker' >&2",
            child.id()
        ))
        .status();
    let _ = child.kill();
    let _ = child.wait();
    panic!("{cmd:?} hung");
}

#[test]
fn cve_2019_5736_exec_cannot_overwrite_the_runtime() {
    // The runtime under test is a copy, so that a successful attack only damages it.
    let bin_dir = tempfile::Builder::new()
        .prefix("liana-bin-")
        .tempdir()
        .unwrap();
    let bin = bin_dir.path().join("liana-runtime");
    fs::copy(runtime_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let before = read_file(&bin);
    let rt = Runtime::new().with_binary(&bin);

    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    copy_libraries(&bin, &rootfs);
    // The exec'd /bin/sh is a script whose interpreter is the exec'ing process's own
    // executable: the kernel runs the runtime inside the container, as the container's
    // process, where the attacker can open its /proc/PID/exe.
    fs::remove_file(rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("bin/sh"), "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(rootfs.join("bin/sh"), fs::Permissions::from_mode(0o755)).unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["args"] = json!(["/checker", "attack-exe", "60", "/tmp/attack.json"]);
    });
    let id = unique_id("cve-2019-5736");
    run_detached(&rt, &b, &id);
    assert!(wait_for_file(&rootfs.join("tmp/attack-ready"), 10.0));

    // Stops as soon as the binary is overwritten: running it again would fail (ENOEXEC).
    let intact = || read_file(&bin)[..256] == before[..256];
    'rounds: for _ in 0..15 {
        for args in [
            &["exec", &id, "/bin/sh"][..],
            &["exec", "--detach", &id, "/bin/sh"][..],
            // The set-up stage itself, for a while visible in the container.
            &["exec", &id, "/checker", "exit", "0"][..],
        ] {
            if !intact() || !run_briefly(rt.cmd(args)) {
                break 'rounds;
            }
        }
    }
    // Every runtime process is gone: let the attacker retry its reopens, then stop it.
    std::thread::sleep(std::time::Duration::from_secs(1));
    fs::write(rootfs.join("tmp/attack-stop"), "1").unwrap();
    assert!(
        wait_for_file(&rootfs.join("tmp/attack.json"), 70.0),
        "attacker gave no summary"
    );
    let summary = read_summary(&rootfs.join("tmp/attack.json"));
    let modified = read_file(&bin) != before;
    if modified {
        // Restore it so that the clean-up can run it.
        fs::write(&bin, &before).unwrap();
    }
    rt.ok(&["delete", "--force", &id]);
    assert!(
        !modified,
        "the runtime binary on the host was overwritten from the container: {summary}"
    );
    assert_eq!(summary["written"], 0, "{summary}");
    // The attack must have reached the runtime's executable (the host file itself,
    // liana's sealed copy of it, or the host file seen through liana's read-only overlay:
    // same inode number, the overlay's device), or it proves nothing.
    let host = fs::metadata(&bin).unwrap();
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    let held = summary["held"].as_array().unwrap();
    assert!(
        held.iter().any(|h| {
            let t = h["target"].as_str().unwrap_or_default();
            t.contains("memfd:liana-runtime")
                || (h["ino"] == host.ino() && (h["dev"] == host.dev() || t.ends_with(&name)))
        }),
        "the attacker never held the runtime's executable: {summary}"
    );
    assert_gone(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------
// CVE-2016-9962: the exec set-up stage's fds, reached through /proc/PID/fd
// ---------------------------------------------------------------------------------

/// A seccomp agent's socket that makes the runtime wait: its listen backlog (0) is kept
/// full, so each connect blocks until the agent, every `delay`, accepts one. The exec
/// stage waits for the runtime to hand its listener over, before it switches to the
/// container's user: a window a slow agent opens in real life.
struct SlowAgent {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl SlowAgent {
    fn new(delay: std::time::Duration) -> Self {
        use std::os::fd::{AsRawFd, FromRawFd};
        let dir = tempfile::Builder::new()
            .prefix("liana-agent-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("agent.sock");
        let addr = nix::sys::socket::UnixAddr::new(&path).unwrap();
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        nix::sys::socket::bind(sock.as_raw_fd(), &addr).unwrap();
        nix::sys::socket::listen(&sock, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
        // SAFETY: a fresh socket fd we own, handed to the listener type.
        let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(sock.as_raw_fd()) };
        std::mem::forget(sock);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut served = 0u32;
                let mut filler = std::os::unix::net::UnixStream::connect(&path).ok();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(delay);
                    // The filler, then whoever was waiting behind it; then fill again.
                    let mut conns = Vec::new();
                    for _ in 0..50 {
                        match listener.accept() {
                            Ok((c, _)) => conns.push(c),
                            Err(_) if conns.len() >= 2 => break,
                            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                        }
                    }
                    served += conns.len().saturating_sub(1) as u32;
                    drop(filler.take());
                    filler = std::os::unix::net::UnixStream::connect(&path).ok();
                }
                served
            })
        };
        Self {
            dir,
            stop,
            thread: Some(thread),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for SlowAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn cve_2016_9962_exec_stage_fds_are_out_of_reach() {
    // The exec set-up stage joins the container's namespaces (it is visible in its pid
    // namespace) while it still holds whatever the runtime's caller leaked to it. A
    // container root with CAP_SYS_PTRACE in its user namespace watches /proc for it and
    // lists its fds that are directories, looking for a host directory; a slow seccomp
    // agent gives it time.
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let leaked = leaks(host.path());
    let fds = borrowed(&leaked);
    let agent = SlowAgent::new(std::time::Duration::from_millis(200));
    let mut b = userns_all_caps_bundle();
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.path(),
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        });
    });
    b.args(&["/checker", "attack-fds", "60", "/tmp/attack.json"]);
    let rootfs = b.rootfs();
    let id = unique_id("cve-2016-9962");
    run_detached(&rt, &b, &id);
    assert!(wait_for_file(&rootfs.join("tmp/attack-ready"), 10.0));
    for _ in 0..5 {
        let out = rt.run_leaking(&["exec", &id, "/checker", "exit", "0"], &fds, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    fs::write(rootfs.join("tmp/attack-stop"), "1").unwrap();
    assert!(wait_for_file(&rootfs.join("tmp/attack.json"), 70.0));
    let summary = read_summary(&rootfs.join("tmp/attack.json"));
    rt.ok(&["delete", "--force", &id]);
    drop(agent);
    assert_eq!(
        summary["escaped"],
        json!([]),
        "a host directory was reached through the exec stage's fds: {summary}"
    );
    // The attacker saw the set-up stages, or the test proves nothing.
    assert!(summary["seen"].as_u64().unwrap() >= 5, "{summary}");
    assert_gone(&rt, &b, &id);
}

/// The attacker's JSON summary; it may still be writing it when the file appears, so
/// read until it parses (10 s at most).
fn read_summary(p: &std::path::Path) -> Value {
    let start = std::time::Instant::now();
    loop {
        match serde_json::from_slice(&read_file(p)) {
            Ok(v) => return v,
            Err(e) if start.elapsed().as_secs() >= 10 => panic!("{}: {e}", p.display()),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

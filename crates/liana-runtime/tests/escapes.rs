//! Escape regression tests: each reproduces a known container escape (most of them
//! found in runc) against liana-runtime, as root, with real containers, and asserts that
//! it fails and that the host is untouched.
//!
//! `LIANA_IT_RUNTIME=/usr/sbin/runc` runs the same attacks against runc (the tests that
//! need liana's own behaviour say so).

mod common;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_str().unwrap().to_owned()
}

/// Replaces the config mount at `dest` (or appends one).
fn set_mount(b: &mut Bundle, dest: &str, m: Value) {
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        match mounts.iter().position(|x| x["destination"] == dest) {
            Some(i) => mounts[i] = m,
            None => mounts.push(m),
        }
    });
}

fn remove_mount(b: &mut Bundle, dest: &str) {
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x["destination"] != dest)
    });
}

fn open_dir(p: &Path) -> OwnedFd {
    fs::File::open(p).unwrap().into()
}

fn host_dir_with_marker() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("liana-host-")
        .tempdir()
        .unwrap();
    fs::write(d.path().join("liana-host-marker"), "host").unwrap();
    d
}

/// A path on the host that does not exist yet (its parent is a fresh temporary dir).
fn absent_host_path() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("liana-escape-")
        .tempdir()
        .unwrap();
    let p = d.path().join("target");
    (d, p)
}

fn cstr(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn read_file(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn run_detached(rt: &Runtime, b: &Bundle, id: &str) {
    rt.ok(&["run", "-d", "--bundle", &bundle_arg(b), id]);
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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
    let summary: Value =
        serde_json::from_slice(&read_file(&rootfs.join("tmp/attack.json"))).unwrap();
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
// CVE-2024-21626: process.cwd through leaked fds, and fds leaked into the container
// ---------------------------------------------------------------------------------

/// fds the runtime's caller leaks: host directories (like runc's leaked
/// /sys/fs/cgroup fd), at several numbers.
fn leaks(host: &Path) -> Vec<(i32, OwnedFd)> {
    let mut v = Vec::new();
    for n in [3, 4, 5, 7, 8, 9, 15] {
        let p = if n % 2 == 0 {
            Path::new("/sys/fs/cgroup")
        } else {
            host
        };
        v.push((n, open_dir(p)));
    }
    v
}

fn borrowed(l: &[(i32, OwnedFd)]) -> Vec<(i32, std::os::fd::BorrowedFd<'_>)> {
    l.iter().map(|(n, f)| (*n, f.as_fd())).collect()
}

#[test]
fn cve_2024_21626_run_refuses_cwd_through_fds() {
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let leaked = leaks(host.path());
    let fds = borrowed(&leaked);
    let mut cwds: Vec<String> = (3..=16).map(|n| format!("/proc/self/fd/{n}")).collect();
    cwds.push("/proc/1/cwd".into());
    cwds.push("/proc/self/fd/7/..".into());
    cwds.push("/work".into()); // a symlink to /proc/self/fd/4, below
    for cwd in &cwds {
        let mut b = Bundle::new();
        symlink("/proc/self/fd/4", b.rootfs().join("work")).unwrap();
        b.edit(|c| c["process"]["cwd"] = json!(cwd));
        let id = unique_id("cve-2024-21626-run");
        let out = rt.run_leaking(&["run", "--bundle", &bundle_arg(&b), &id], &fds, &[]);
        if out.status.success() {
            // Allowed only if the process ended up inside the container.
            let r = parse_report(&stdout(&out));
            let got = r["cwd"].as_str().unwrap();
            assert!(
                got.starts_with('/') && !got.contains("unreachable"),
                "cwd {cwd}: the process started in {got}"
            );
            assert_eq!(report_fds(&r), vec![0, 1, 2], "cwd {cwd}: {}", r["fds"]);
        }
        // Through a leaked fd, it must be refused.
        if leaked
            .iter()
            .any(|(n, _)| cwd == &format!("/proc/self/fd/{n}"))
            || cwd.ends_with("..")
            || cwd == "/work"
        {
            assert!(
                !out.status.success(),
                "cwd {cwd}: the container started: {}",
                stdout(&out)
            );
        }
        let _ = rt.run(&["delete", "--force", &id]);
        assert_gone(&rt, &b, &id);
    }
    assert!(host.path().join("liana-host-marker").exists());
}

#[test]
fn cve_2024_21626_run_sees_only_stdio_and_preserved_fds() {
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let leaked = leaks(host.path());
    let fds = borrowed(&leaked);
    let b = Bundle::new();
    let id = unique_id("cve-2024-21626-fds");
    let out = rt.run_leaking(&["run", "--bundle", &bundle_arg(&b), &id], &fds, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_report(&stdout(&out));
    assert_eq!(report_fds(&r), vec![0, 1, 2], "{}", r["fds"]);
    assert_gone(&rt, &b, &id);

    // --preserve-fds 2 passes 3 and 4 (the caller's choice), and nothing above.
    let id = unique_id("cve-2024-21626-preserve");
    let out = rt.run_leaking(
        &[
            "run",
            "--preserve-fds",
            "2",
            "--bundle",
            &bundle_arg(&b),
            &id,
        ],
        &fds,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_report(&stdout(&out));
    assert_eq!(report_fds(&r), vec![0, 1, 2, 3, 4], "{}", r["fds"]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn cve_2024_21626_exec_refuses_cwd_through_fds_and_leaks_nothing() {
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let leaked = leaks(host.path());
    let fds = borrowed(&leaked);
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    symlink("/proc/self/fd/4", b.rootfs().join("work")).unwrap();
    let id = unique_id("cve-2024-21626-exec");
    run_detached(&rt, &b, &id);

    let mut cwds: Vec<String> = (3..=16).map(|n| format!("/proc/self/fd/{n}")).collect();
    cwds.push("/proc/self/fd/8/..".into());
    cwds.push("/work".into());
    for cwd in &cwds {
        let out = rt.run_leaking(
            &["exec", "--cwd", cwd, &id, "/checker", "report"],
            &fds,
            &[],
        );
        if out.status.success() {
            let r = parse_report(&stdout(&out));
            panic!("exec --cwd {cwd}: the process started in {}", r["cwd"]);
        }
        // The same through --process.
        let mut p = b.config["process"].clone();
        p["cwd"] = json!(cwd);
        p["args"] = json!(["/checker", "report"]);
        let pf = b.path().join("process.json");
        fs::write(&pf, p.to_string()).unwrap();
        let out = rt.run_leaking(&["exec", "--process", pf.to_str().unwrap(), &id], &fds, &[]);
        assert!(
            !out.status.success(),
            "exec --process with cwd {cwd}: started: {}",
            stdout(&out)
        );
    }
    // A plain exec sees stdio only; with --preserve-fds 1, fd 3 as well.
    let out = rt.run_leaking(&["exec", &id, "/checker", "report"], &fds, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_report(&stdout(&out));
    assert_eq!(report_fds(&r), vec![0, 1, 2], "{}", r["fds"]);
    assert_eq!(r["cwd"], "/");
    let out = rt.run_leaking(
        &["exec", "--preserve-fds", "1", &id, "/checker", "report"],
        &fds,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_report(&stdout(&out));
    assert_eq!(report_fds(&r), vec![0, 1, 2, 3], "{}", r["fds"]);
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------
// CVE-2025-31133: /dev/null replaced by a symlink to a procfs file before masking
// ---------------------------------------------------------------------------------

/// A bundle whose /dev is the rootfs's own directory (no tmpfs), with /dev/null a
/// symlink to `target`.
fn bundle_with_planted_dev_null(target: &str) -> Bundle {
    let mut b = Bundle::new();
    let dev = b.rootfs().join("dev");
    symlink(target, dev.join("null")).unwrap();
    let src = dev.to_str().unwrap().to_owned();
    set_mount(
        &mut b,
        "/dev",
        json!({"destination": "/dev", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    b.edit(|c| c["root"]["readonly"] = json!(false));
    b
}

/// Restores core_pattern if a failed protection let a container change it.
struct CorePattern(Vec<u8>);

impl CorePattern {
    fn save() -> Self {
        Self(read_file(Path::new("/proc/sys/kernel/core_pattern")))
    }
    fn unchanged(&self) -> bool {
        read_file(Path::new("/proc/sys/kernel/core_pattern")) == self.0
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        if !self.unchanged() {
            let _ = fs::write("/proc/sys/kernel/core_pattern", &self.0);
        }
    }
}

#[test]
fn cve_2025_31133_masking_with_a_planted_dev_null() {
    let rt = Runtime::new();
    let saved = CorePattern::save();
    for target in [
        "/proc/sys/kernel/core_pattern",
        "../proc/sys/kernel/core_pattern",
        "/proc/sysrq-trigger",
    ] {
        let mut b = bundle_with_planted_dev_null(target);
        b.edit(|c| {
            c["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/proc/version"));
        });
        let script = "/checker write /proc/timer_list '|/tmp/pwned' ; \
             /checker write /proc/kcore '|/tmp/pwned' ; \
             /checker write /proc/version '|/tmp/pwned' ; \
             /checker open /proc/sys/kernel/core_pattern w ; \
             /checker report";
        b.args(&["/bin/sh", "-c", script]);
        let id = unique_id("cve-2025-31133");
        let (code, out, err) = rt.run_container(&b, &id);
        assert!(saved.unchanged(), "{target}: host core_pattern changed");
        if code == 0 {
            let r = parse_report(&out);
            for m in r["mounts"].as_array().unwrap() {
                let t = m["target"].as_str().unwrap();
                if ["/proc/timer_list", "/proc/kcore", "/proc/version"].contains(&t) {
                    assert_ne!(
                        m["fstype"], "proc",
                        "{target}: {t} is masked with a procfs file: {m}"
                    );
                    assert_eq!(
                        m["root"], "/null",
                        "{target}: {t} is masked with something else than the null device: {m}"
                    );
                }
            }
            // /proc/sys/kernel/core_pattern itself stays read-only in the container.
            let open_line = out.lines().nth(3).unwrap_or_default();
            assert!(
                open_line.starts_with("error"),
                "{target}: core_pattern writable: {out}"
            );
        } else {
            assert!(!err.is_empty(), "{target}: failed without a word");
        }
        assert_gone(&rt, &b, &id);
        assert!(
            !b.rootfs().join("tmp/pwned").exists(),
            "{target}: a core pattern ran"
        );
    }
}

// ---------------------------------------------------------------------------------
// CVE-2025-52565: /dev/console or /dev/pts/N symlinks redirecting the console mount
// ---------------------------------------------------------------------------------

/// Replaces the bundle's /dev/null by the real device node.
fn make_dev_null(b: &Bundle) {
    let p = b.rootfs().join("dev/null");
    fs::remove_file(&p).unwrap();
    let c = cstr(&p);
    // SAFETY: mknod reads a NUL-terminated path.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "mknod {}", p.display());
}

fn run_with_console(rt: &Runtime, b: &Bundle, id: &str) -> (bool, String, String) {
    let mut sock = FdReceiver::new(None);
    let out = rt.run(&[
        "run",
        "-d",
        "--console-socket",
        sock.path().to_str().unwrap(),
        "--bundle",
        &bundle_arg(b),
        id,
    ]);
    if !out.status.success() {
        return (false, String::new(), stderr(&out));
    }
    let (master, _) = sock.take().expect("no pty master received");
    let text = read_until(master.as_fd(), "", 10.0);
    (true, text, stderr(&out))
}

#[test]
fn cve_2025_52565_console_symlinks_are_refused() {
    let rt = Runtime::new();
    let saved = CorePattern::save();
    // 1. /dev/console planted as a symlink to a procfs file, /dev not a tmpfs.
    for target in ["/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger"] {
        let mut b = bundle_with_planted_dev_null("null-unused");
        make_dev_null(&b);
        // The image ships what a /dev needs (ptmx into the container's devpts) and a
        // console symlink.
        symlink("pts/ptmx", b.rootfs().join("dev/ptmx")).unwrap();
        symlink(target, b.rootfs().join("dev/console")).unwrap();
        b.edit(|c| c["process"]["terminal"] = json!(true));
        b.args(&[
            "/bin/sh",
            "-c",
            "/checker write /dev/console '|/tmp/pwned'; sleep 1",
        ]);
        let id = unique_id("cve-2025-52565-console");
        let (ok, text, err) = run_with_console(&rt, &b, &id);
        assert!(!ok, "{target}: console symlink accepted: {text}");
        assert!(err.contains("console"), "{target}: {err}");
        assert!(saved.unchanged(), "{target}: host core_pattern changed");
        let _ = rt.run(&["delete", "--force", &id]);
        assert_gone(&rt, &b, &id);
    }
    // 2. No devpts instance of the container's own, /dev/pts/N and /dev/ptmx planted:
    //    either no terminal at all, or a real one; never a procfs file as the console.
    let mut b = bundle_with_planted_dev_null("null-unused");
    make_dev_null(&b);
    remove_mount(&mut b, "/dev/pts");
    let pts = b.rootfs().join("dev/pts");
    fs::create_dir_all(&pts).unwrap();
    for n in 0..16 {
        symlink("/proc/sys/kernel/core_pattern", pts.join(n.to_string())).unwrap();
    }
    symlink("/proc/sys/kernel/core_pattern", pts.join("ptmx")).unwrap();
    symlink("pts/ptmx", b.rootfs().join("dev/ptmx")).unwrap();
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.args(&["/checker", "report"]);
    let id = unique_id("cve-2025-52565-pts");
    let (ok, text, _err) = run_with_console(&rt, &b, &id);
    if ok {
        let r = parse_report(&text.replace("\r\n", "\n"));
        assert_eq!(r["isatty"], json!([true, true, true]), "{text}");
        let console = r["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["target"] == "/dev/console");
        if let Some(m) = console {
            assert_eq!(m["fstype"], "devpts", "console is {m}");
        }
    }
    assert!(saved.unchanged(), "host core_pattern changed");
    if ok {
        let _ = wait_stopped(&rt, &id, 10.0);
    }
    let _ = rt.run(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------
// CVE-2025-52881: the runtime's procfs writes redirected by mounts in the container
// ---------------------------------------------------------------------------------

/// A file on the host that a config mount puts over a procfs file.
fn decoy(b: &Bundle, name: &str, content: &str) -> PathBuf {
    let p = b.path().join(name);
    fs::write(&p, content).unwrap();
    p
}

fn nsenter_read(pid: i64, ns: &str, path: &str) -> String {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--{ns}=/proc/{pid}/ns/{ns}"))
        .args(["cat", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn cve_2025_52881_sysctl_and_oom_score_adj_ignore_decoy_mounts() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let sysctl_decoy = decoy(&b, "decoy-ip-forward", "decoy\n");
    let oom_decoy = decoy(&b, "decoy-oom", "decoy\n");
    let tmpfs_dir = "/proc/sys/net/ipv4/conf";
    // A bind over the very file the sysctl writes, a tmpfs over a directory of sysctls,
    // and binds over the init's oom_score_adj (by its pid and through /proc/self).
    for (dest, src) in [
        ("/proc/sys/net/ipv4/ip_forward", &sysctl_decoy),
        ("/proc/self/oom_score_adj", &oom_decoy),
        ("/proc/1/oom_score_adj", &oom_decoy),
    ] {
        set_mount(
            &mut b,
            dest,
            json!({"destination": dest, "type": "bind", "source": src, "options": ["bind"]}),
        );
    }
    set_mount(
        &mut b,
        tmpfs_dir,
        json!({"destination": tmpfs_dir, "type": "tmpfs", "source": "tmpfs", "options": []}),
    );
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": "1",
            "net.ipv4.conf.default.forwarding": "1",
        });
        c["process"]["oomScoreAdj"] = json!(123);
        c["process"]["args"] = json!(["/checker", "sleep", "60"]);
    });
    let id = unique_id("cve-2025-52881");
    let out = rt.run(&["run", "-d", "--bundle", &bundle_arg(&b), &id]);
    assert_eq!(
        read_file(&sysctl_decoy),
        b"decoy\n",
        "sysctl went to the decoy"
    );
    assert_eq!(
        read_file(&oom_decoy),
        b"decoy\n",
        "oom_score_adj went to the decoy"
    );
    if out.status.success() {
        // Written to the real files: the container's network namespace and the init.
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        assert_eq!(
            nsenter_read(pid, "net", "/proc/sys/net/ipv4/ip_forward"),
            "1"
        );
        assert_eq!(
            nsenter_read(pid, "net", "/proc/sys/net/ipv4/conf/default/forwarding"),
            "1"
        );
        assert_eq!(
            fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                .unwrap()
                .trim(),
            "123"
        );
        rt.ok(&["delete", "--force", &id]);
    }
    assert_gone(&rt, &b, &id);
    // The host's own values are untouched.
    assert_eq!(
        fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim(),
        "0"
    );
}

// ---------------------------------------------------------------------------------
// CVE-2021-30465: mount destinations swapped for symlinks to host paths
// ---------------------------------------------------------------------------------

#[test]
fn cve_2021_30465_symlinked_mount_destinations_stay_inside() {
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let host_existing = host_dir_with_marker();
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    // Absolute and relative symlinks to host paths, as an image could ship them.
    symlink(&host_target, rootfs.join("mnt1")).unwrap();
    symlink(host_existing.path(), rootfs.join("mnt2")).unwrap();
    symlink(
        format!("../../../../../../..{}", host_target.display()),
        rootfs.join("mnt3"),
    )
    .unwrap();
    for (i, dest) in ["/mnt1/sub", "/mnt2", "/mnt3/other"].iter().enumerate() {
        set_mount(
            &mut b,
            dest,
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                   "options": [format!("size={}k", 100 + i)]}),
        );
    }
    let id = unique_id("cve-2021-30465");
    let r = rt.report(&b, &id);
    assert!(
        !host_target.exists(),
        "created on the host: {}",
        host_target.display()
    );
    assert!(host_existing.path().join("liana-host-marker").exists());
    assert_eq!(
        fs::read_dir(host_existing.path()).unwrap().count(),
        1,
        "the host directory was changed"
    );
    // The mounts are in the container, at the re-rooted targets.
    let targets: Vec<String> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["fstype"] == "tmpfs")
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        format!("{}/sub", host_target.display()),
        host_existing.path().display().to_string(),
        format!("{}/other", host_target.display()),
    ] {
        assert!(targets.contains(&want), "{want} not in {targets:?}");
    }
    assert!(rootfs.join(host_target.strip_prefix("/").unwrap()).is_dir());
    assert_gone(&rt, &b, &id);
}

#[test]
fn cve_2021_30465_destination_swapped_during_set_up() {
    // A volume shared with another container (here, a thread of the test) whose
    // directory is swapped for a symlink to a host path while mounts are being made.
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let volume = tempfile::Builder::new()
        .prefix("liana-volume-")
        .tempdir()
        .unwrap();
    let vol = volume.path().to_owned();
    fs::create_dir(vol.join("d")).unwrap();
    symlink(&host_target, vol.join("alt")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (d, alt) = (cstr(&vol.join("d")), cstr(&vol.join("alt")));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: renameat2 reads two NUL-terminated paths.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        d.as_ptr(),
                        libc::AT_FDCWD,
                        alt.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                if r == 0 {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let mut started = 0;
    for round in 0..8 {
        let mut b = Bundle::new();
        set_mount(
            &mut b,
            "/vol",
            json!({"destination": "/vol", "type": "bind",
                   "source": vol.to_str().unwrap(), "options": ["rbind"]}),
        );
        for i in 0..30 {
            let dest = format!("/vol/d/m{i}");
            set_mount(
                &mut b,
                &dest,
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=64k"]}),
            );
        }
        let id = unique_id(&format!("cve-2021-30465-race{round}"));
        let (code, _, _) = rt.run_container(&b, &id);
        if code == 0 {
            started += 1;
        }
        let _ = rt.run(&["delete", "--force", &id]);
        assert_gone(&rt, &b, &id);
        assert!(
            !host_target.exists(),
            "round {round}: a mount point was created on the host"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 100, "the swapper did not run");
    eprintln!("{started}/8 containers started while the volume was being swapped ({swaps} swaps)");
}

// ---------------------------------------------------------------------------------
// Mount destinations and bind sources with `..` and absolute symlinks
// ---------------------------------------------------------------------------------

#[test]
fn dotdot_and_symlinked_mount_destinations_stay_inside() {
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let rel_host = host_target.strip_prefix("/").unwrap().display().to_string();
    let tmpfs = |d: &str| json!({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]});

    // Absolute and `..` symlinks of the image: re-rooted, the mounts land inside.
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    symlink("/", rootfs.join("rootlink")).unwrap();
    symlink("../../../../..", rootfs.join("uplink")).unwrap();
    for d in [
        format!("/rootlink/{rel_host}/c"),
        format!("/uplink/{rel_host}/d"),
    ] {
        set_mount(&mut b, &d, tmpfs(&d));
    }
    let id = unique_id("dotdot-dest");
    let r = rt.report(&b, &id);
    assert!(!host_target.exists(), "created on the host");
    let targets: Vec<&str> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    for sub in ["c", "d"] {
        let want = format!("{}/{sub}", host_target.display());
        assert!(
            targets.contains(&want.as_str()),
            "{want} not in {targets:?}"
        );
        assert!(rootfs.join(&rel_host).join(sub).is_dir());
    }
    assert_gone(&rt, &b, &id);

    // `..` in the destination itself: refused as a config error, or clamped at the
    // root; never outside.
    for d in [
        format!("/../../../../{rel_host}/a"),
        format!("/tmp/../../../{rel_host}/b"),
    ] {
        let mut b = Bundle::new();
        set_mount(&mut b, &d, tmpfs(&d));
        let id = unique_id("dotdot-dest");
        let (code, out, err) = rt.run_container(&b, &id);
        assert!(!host_target.exists(), "{d}: created on the host");
        if code == 0 {
            let r = parse_report(&out);
            let inside = format!("{}/{}", host_target.display(), &d[d.len() - 1..]);
            assert!(
                r["mounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["target"] == inside.as_str()),
                "{d}: not mounted at {inside}"
            );
        } else {
            assert!(err.contains("destination"), "{d}: {err}");
        }
        assert_gone(&rt, &b, &id);
    }
}

#[test]
fn bind_sources_inside_the_rootfs_stay_inside() {
    bind_sources_stay_inside(Bundle::new());
}

#[test]
fn bind_sources_inside_the_rootfs_stay_inside_with_a_user_namespace() {
    // Bind sources are then opened by the runtime's parent, before the user namespace.
    bind_sources_stay_inside(userns_bundle());
}

fn bind_sources_stay_inside(mut b: Bundle) {
    // A bind source inside the container's rootfs (a path of the image) is resolved in
    // the rootfs: `..` and absolute symlinks there cannot reach host files.
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let rootfs = b.rootfs();
    fs::create_dir_all(rootfs.join("data/inner")).unwrap();
    fs::write(rootfs.join("data/inner/in-image"), "image").unwrap();
    symlink(host.path(), rootfs.join("data/abs")).unwrap();
    symlink("../../../../../../../..", rootfs.join("data/up")).unwrap();
    let rel_host = host.path().strip_prefix("/").unwrap().display().to_string();
    let sources = [
        format!("{}/data/abs", rootfs.display()),
        format!("{}/data/up/{rel_host}", rootfs.display()),
        format!("{}/../../../../{rel_host}", rootfs.display()),
        "rootfs/data/abs".to_owned(),
        "rootfs/data/up/tmp".to_owned(),
    ];
    for s in &sources {
        set_mount(
            &mut b,
            "/bound",
            json!({"destination": "/bound", "type": "bind", "source": s, "options": ["rbind"]}),
        );
        b.args(&["/bin/sh", "-c", "ls -a /bound; echo done"]);
        let id = unique_id("bind-src");
        let (code, out, err) = rt.run_container(&b, &id);
        assert!(
            !out.contains("liana-host-marker") && !out.contains("liana-it-"),
            "source {s}: a host directory was bound into the container: {out}{err}"
        );
        if code == 0 {
            assert!(out.contains("done"), "{out}{err}");
        }
        assert_gone(&rt, &b, &id);
    }
    // A source inside the image that stays inside works as usual.
    set_mount(
        &mut b,
        "/bound",
        json!({"destination": "/bound", "type": "bind",
               "source": format!("{}/data/inner", rootfs.display()), "options": ["rbind"]}),
    );
    let id = unique_id("bind-src-ok");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in-image"), "{out}");
    assert_gone(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------
// maskedPaths and readonlyPaths against CAP_SYS_ADMIN in a user namespace
// ---------------------------------------------------------------------------------

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A rootful container in a new user namespace (0 -> 100000, 65536 ids).
fn userns_bundle() -> Bundle {
    let mut b = Bundle::new();
    Command_chown(&b.rootfs(), 100000);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // /sys/fs/cgroup (v1) cannot be mounted from a user namespace here.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
    });
    b
}

/// [`userns_bundle`] with every capability and no seccomp.
fn userns_all_caps_bundle() -> Bundle {
    let mut b = userns_bundle();
    b.edit(|c| {
        let caps = json!(ALL_CAPS);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["root"]["readonly"] = json!(false);
        c["process"]["noNewPrivileges"] = json!(false);
    });
    b
}

#[allow(non_snake_case)]
fn Command_chown(p: &Path, id: u32) {
    let st = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{id}:{id}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn masks_hold_against_cap_sys_admin_in_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = userns_all_caps_bundle();
    // Each attempt prints ok or errno; the last line is the report.
    let script = r#"
        for p in /proc/kcore /proc/timer_list /proc/keys /sys/firmware /proc/acpi /proc/scsi; do
            echo "umount $p: $(/checker umount $p)"
        done
        for p in /proc/sys /proc/sysrq-trigger /proc/bus /proc/irq /proc/fs; do
            echo "remount-rw $p: $(/checker remount $p rw)"
            echo "umount $p: $(/checker umount $p)"
        done
        mkdir -p /tmp/newproc /tmp/newsys
        echo "mount proc: $(/checker mount proc /tmp/newproc proc)"
        echo "mount sysfs: $(/checker mount sysfs /tmp/newsys sysfs)"
        echo "bind proc: $(/checker mount /proc /tmp/newproc bind)"
        echo "write sysrq: $(/checker write /proc/sysrq-trigger h)"
        echo "write core_pattern: $(/checker write /proc/sys/kernel/core_pattern '|/tmp/x')"
        /checker stat /tmp/newproc/timer_list
        /checker report
    "#;
    b.args(&["/bin/sh", "-c", script]);
    let saved = CorePattern::save();
    let id = unique_id("userns-masks");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(saved.unchanged(), "host core_pattern changed");
    let r = parse_report(out.lines().last().unwrap());
    assert_eq!(r["caps"]["eff"], "000001ffffffffff", "{}", r["caps"]);
    let mounts = r["mounts"].as_array().unwrap();
    let at = |t: &str| {
        mounts
            .iter()
            .filter(|m| m["target"] == t)
            .collect::<Vec<_>>()
    };
    for line in out.lines().filter(|l| l.contains(": ")) {
        assert!(!line.ends_with(": ok"), "attack succeeded: {line}\n{out}");
    }
    // Every mask and read-only bind is still in place (of the files this kernel has).
    let exists = |p: &&str| Path::new(p).exists();
    for p in ["/proc/kcore", "/proc/timer_list", "/proc/keys"]
        .into_iter()
        .filter(exists)
    {
        assert!(!at(p).is_empty(), "{p} unmasked: {out}");
    }
    for p in ["/proc/sys", "/proc/sysrq-trigger"]
        .into_iter()
        .filter(exists)
    {
        let m = at(p);
        assert!(
            m.iter()
                .all(|m| m["options"].as_str().unwrap().starts_with("ro")),
            "{p} writable: {m:?}"
        );
    }
    assert_gone(&rt, &b, &id);
}

#[test]
fn user_namespace_container_owns_what_the_runtime_mounted_for_it() {
    // The mounts of a container with a user namespace are made outside it (so that they
    // can be locked): what they create must still belong to the container's root, and
    // uid=/gid= options must mean container ids.
    let rt = Runtime::new();
    let mut b = userns_bundle();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["root"]["readonly"] = json!(false);
    });
    b.args(&[
        "/bin/sh",
        "-c",
        "stat -c '%n %u:%g' / /dev /dev/shm /dev/mqueue /dev/console $(tty); \
         touch /dev/new && echo dev-writable; mkdir /dev/shm/d && echo shm-writable; \
         mkdir /newdir && echo root-writable; cat /proc/self/uid_map; echo end",
    ]);
    let id = unique_id("userns-owner");
    let mut sock = FdReceiver::new(None);
    rt.ok(&[
        "run",
        "-d",
        "--console-socket",
        sock.path().to_str().unwrap(),
        "--bundle",
        &bundle_arg(&b),
        &id,
    ]);
    let (master, _) = sock.take().expect("no pty master");
    let out = read_until(master.as_fd(), "", 10.0).replace("\r\n", "\n");
    for want in [
        "/ 0:0",
        "/dev 0:0",
        "/dev/shm 0:0",
        "/dev/console 0:5",
        "/dev/pts/0 0:5",
        "dev-writable",
        "shm-writable",
        "root-writable",
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} not in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "100000", "65536"]),
        "{out}"
    );
    let _ = wait_stopped(&rt, &id, 10.0);
    rt.ok(&["delete", "--force", &id]);
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
    let summary: Value =
        serde_json::from_slice(&read_file(&rootfs.join("tmp/attack.json"))).unwrap();
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

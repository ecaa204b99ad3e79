//! CVE-2025-31133, CVE-2025-52565, CVE-2025-52881: /dev/null, console and procfs redirection.

use super::*;

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
pub(crate) struct CorePattern(Vec<u8>);

impl CorePattern {
    pub(crate) fn save() -> Self {
        Self(read_file(Path::new("/proc/sys/kernel/core_pattern")))
    }
    pub(crate) fn unchanged(&self) -> bool {
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

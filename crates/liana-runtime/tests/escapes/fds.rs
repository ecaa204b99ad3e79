//! CVE-2024-21626: process.cwd through leaked fds, and fds leaked into the container.

use super::*;

// ---------------------------------------------------------------------------------
// CVE-2024-21626: process.cwd through leaked fds, and fds leaked into the container
// ---------------------------------------------------------------------------------

/// fds the runtime's caller leaks: host directories (like runc's leaked
/// /sys/fs/cgroup fd), at several numbers.
pub(crate) fn leaks(host: &Path) -> Vec<(i32, OwnedFd)> {
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

pub(crate) fn borrowed(l: &[(i32, OwnedFd)]) -> Vec<(i32, std::os::fd::BorrowedFd<'_>)> {
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

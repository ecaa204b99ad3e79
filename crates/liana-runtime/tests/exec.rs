//! `exec` through the CLI, as root and rootless: every flag, the namespaces, cgroup,
//! seccomp filter, capabilities, rlimits and no_new_privs the new process inherits, and
//! its exit status.

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_str().unwrap().to_owned()
}

fn out_of(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A seccomp profile that allows everything but mkdir/mkdirat (EPERM by default).
fn deny_mkdir(errno: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule],
    })
}

/// Starts `b` detached with a long-running checker as init; returns the init's host pid.
fn start_sleeper(rt: &Runtime, b: &mut Bundle, id: &str) -> i64 {
    b.args(&["/checker", "sleep", "120"]);
    b.edit(|c| c["hostname"] = json!("liana"));
    rt.ok(&["run", "-d", "--bundle", &bundle_arg(b), id]);
    rt.state(id)["pid"].as_i64().unwrap()
}

/// The namespaces of a host process, as the checker reports them.
fn host_namespaces(pid: i64) -> Value {
    let mut m = serde_json::Map::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(l) = fs::read_link(format!("/proc/{pid}/ns/{ns}")) {
            m.insert(ns.into(), json!(l.to_string_lossy()));
        }
    }
    Value::Object(m)
}

fn exec_report(rt: &Runtime, args: &[&str]) -> Value {
    let out = rt.run(args);
    let (code, stdout, stderr) = out_of(&out);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    parse_report(&stdout)
}

fn joins_everything(rt: Runtime, mut b: Bundle) {
    let id = unique_id("exec-ns");
    let init = start_sleeper(&rt, &mut b, &id);
    let r = exec_report(&rt, &["exec", &id, "/checker", "report"]);
    assert_eq!(
        r["namespaces"],
        host_namespaces(init),
        "{}",
        r["namespaces"]
    );
    assert_ne!(
        r["namespaces"]["mnt"],
        host_namespaces(std::process::id() as i64)["mnt"]
    );
    assert!(
        r["pid"].as_i64().unwrap() > 1,
        "pid {} in the container",
        r["pid"]
    );
    assert_eq!(r["hostname"], "liana");

    // --detach with --pid-file: the pid file names the process, in the container's
    // cgroup.
    let pid_file = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "/checker",
        "sleep",
        "30",
    ]);
    let pid: i64 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("/checker\0sleep"),
        "pid file names {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap()
    );
    assert_eq!(host_namespaces(pid), host_namespaces(init));
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    joins_everything(Runtime::new(), Bundle::new());
}

#[test]
fn exec_joins_every_namespace_with_a_user_namespace() {
    let mut b = Bundle::new();
    let st = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    fs::set_permissions(
        b.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
    });
    joins_everything(Runtime::new(), b);
}

#[test]
fn exec_joins_every_namespace_rootless() {
    joins_everything(Runtime::rootless(), Bundle::rootless());
}

fn inherits_process_attributes(rt: Runtime, mut b: Bundle) {
    b.edit(|c| {
        c["linux"]["seccomp"] = deny_mkdir(None);
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 900},
            {"type": "RLIMIT_NPROC", "soft": 3000, "hard": 3000},
        ]);
        c["process"]["oomScoreAdj"] = json!(100);
        c["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=1"]);
    });
    let id = unique_id("exec-attrs");
    let init = start_sleeper(&rt, &mut b, &id);
    let _ = init;
    let r = exec_report(&rt, &["exec", &id, "/checker", "report"]);
    assert_eq!(r["seccomp"], "2", "the container's filter applies");
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["caps"]["eff"], "0000000020000420", "{}", r["caps"]);
    assert_eq!(r["caps"]["bnd"], "0000000020000420", "{}", r["caps"]);
    assert_eq!(r["rlimits"]["nofile"], json!([512, 900]));
    assert_eq!(r["rlimits"]["nproc"], json!([3000, 3000]));
    assert_eq!(r["oom_score_adj"], "100");
    assert_eq!(r["env"]["FROM_CONFIG"], "1");
    assert_eq!(r["cwd"], "/");
    // The filter is really there: mkdir fails with EPERM.
    let out = rt.run(&["exec", &id, "/checker", "mkdir", "/tmp/x"]);
    let (code, stdout, stderr) = out_of(&out);
    assert_eq!((code, stdout.trim()), (1, "errno 1"), "{stderr}");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn exec_inherits_seccomp_caps_rlimits_and_no_new_privs() {
    inherits_process_attributes(Runtime::new(), Bundle::new());
}

#[test]
fn exec_inherits_seccomp_caps_rlimits_and_no_new_privs_rootless() {
    inherits_process_attributes(Runtime::rootless(), Bundle::rootless());
}

#[test]
fn exec_flags_override_the_container_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["env"] = json!(["PATH=/bin", "KEEP=1", "OVERRIDE=old"]);
    });
    fs::create_dir_all(b.rootfs().join("work")).unwrap();
    let id = unique_id("exec-flags");
    start_sleeper(&rt, &mut b, &id);

    // Without --no-new-privs the config's false holds; with it, it is set.
    let r = exec_report(&rt, &["exec", &id, "/checker", "report"]);
    assert_eq!(r["no_new_privs"], "0");
    let r = exec_report(&rt, &["exec", "--no-new-privs", &id, "/checker", "report"]);
    assert_eq!(r["no_new_privs"], "1");

    let r = exec_report(
        &rt,
        &[
            "exec",
            "--env",
            "NEW=yes",
            "--env",
            "OVERRIDE=new",
            "--cwd",
            "/work",
            "--user",
            "1000:1000",
            "--additional-gids",
            "10",
            "--additional-gids",
            "20",
            "--cap",
            "CAP_SYS_ADMIN",
            "--cap",
            "CAP_NET_RAW",
            &id,
            "/checker",
            "report",
        ],
    );
    assert_eq!(r["env"]["NEW"], "yes");
    assert_eq!(r["env"]["OVERRIDE"], "new");
    assert_eq!(r["env"]["KEEP"], "1");
    assert_eq!(r["cwd"], "/work");
    assert_eq!(
        (r["uid"].as_i64(), r["gid"].as_i64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(r["groups"], json!([10, 20]));
    // CAP_AUDIT_WRITE, KILL, NET_BIND_SERVICE + SYS_ADMIN (21) and NET_RAW (13) in the
    // bounding set; as uid 1000, execve leaves none permitted without ambient ones.
    assert_eq!(r["caps"]["bnd"], "0000000020202420", "{}", r["caps"]);
    assert_eq!(r["caps"]["prm"], "0000000000000000", "{}", r["caps"]);

    // --user uid alone keeps the config's gid.
    let r = exec_report(&rt, &["exec", "--user", "1000", &id, "/checker", "report"]);
    assert_eq!(
        (r["uid"].as_i64(), r["gid"].as_i64()),
        (Some(1000), Some(0))
    );
    // As root, an added capability is effective.
    let r = exec_report(
        &rt,
        &["exec", "--cap", "CAP_SYS_ADMIN", &id, "/checker", "report"],
    );
    assert_eq!(r["caps"]["eff"], "0000000020200420", "{}", r["caps"]);

    // --process: the whole process from a file (args, env, cwd, user, caps).
    let mut p = b.config["process"].clone();
    p["args"] = json!(["/checker", "report"]);
    p["env"] = json!(["ONLY=process-file"]);
    p["cwd"] = json!("/work");
    p["user"] = json!({"uid": 1234, "gid": 4321, "additionalGids": [7]});
    let pf = b.path().join("process.json");
    fs::write(&pf, p.to_string()).unwrap();
    let r = exec_report(&rt, &["exec", "--process", pf.to_str().unwrap(), &id]);
    assert_eq!(r["env"]["ONLY"], "process-file");
    assert!(r["env"].get("KEEP").is_none(), "{}", r["env"]);
    assert_eq!(r["cwd"], "/work");
    assert_eq!(
        (r["uid"].as_i64(), r["gid"].as_i64()),
        (Some(1234), Some(4321))
    );
    assert_eq!(r["groups"], json!([7]));

    // --preserve-fds: fd 3 and 4 reach the process, 5 does not.
    let f3 = tempfile::tempfile().unwrap();
    let f4 = tempfile::tempfile().unwrap();
    let f5 = tempfile::tempfile().unwrap();
    let out = rt.run_leaking(
        &["exec", "--preserve-fds", "2", &id, "/checker", "report"],
        &[(3, f3.as_fd()), (4, f4.as_fd()), (5, f5.as_fd())],
        &[],
    );
    let (code, stdout, stderr) = out_of(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report_fds(&parse_report(&stdout)), vec![0, 1, 2, 3, 4]);
    let out = rt.run_leaking(
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "/bin/sh",
            "-c",
            "echo through-fd-3 >&3",
        ],
        &[(3, f3.as_fd())],
        &[],
    );
    assert!(out.status.success(), "{}", out_of(&out).2);
    let mut f3 = f3;
    use std::io::{Read, Seek};
    f3.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    f3.read_to_string(&mut text).unwrap();
    assert_eq!(text, "through-fd-3\n");

    // An AppArmor profile on a host without AppArmor is ignored, as runc does.
    let out = rt.run(&[
        "exec",
        "--apparmor",
        "unconfined",
        &id,
        "/checker",
        "exit",
        "0",
    ]);
    if !Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        assert!(out.status.success(), "{}", out_of(&out).2);
    }
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

fn exit_codes(rt: Runtime, mut b: Bundle) {
    let id = unique_id("exec-exit");
    start_sleeper(&rt, &mut b, &id);
    for (args, want) in [
        (&["/checker", "exit", "0"][..], 0),
        (&["/checker", "exit", "7"][..], 7),
        (&["/checker", "exit", "255"][..], 255),
        (&["/bin/sh", "-c", "kill -9 $$"][..], 137),
        (&["/bin/sh", "-c", "kill -15 $$"][..], 143),
    ] {
        let mut a = vec!["exec", id.as_str()];
        a.extend_from_slice(args);
        let out = rt.run(&a);
        let (code, _, stderr) = out_of(&out);
        assert_eq!(code, want, "{args:?}: {stderr}");
    }
    // A process that cannot start is exec's own failure, with the reason (runc: 255).
    fs::write(b.rootfs().join("garbage"), "not an executable\n").unwrap();
    fs::set_permissions(
        b.rootfs().join("garbage"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for args in [
        &["exec", id.as_str(), "/does-not-exist"][..],
        &["exec", id.as_str(), "/garbage"][..],
        // Detached too: exec returns only once execve has succeeded.
        &["exec", "--detach", id.as_str(), "/garbage"][..],
        &["exec", "-d", id.as_str(), "/does-not-exist"][..],
    ] {
        let err = rt.fails(args);
        let name = args.last().unwrap();
        assert!(err.contains(name), "{args:?}: {err}");
    }
    // The container is still running afterwards.
    assert_eq!(rt.state(&id)["status"], "running");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn exec_exit_status_is_the_process_status() {
    exit_codes(Runtime::new(), Bundle::new());
}

#[test]
fn exec_exit_status_is_the_process_status_rootless() {
    exit_codes(Runtime::rootless(), Bundle::rootless());
}

#[test]
fn exec_tty_with_console_socket() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let id = unique_id("exec-tty");
    start_sleeper(&rt, &mut b, &id);

    // --tty --detach: the pty master goes to the console socket.
    let mut sock = FdReceiver::new(None);
    rt.ok(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.path().to_str().unwrap(),
        &id,
        "/checker",
        "report",
    ]);
    let (master, _) = sock.take().expect("no pty master");
    let text = read_until(master.as_fd(), "", 10.0);
    let r = parse_report(&text.replace("\r\n", "\n"));
    assert_eq!(r["isatty"], json!([true, true, true]), "{text}");
    assert_eq!(r["env"]["TERM"], "xterm");

    // --tty in the foreground with a console socket: exec waits for the process (runc
    // refuses a console socket without --detach).
    if other_runtime() {
        rt.ok(&["delete", "--force", &id]);
        return;
    }
    let mut sock = FdReceiver::new(None);
    let path = sock.path();
    let reader = std::thread::spawn(move || {
        let (master, _) = sock.take().expect("no pty master");
        read_until(master.as_fd(), "", 10.0)
    });
    let out = rt.run(&[
        "exec",
        "-t",
        "--console-socket",
        path.to_str().unwrap(),
        &id,
        "/bin/sh",
        "-c",
        "tty; echo done; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", out_of(&out).2);
    let text = reader.join().unwrap();
    assert!(text.contains("/dev/pts/"), "{text}");

    // --tty without a console socket: the runtime copies the pty to its stdio.
    let out = rt.run(&["exec", "-t", &id, "/checker", "report"]);
    let (code, stdout, stderr) = out_of(&out);
    assert_eq!(code, 0, "{stderr}");
    let r = parse_report(&stdout.replace("\r\n", "\n"));
    assert_eq!(r["isatty"], json!([true, true, true]));

    // --tty --detach without a console socket cannot hand the pty to anyone.
    let err = rt.fails(&["exec", "-t", "-d", &id, "/checker", "exit", "0"]);
    assert!(err.contains("console-socket"), "{err}");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn exec_into_paused_and_stopped_containers() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let id = unique_id("exec-paused");
    start_sleeper(&rt, &mut b, &id);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    let err = rt.fails(&["exec", &id, "/checker", "exit", "0"]);
    assert!(
        other_runtime() || (err.contains("paused") && err.contains("--ignore-paused")),
        "{err}"
    );

    // --ignore-paused: the process joins the frozen cgroup and runs once resumed.
    let mut cmd = rt.cmd(&["exec", "--ignore-paused", &id, "/checker", "exit", "5"]);
    cmd.stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    rt.ok(&["resume", &id]);
    let mut code = None;
    for _ in 0..1000 {
        if let Some(st) = child.try_wait().unwrap() {
            code = st.code();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(code, Some(5));
    rt.ok(&["kill", &id, "KILL"]);
    assert!(wait_stopped(&rt, &id, 10.0));

    // Stopped: a clear error naming the container and its state.
    let err = rt.fails(&["exec", &id, "/checker", "exit", "0"]);
    assert!(err.contains(&id) && err.contains("stopped"), "{err}");
    rt.ok(&["delete", &id]);
    let err = rt.fails(&["exec", &id, "/checker", "exit", "0"]);
    assert!(err.contains("does not exist"), "{err}");
    assert_gone(&rt, &b, &id);
}

#[test]
fn exec_into_a_created_container() {
    // runc allows exec before start; the process runs while the init waits.
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("exec-created");
    rt.ok(&["create", "--bundle", &bundle_arg(&b), &id]);
    let out = rt.run(&["exec", &id, "/checker", "exit", "4"]);
    assert_eq!(out.status.code(), Some(4), "{}", out_of(&out).2);
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

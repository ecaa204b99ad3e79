//! linux.seccomp through the runtime, as root and rootless: actions, errno values,
//! argument conditions, podman's default profile, a NOTIFY agent at listenerPath, and
//! filters on exec'd processes.

mod common;

use std::os::fd::AsFd;
use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};

const ARCHES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_str().unwrap().to_owned()
}

/// A profile that allows everything but `rules`.
fn allow_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES, "syscalls": rules})
}

fn podman_profile() -> Value {
    let p = workspace().join("crates/liana-seccomp/tests/fixtures/podman-default-x86_64.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A writable rootfs with `profile` as linux.seccomp.
fn bundle_with(rootless: bool, profile: Value) -> Bundle {
    let mut b = if rootless {
        Bundle::rootless()
    } else {
        Bundle::new()
    };
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["root"]["readonly"] = json!(false);
    });
    b
}

fn runtime(rootless: bool) -> Runtime {
    if rootless {
        Runtime::rootless()
    } else {
        Runtime::new()
    }
}

/// Runs `args` in a fresh container of `b`; returns (exit code, stdout, stderr).
fn run_args(rt: &Runtime, b: &mut Bundle, args: &[&str]) -> (i32, String, String) {
    b.args(args);
    let id = unique_id("seccomp");
    let r = rt.run_container(b, &id);
    assert_gone(rt, b, &id);
    r
}

fn errno_actions(rootless: bool) {
    let rt = runtime(rootless);
    // A custom errnoRet, and the default EPERM.
    let mut b = bundle_with(
        rootless,
        allow_but(json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["not_a_syscall_at_all"], "action": "SCMP_ACT_ERRNO"},
        ])),
    );
    let (code, out, err) = run_args(&rt, &mut b, &["/checker", "mkdir", "/tmp/x"]);
    assert_eq!((code, out.trim()), (1, "errno 18"), "{err}");
    let (code, out, err) = run_args(
        &rt,
        &mut b,
        &[
            "/bin/sh",
            "-c",
            "mkdir /tmp/y; echo status=$?; rmdir /tmp; echo status=$?",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("status="))
            .collect::<Vec<_>>(),
        ["status=1", "status=1"],
        "{out}{err}"
    );
    assert!(err.contains("Invalid cross-device link"), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    // defaultErrnoRet: podman's allow-list profile without mkdir gives ENOSYS (38).
    let mut p = podman_profile();
    for rule in p["syscalls"].as_array_mut().unwrap() {
        if rule["action"] == "SCMP_ACT_ALLOW" {
            rule["names"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    let mut b = bundle_with(rootless, p);
    let (code, out, err) = run_args(&rt, &mut b, &["/checker", "mkdir", "/tmp/x"]);
    assert_eq!((code, out.trim()), (1, "errno 38"), "{err}");
}

#[test]
fn errno_and_default_errno_values() {
    errno_actions(false);
}

#[test]
fn errno_and_default_errno_values_rootless() {
    errno_actions(true);
}

#[test]
fn kill_trap_and_log_actions() {
    let rt = Runtime::new();
    for (action, want) in [
        ("SCMP_ACT_KILL_PROCESS", 128 + libc::SIGSYS),
        ("SCMP_ACT_KILL_THREAD", 128 + libc::SIGSYS),
        ("SCMP_ACT_KILL", 128 + libc::SIGSYS),
        ("SCMP_ACT_TRAP", 128 + libc::SIGSYS),
        ("SCMP_ACT_LOG", 0),
    ] {
        let mut b = bundle_with(
            false,
            allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": action}])),
        );
        let (code, out, err) = run_args(&rt, &mut b, &["/checker", "mkdir", "/tmp/x"]);
        assert_eq!(code, want, "{action}: {out}{err}");
        if want == 0 {
            assert_eq!(out.trim(), "ok");
        }
    }
    // KILL_PROCESS kills every thread: a shell whose child is killed reports SIGSYS.
    let mut b = bundle_with(
        false,
        allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}])),
    );
    let (code, out, err) = run_args(
        &rt,
        &mut b,
        &["/bin/sh", "-c", "/checker mkdir /tmp/x; echo child=$?"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("child={}", 128 + libc::SIGSYS));
}

fn argument_conditions(rootless: bool) {
    let rt = runtime(rootless);
    // mkdir(path, mode): mode is argument 1; mkdirat(dirfd, path, mode): argument 2.
    let rules = |idx: u32| {
        json!([
            {"names": [if idx == 1 { "mkdir" } else { "mkdirat" }], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 11, "args": [{"index": idx, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
            {"names": [if idx == 1 { "mkdir" } else { "mkdirat" }], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 13,
             "args": [{"index": idx, "value": 0o002, "valueTwo": 0o002, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": [if idx == 1 { "mkdir" } else { "mkdirat" }], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 22, "args": [{"index": idx, "value": 0o1000, "op": "SCMP_CMP_GE"}]},
        ])
    };
    let mut all = rules(1).as_array().unwrap().clone();
    all.extend(rules(2).as_array().unwrap().iter().cloned());
    let mut b = bundle_with(rootless, allow_but(Value::Array(all)));
    let script =
        "for m in 755 700 757 1755 750; do echo \"$m $(/checker mkdir /tmp/d$m $m)\"; done";
    let (code, out, err) = run_args(&rt, &mut b, &["/bin/sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        [
            "755 ok",
            "700 errno 11",
            "757 errno 13",
            "1755 errno 22",
            "750 ok"
        ],
        "{err}"
    );
}

#[test]
fn argument_conditions_select_the_action() {
    argument_conditions(false);
}

#[test]
fn argument_conditions_select_the_action_rootless() {
    argument_conditions(true);
}

fn podman_default(rootless: bool) {
    let rt = runtime(rootless);
    let mut b = bundle_with(rootless, podman_profile());
    let script = "echo hello; ls / >/dev/null; cat /etc/passwd | wc -l; mkdir /tmp/d; \
                  touch /tmp/d/f; mv /tmp/d/f /tmp/d/g; rm -r /tmp/d; ps >/dev/null; id -u; \
                  date >/dev/null; sleep 0.1; uname -s; echo $((6*7)); \
                  (echo sub; exit 3); echo sub=$?; /checker report";
    let (code, out, err) = run_args(&rt, &mut b, &["/bin/sh", "-c", script]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..7],
        ["hello", "2", "0", "Linux", "42", "sub", "sub=3"],
        "{out}{err}"
    );
    let r = parse_report(lines.last().unwrap());
    assert_eq!(r["seccomp"], "2");
    // Something the profile refuses without CAP_SYS_ADMIN.
    let (code, out, _) = run_args(
        &rt,
        &mut b,
        &["/checker", "mount", "tmpfs", "/tmp", "tmpfs"],
    );
    assert_eq!((code, out.trim()), (1, "errno 1"));
}

#[test]
fn podmans_default_profile_runs_busybox() {
    podman_default(false);
}

#[test]
fn podmans_default_profile_runs_busybox_rootless() {
    podman_default(true);
}

#[test]
fn late_install_leaves_the_runtime_unfiltered() {
    // Every syscall the runtime itself needs after fork is denied; only the container's
    // process may be filtered, so the container still starts.
    let rt = Runtime::new();
    let denied = [
        "mount",
        "umount2",
        "pivot_root",
        "sethostname",
        "setns",
        "unshare",
        "mknodat",
        "openat2",
        "setgroups",
        "setresuid",
        "setresgid",
        "capset",
        "chdir",
        "fchdir",
        "close_range",
        "sendmsg",
        "setrlimit",
        "prlimit64",
        "keyctl",
    ];
    let mut b = bundle_with(
        false,
        allow_but(json!([{"names": denied, "action": "SCMP_ACT_ERRNO"}])),
    );
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let (code, out, err) = run_args(&rt, &mut b, &["/checker", "report"]);
    assert_eq!(code, 0, "{err}");
    let r = parse_report(&out);
    assert_eq!(r["seccomp"], "2");
    assert_eq!(r["uid"], 1000);
}

#[test]
fn flags_are_accepted() {
    let rt = Runtime::new();
    let mut p = allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]));
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    let mut b = bundle_with(false, p);
    let (code, out, err) = run_args(&rt, &mut b, &["/checker", "mkdir", "/tmp/x"]);
    assert_eq!((code, out.trim()), (1, "errno 1"), "{err}");
}

/// The agent: takes the listener and the container process state from the runtime,
/// answers every mkdir/mkdirat notification with `errno`, and returns what it saw.
fn agent(mut sock: FdReceiver, errno: i32) -> std::thread::JoinHandle<(Value, Vec<i32>)> {
    std::thread::spawn(move || {
        let (fd, payload) = sock.take().expect("the runtime sent no listener");
        let state: Value = serde_json::from_slice(&payload).expect("state is JSON");
        let mut seen = Vec::new();
        while let Ok(n) = liana_seccomp::notify::receive(fd.as_fd()) {
            seen.push(n.data.nr);
            let _ = liana_seccomp::notify::respond(
                fd.as_fd(),
                n.id,
                liana_seccomp::notify::Response::Errno(errno),
            );
        }
        (state, seen)
    })
}

fn notify(rootless: bool) {
    let rt = runtime(rootless);
    let owner = rootless.then(test_user);
    let sock = FdReceiver::new(owner);
    let path: PathBuf = sock.path();
    let mut p = allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
    p["listenerPath"] = json!(path);
    p["listenerMetadata"] = json!("liana-test-metadata");
    let mut b = bundle_with(rootless, p);
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("seccomp-notify");
    let agent1 = agent(sock, libc::EXDEV);
    rt.ok(&["run", "-d", "--bundle", &bundle_arg(&b), &id]);
    let init_pid = rt.state(&id)["pid"].as_i64().unwrap();

    rt.ok(&["kill", &id, "KILL"]);
    assert!(wait_stopped(&rt, &id, 10.0));
    rt.ok(&["delete", &id]);
    let (state, seen) = agent1.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "liana-test-metadata", "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert_eq!(state["pid"], init_pid, "{state}");
    assert!(seen.is_empty(), "the init made no mkdir: {seen:?}");
    assert_gone(&rt, &b, &id);
}

fn notify_answers(rootless: bool) {
    let rt = runtime(rootless);
    let owner = rootless.then(test_user);
    let sock = FdReceiver::new(owner);
    let mut p = allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
    p["listenerPath"] = json!(sock.path());
    let mut b = bundle_with(rootless, p);
    let agent = agent(sock, libc::EXDEV);
    let (code, out, err) = run_args(
        &rt,
        &mut b,
        &["/bin/sh", "-c", "/checker mkdir /tmp/a; ls /tmp"],
    );
    assert_eq!(code, 0, "{err}");
    // The agent's answer is the syscall's result; nothing was created.
    assert_eq!(out.trim(), "errno 18", "{out}{err}");
    let (_, seen) = agent.join().unwrap();
    assert!(
        seen.iter()
            .all(|&nr| nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn notify_agent_answers_the_syscall() {
    notify_answers(false);
}

#[test]
fn notify_agent_answers_the_syscall_rootless() {
    notify_answers(true);
}

#[test]
fn notify_listener_reaches_the_agent_with_the_state() {
    notify(false);
}

#[test]
fn exec_gets_the_filter_and_its_own_listener() {
    let rt = Runtime::new();
    let sock = FdReceiver::new(None);
    let mut p = allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
    p["listenerPath"] = json!(sock.path());
    let mut b = bundle_with(false, p);
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("seccomp-exec");
    let mut first = sock;
    let init_listener = std::thread::spawn(move || {
        let got = first.take();
        (first, got)
    });
    rt.ok(&["run", "-d", "--bundle", &bundle_arg(&b), &id]);
    let (first, got) = init_listener.join().unwrap();
    assert!(got.is_some(), "no listener for the init");
    // The same listenerPath receives the exec'd process's listener.
    let agent = agent(first.again(None), 42);
    let out = rt.run(&["exec", &id, "/checker", "mkdir", "/tmp/from-exec"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "errno 42");
    rt.ok(&["delete", "--force", &id]);
    let (state, seen) = agent.join().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(state["state"]["id"], id.as_str());
    assert!(!b.rootfs().join("tmp/from-exec").exists());
    assert_gone(&rt, &b, &id);
}

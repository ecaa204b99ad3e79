//! What the runtime implements from config.md / config-linux.md, observed from inside
//! the container with the checker, as root.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn sh(rt: &Runtime, b: &mut Bundle, id: &str, script: &str) -> String {
    b.args(&["/bin/sh", "-c", script]);
    let (code, out, err) = rt.run_container(b, id);
    assert_eq!(code, 0, "{script}: {out}{err}");
    out
}

#[test]
fn process_settings() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        let p = &mut c["process"];
        p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
        p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
        let caps = json!(["CAP_NET_RAW"]);
        p["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps,
                                   "inheritable": caps, "ambient": caps});
        p["noNewPrivileges"] = json!(false);
        p["oomScoreAdj"] = json!(500);
        p["env"] = json!(["PATH=/bin", "FOO=bar"]);
        p["cwd"] = json!("/tmp");
    });
    let r = rt.report(&b, &unique_id("proc"));
    assert_eq!(
        (r["uid"].as_i64(), r["gid"].as_i64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(r["groups"], json!([10, 20]));
    assert_eq!(r["umask"], "0077");
    assert_eq!(r["rlimits"]["nofile"], json!([512, 1024]));
    // CAP_NET_RAW is bit 13; as a non-root user it survives exec through the ambient set.
    for set in ["bnd", "eff", "prm", "amb"] {
        assert_eq!(r["caps"][set], "0000000000002000", "{set}: {}", r["caps"]);
    }
    assert_eq!(r["no_new_privs"], "0");
    assert_eq!(r["oom_score_adj"], "500");
    assert_eq!(r["env"]["FOO"], "bar");
    assert_eq!(
        r["env"]["HOME"], "/home/user",
        "HOME comes from the container's passwd"
    );
    assert_eq!(r["cwd"], "/tmp");
}

#[test]
fn hostname_domainname_and_sysctls() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["hostname"] = json!("box1");
        c["domainname"] = json!("example.test");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"});
    });
    let out = sh(&rt, &mut b, &unique_id("uts"), "hostname; /checker report | grep -o '\"domainname\":\"[^\"]*\"'; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["box1", "\"domainname\":\"example.test\"", "1", "4096"]
    );
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .unwrap()
            .trim(),
        "4096",
        "the host's msgmax must not change"
    );
}

#[test]
fn joins_a_network_namespace_by_path() {
    let rt = Runtime::new();
    let name = unique_id("lianans");
    let out = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip netns add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _cleanup = Defer(Box::new({
        let name = name.clone();
        move || {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }));
    let st = Command::new("ip")
        .args([
            "netns", "exec", &name, "ip", "link", "add", "liana0", "type", "veth", "peer", "name",
            "liana1",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let mut b = Bundle::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": format!("/run/netns/{name}")}));
    });
    let r = rt.report(&b, &unique_id("netns"));
    let ifs = r["interfaces"].as_array().unwrap();
    assert!(ifs.contains(&json!("liana0")), "{ifs:?}");
}

struct Defer(Box<dyn Fn()>);
impl Drop for Defer {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
fn user_namespace_with_a_range() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let m = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = m.clone();
        c["linux"]["gidMappings"] = m;
    });
    let id = unique_id("userns");
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
    });
    // Mount points the mapped root cannot create in a rootfs it does not own: make it.
    std::fs::create_dir(b.rootfs().join("scratch")).unwrap();
    let out = sh(
        &rt,
        &mut b,
        &id,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /scratch/x; stat -c %u /scratch/x",
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &words[..6],
        ["0", "100000", "65536", "0", "100000", "65536"],
        "{out}"
    );
    assert_eq!(words[6], "0");
    assert_gone(&rt, &b, &id);
}

#[test]
fn mounts_masks_and_readonly_paths() {
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "from-host").unwrap();
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("secretdir")).unwrap();
    std::fs::write(b.rootfs().join("secretdir/key"), "k").unwrap();
    std::fs::write(b.rootfs().join("etc/secret"), "s3cr3t").unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                      "options": ["noexec", "size=1m", "mode=700"]}),
        );
        m.push(json!({"destination": "/host", "type": "bind",
                      "source": host.path(), "options": ["rbind", "ro", "nosuid"]}));
        c["linux"]["maskedPaths"] = json!(["/etc/secret", "/secretdir", "/does/not/exist"]);
        c["linux"]["readonlyPaths"] = json!(["/etc"]);
    });
    let out = sh(
        &rt,
        &mut b,
        &unique_id("mounts"),
        "cat /host/file; echo; cat /etc/secret | wc -c; ls /secretdir | wc -l; \
         touch /etc/new 2>&1 | grep -c Read-only; touch /host/new 2>&1 | grep -c Read-only; \
         stat -c %a /data; grep ' /data ' /proc/self/mountinfo | grep -c noexec",
    );
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(w, ["from-host", "0", "0", "1", "1", "700", "1"], "{out}");
    assert!(!host.path().join("new").exists());
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "s3cr3t"
    );
}

#[test]
fn devices_and_default_nodes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/sub/mydev", "type": "c", "major": 1,
            "minor": 3, "fileMode": 384, "uid": 7, "gid": 8}]);
    });
    let out = sh(
        &rt,
        &mut b,
        &unique_id("dev"),
        "stat -c '%t:%T %a %u:%g' /dev/sub/mydev; stat -c '%t:%T %a' /dev/null /dev/zero /dev/urandom; \
         readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo null-ok",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1:3 600 7:8");
    assert_eq!(&lines[1..4], ["1:3 666", "1:5 666", "1:9 666"]);
    assert_eq!(&lines[4..7], ["/proc/self/fd", "pts/ptmx", "null-ok"]);
}

#[test]
fn time_namespace_offsets() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    let out = sh(&rt, &mut b, &unique_id("time"), "cut -d. -f1 /proc/uptime");
    let uptime: u64 = out.trim().parse().unwrap();
    let host: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime >= host + 864000 - 5,
        "container uptime {uptime}, host {host}"
    );
}

#[test]
fn preserved_fds_and_socket_activation() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let f = std::fs::File::open(b.rootfs().join("etc/passwd")).unwrap();
    let raw = f.as_raw_fd();
    let id = unique_id("fds");
    let mut cmd = rt.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    cmd.env("LISTEN_FDS", "1");
    // SAFETY: the closure only calls dup2, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if raw != 3 && libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 clears close-on-exec; when the file already is fd 3, clear it here.
            libc::fcntl(3, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let out = output_via_files(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let fds = r["fds"].as_array().unwrap();
    let fd3 = fds
        .iter()
        .find(|f| f["fd"] == 3)
        .unwrap_or_else(|| panic!("no fd 3: {fds:?}"));
    assert!(
        fd3["target"].as_str().unwrap().ends_with("etc/passwd"),
        "{fd3}"
    );
    assert!(
        fds.iter().all(|f| f["fd"].as_i64().unwrap() <= 4),
        "{fds:?}"
    );
    assert_eq!(r["env"]["LISTEN_FDS"], "1");
    assert_eq!(r["env"]["LISTEN_PID"], "1");
}

#[test]
fn hooks_get_the_state_in_order() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let log = b.path().join("hooks.log");
    let hook = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read s; echo \"{name} $s\" >> {}", log.display())]})
    };
    b.args(&["/bin/true"]);
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")], "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        });
    });
    let id = unique_id("hooks");
    let (code, _, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    for line in text.lines() {
        let (name, json) = line.split_once(' ').unwrap();
        let st: Value = serde_json::from_str(json).unwrap();
        assert_eq!(st["id"], id.as_str(), "{name}");
        let want = match name {
            "prestart" | "createRuntime" => "creating",
            "createContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(st["status"], want, "{name}");
    }
}

#[test]
fn exit_status_signals_keep_and_pid_file() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/bin/sh", "-c", "exit 3"]);
    assert_eq!(rt.run_container(&b, &unique_id("exit")).0, 3);
    // A child killed by a signal: the shell's status is 128+N.
    b.args(&["/bin/sh", "-c", "/bin/sh -c 'kill -9 $$'; exit $?"]);
    assert_eq!(rt.run_container(&b, &unique_id("sig")).0, 137);
    // The init itself killed from outside: run reports 128+9.
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("killed");
    let waiter = {
        let cmd = rt.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        std::thread::spawn(move || output_via_files(cmd).status.code())
    };
    for _ in 0..500 {
        if rt.run(&["state", &id]).status.success() && rt.state(&id)["status"] == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    rt.ok(&["kill", &id, "9"]);
    assert_eq!(waiter.join().unwrap(), Some(137));
    b.args(&["/bin/true"]);
    let id = unique_id("keep");
    let pid_file = b.path().join("pid");
    let out = rt.run(&[
        "run",
        "--keep",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(pid > 1);
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn list_kill_names_and_no_pivot() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("list");
    rt.ok(&[
        "run",
        "--detach",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let table = rt.ok(&["list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("running")),
        "{table}"
    );
    let json: Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(rt.ok(&["list", "-q"]).trim(), id);
    let err = rt.fails(&["kill", &id, "NOTASIGNAL"]);
    assert!(err.contains("NOTASIGNAL"), "{err}");
    // The init (pid 1 of its namespace) has no handlers: only SIGKILL reaches it.
    rt.ok(&["kill", &id, "SIGKILL"]);
    for _ in 0..300 {
        if rt.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn console_socket_receives_the_pty() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    });
    b.args(&["/bin/sh", "-c", "stty size; tty; /checker report"]);
    let sock_path = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let id = unique_id("tty");
    let bundle = b.path().to_str().unwrap().to_owned();
    let sp = sock_path.to_str().unwrap().to_owned();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                fd = fds.first().copied();
            }
        }
        fd.expect("pty master fd")
    });
    rt.ok(&["create", "--console-socket", &sp, "--bundle", &bundle, &id]);
    let master = t.join().unwrap();
    rt.ok(&["start", &id]);
    // SAFETY: the fd came to us over SCM_RIGHTS and is owned by this test.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut f, &mut text); // ends with EIO when the slave closes
    assert!(text.contains("33 111"), "console size not applied: {text}");
    assert!(
        text.contains("/dev/console") || text.contains("/dev/pts/"),
        "{text}"
    );
    let json = text.lines().find(|l| l.starts_with('{')).expect("report");
    let r: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(r["isatty"], json!([true, true, true]));
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn foreground_run_owns_the_terminal() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.args(&["/bin/sh"]);
    let id = unique_id("fg");
    // script(1) gives the runtime a terminal; the shell reads our commands from it.
    let cmdline = format!(
        "{} --root {} run --bundle {} {id}",
        runtime_bin().display(),
        rt.root().display(),
        b.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"echo liana-$((6*7))\n").unwrap();
        stdin.write_all(b"exit 5\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("liana-42"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert_gone(&rt, &b, &id);
}

//! The README's first steps, as a new user types them: as an unprivileged user,
//! `liana-runtime spec --rootless`, unpack a rootfs tarball into rootfs/, `run demo`
//! gives a shell; with a network namespace the container has only `lo`; with
//! `--pid-file` and `slirp4netns --configure --mtu=65520 PID tap0` it gets tap0
//! (10.0.2.100) and reaches a server on the host's loopback through 10.0.2.2.
//! Nothing but loopback is contacted (slirp4netns runs with --disable-dns and
//! --outbound-addr=127.0.0.1).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn as_user(dir: &Path, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        TEST_USER,
        "--regid",
        TEST_USER,
        "--init-groups",
        "--",
    ])
    .arg(program)
    .args(args)
    .current_dir(dir);
    c
}

/// A user's bundle made the README way: spec --rootless + a rootfs tarball.
fn user_bundle(rt_root: &Path) -> tempfile::TempDir {
    let (uid, gid) = test_user();
    // The tarball: the harness's busybox rootfs, archived.
    let template = Bundle::new();
    let tar = tempfile::NamedTempFile::new().unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(template.rootfs())
        .arg("-cf")
        .arg(tar.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(
        tar.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let demo = tempfile::Builder::new()
        .prefix("liana-demo-")
        .tempdir()
        .unwrap();
    std::os::unix::fs::chown(demo.path(), Some(uid), Some(gid)).unwrap();
    let _ = rt_root;
    let out = as_user(demo.path(), &runtime_bin(), &["spec", "--rootless"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = as_user(demo.path(), Path::new("/bin/mkdir"), &["rootfs"])
        .status()
        .unwrap();
    assert!(st.success());
    let st = as_user(
        demo.path(),
        Path::new("/bin/tar"),
        &["-C", "rootfs", "-xf", tar.path().to_str().unwrap()],
    )
    .status()
    .unwrap();
    assert!(st.success(), "unpack the rootfs tarball as the user");
    demo
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn readme_walkthrough_shell_network_and_slirp4netns() {
    require_root();
    let (uid, gid) = test_user();
    let state = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(state.path(), Some(uid), Some(gid)).unwrap();
    let root_flag = state.path().to_str().unwrap().to_owned();
    let demo = user_bundle(state.path());
    let rt = runtime_bin();

    // 1. `liana-runtime run demo` gives a shell (terminal: true, as spec writes it).
    let cmdline = format!("{} --root {root_flag} run demo", rt.display());
    let mut child = as_user(
        demo.path(),
        Path::new("/usr/bin/script"),
        &["-qec", &cmdline, "/dev/null"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"echo shell-$((6*7)) $(id -u)\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shell-42 0"), "{text}");
    assert!(out.status.success(), "{text}");

    // 2. With a network namespace (and a writable root) the container has only lo.
    edit_config(demo.path(), |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network"}));
        c["root"]["readonly"] = json!(false);
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["/checker", "report"]);
    });
    let out = as_user(demo.path(), &rt, &["--root", &root_flag, "run", "demo"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["interfaces"], json!(["lo"]));

    // 3. --pid-file + slirp4netns: tap0 with 10.0.2.100 reaches the host's loopback.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nliana-seed-ok\n")
            .unwrap();
    });
    let script = format!(
        "for i in $(seq 100); do ip -4 addr show tap0 2>/dev/null | grep -q 10.0.2.100 && break; sleep 0.1; done; \
         ip -4 addr show tap0 | grep -o '10.0.2.100'; timeout 10 wget -q -O - http://10.0.2.2:{port}/"
    );
    edit_config(demo.path(), |c| {
        c["process"]["args"] = json!(["/bin/sh", "-c", script])
    });
    let pid_file = demo.path().join("demo.pid");
    let log = demo.path().join("demo.out");
    let log_f = std::fs::File::create(&log).unwrap();
    let st = as_user(
        demo.path(),
        &rt,
        &[
            "--root",
            &root_flag,
            "run",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "demo",
        ],
    )
    .stdin(Stdio::null())
    .stdout(log_f.try_clone().unwrap())
    .stderr(log_f)
    .status()
    .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&log).unwrap());
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let mut slirp = as_user(
        demo.path(),
        Path::new("/usr/bin/slirp4netns"),
        &[
            "--configure",
            "--mtu=65520",
            "--disable-dns",
            "--outbound-addr=127.0.0.1",
            pid.trim(),
            "tap0",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = as_user(demo.path(), &rt, &["--root", &root_flag, "state", "demo"])
            .output()
            .unwrap();
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if st["status"] == "stopped" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = slirp.kill();
    let _ = slirp.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("10.0.2.100"), "tap0 was configured: {text}");
    assert!(
        text.contains("liana-seed-ok"),
        "reached the host's loopback server: {text}"
    );
    srv.join().unwrap();
    let st = as_user(demo.path(), &rt, &["--root", &root_flag, "delete", "demo"])
        .status()
        .unwrap();
    assert!(st.success());
}

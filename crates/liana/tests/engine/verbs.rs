//! The other verbs and flags, one container story each.

use std::time::Duration;

use crate::common::{fixture, Instance};

#[test]
fn logs_follow_tail_timestamps_and_json_file() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    let id = l.run_d(&[
        &img,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done",
    ]);
    // -f follows until the container exits.
    let out = l.ok(&["logs", "-f", &id]);
    assert_eq!(out, "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(l.ok(&["logs", "--tail", "2", &id]), "line4\nline5\n");
    let ts = l.ok(&["logs", "-t", "--tail", "1", &id]);
    assert!(ts.starts_with("20") && ts.contains("Z line5"), "{ts}");
    let log =
        std::fs::read_to_string(l.root_dir().join("containers").join(&id).join("ctr.log")).unwrap();
    assert!(
        log.lines().next().unwrap().ends_with(" stdout F line1"),
        "k8s-file: {log}"
    );
    let j = l.run_d(&[
        "--log-driver",
        "json-file",
        &img,
        "sh",
        "-c",
        "printf 'a\\nb'",
    ]);
    l.ok(&["wait", &j]);
    let log =
        std::fs::read_to_string(l.root_dir().join("containers").join(&j).join("ctr.log")).unwrap();
    assert!(
        log.starts_with("{\"log\":\"a\\n\",\"stream\":\"stdout\""),
        "{log}"
    );
    assert_eq!(
        l.ok(&["logs", &j]),
        "a\nb",
        "a partial last line stays partial"
    );
}

#[test]
fn exec_user_env_workdir_and_failures() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let id = l.run_d(&["--name", "ex", &fx.image(), "sleep", "1000"]);
    assert_eq!(
        l.ok(&["exec", "-u", "nobody", "ex", "id", "-u"]).trim(),
        "65534"
    );
    assert_eq!(
        l.ok(&["exec", "-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO"])
            .trim(),
        "bar"
    );
    assert_eq!(l.ok(&["exec", "-w", "/etc", "ex", "pwd"]).trim(), "/etc");
    assert_eq!(l.run(&["exec", "ex", "sh", "-c", "exit 7"]).code, 7);
    assert_eq!(l.run(&["exec", "ex", "/no/such/binary"]).code, 127);
    l.ok(&["exec", "-d", "ex", "sleep", "30"]);
    let top = l.ok(&["top", &id]);
    assert!(top.contains("sleep 30"), "{top}");
    // sleep is pid 1: it ignores TERM (no handler), so KILL it.
    l.ok(&["kill", "-s", "TERM", "ex"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        l.ok(&["ps"]).contains("ex"),
        "pid 1 without a handler ignores SIGTERM"
    );
    l.ok(&["kill", "-s", "KILL", "ex"]);
    assert_eq!(l.ok(&["wait", "ex"]).trim(), "137");
    assert!(
        l.run(&["exec", "ex", "true"]).code != 0,
        "exec in an exited container"
    );
}

#[test]
fn image_config_and_flags() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        l.ok(&a)
    };
    assert_eq!(run(&["--hostname", "box", &img, "hostname"]).trim(), "box");
    // resource flags reach the container's cgroups (v1 here; the files it sees)
    let limits = run(&[
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "100",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--cpuset-cpus",
        "0",
        &img,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares \
         /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes \
         /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/cpuset/cpuset.cpus",
    ]);
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            limits.split_whitespace().collect::<Vec<_>>(),
            ["50000", "512", "100", "67108864", "134217728", "0"]
        );
    }
    assert!(run(&[&img, "cat", "/etc/hosts"]).contains("127.0.0.1"));
    assert_eq!(run(&["-u", "nobody", &img, "id", "-un"]).trim(), "nobody");
    assert_eq!(run(&["--entrypoint", "echo", &img, "a", "b"]).trim(), "a b");
    assert_eq!(run(&["-w", "/tmp", &img, "pwd"]).trim(), "/tmp");
    let envf = l.path().join("env");
    std::fs::write(&envf, "A=1\n# comment\nB=2\n").unwrap();
    assert_eq!(
        run(&[
            "--env-file",
            envf.to_str().unwrap(),
            "-e",
            "B=3",
            &img,
            "sh",
            "-c",
            "echo $A$B"
        ])
        .trim(),
        "13"
    );
    // read-only root with writable tmpfs mounts
    let o = l.run(&["run", "--rm", "--read-only", &img, "touch", "/etc/x"]);
    assert_ne!(o.code, 0);
    run(&["--read-only", &img, "touch", "/tmp/x"]);
    assert!(run(&[
        "--tmpfs",
        "/scratch:size=1m",
        &img,
        "grep",
        "/scratch",
        "/proc/mounts"
    ])
    .contains("tmpfs"));
    assert_eq!(
        run(&["--ulimit", "nofile=512:1024", &img, "sh", "-c", "ulimit -n"]).trim(),
        "512"
    );
    let caps = run(&[
        "--cap-drop",
        "all",
        "--cap-add",
        "net_raw",
        &img,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.contains("0000000000002000"), "{caps}");
    // podman's default seccomp profile is on, unless unconfined
    let filtered = run(&[&img, "grep", "^Seccomp:", "/proc/self/status"]);
    assert!(filtered.contains('2'), "{filtered}");
    let open = run(&[
        "--security-opt",
        "seccomp=unconfined",
        &img,
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert!(open.contains('0'), "{open}");
    // --init puts liana-init in front of the command
    assert!(run(&["--init", &img, "ps", "-o", "pid,args"])
        .lines()
        .any(|x| x.trim().starts_with("1 /run/liana-init")));
    // host network: the host's interfaces
    let ours = std::fs::read_dir("/sys/class/net").unwrap().count();
    let theirs = run(&["--network", "host", &img, "ls", "/sys/class/net"])
        .split_whitespace()
        .count();
    assert_eq!(ours, theirs);
    assert_eq!(run(&[&img, "ls", "/sys/class/net"]).trim(), "lo");
    // --privileged: every capability
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = ours
        .lines()
        .find(|x| x.starts_with("CapBnd:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let caps = run(&["--privileged", &img, "grep", "CapEff", "/proc/self/status"]);
    assert!(
        caps.contains(&bnd),
        "privileged gets our whole bounding set {bnd}: {caps}"
    );
    // --rootfs runs a plain directory
    let rootfs = l.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    assert_eq!(
        run(&[
            "--rootfs",
            rootfs.to_str().unwrap(),
            "/bin/busybox",
            "echo",
            "plain"
        ])
        .trim(),
        "plain"
    );
}

#[test]
fn volumes() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    let host = l.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from host").unwrap();
    let bind = format!("{}:/data", host.display());
    assert_eq!(
        l.ok(&["run", "--rm", "-v", &bind, &img, "cat", "/data/f"]),
        "from host"
    );
    let ro = format!("{}:/data:ro", host.display());
    assert_ne!(
        l.run(&["run", "--rm", "-v", &ro, &img, "touch", "/data/g"])
            .code,
        0
    );
    // named volume keeps data between containers; a new one is filled from the image
    l.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/etc",
        &img,
        "sh",
        "-c",
        "echo kept > /etc/kept",
    ]);
    let out = l.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/etc",
        &img,
        "sh",
        "-c",
        "cat /etc/kept; test -f /etc/passwd && echo copied",
    ]);
    assert_eq!(out, "kept\ncopied\n");
    // an anonymous volume goes with rm -v
    let id = l.run_d(&["-v", "/anon", &img, "true"]);
    l.ok(&["wait", &id]);
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", &id])).unwrap();
    let src = v[0]["Mounts"][0]["Source"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&src).exists());
    l.ok(&["rm", "-v", &id]);
    assert!(!std::path::Path::new(&src).exists());
}

#[test]
fn lifecycle_verbs() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    // create + start, rename, inspect, restart
    let id = l
        .ok(&["create", "--name", "c1", &img, "sleep", "1000"])
        .trim()
        .to_string();
    assert!(l.ok(&["ps", "-a"]).contains("Created"));
    assert_ne!(
        l.run(&["create", "--name", "c1", &img, "true"]).code,
        0,
        "names are unique"
    );
    l.ok(&["start", "c1"]);
    l.ok(&["rename", "c1", "c2"]);
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", "c2"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["State"]["Status"], "running");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sleep");
    let pid1 = v[0]["State"]["Pid"].as_i64().unwrap();
    assert_ne!(
        l.run(&["rm", "c2"]).code,
        0,
        "rm of a running container needs -f"
    );
    l.ok(&["restart", "-t", "1", "c2"]);
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", "c2"])).unwrap();
    assert_ne!(v[0]["State"]["Pid"].as_i64().unwrap(), pid1);
    assert_eq!(v[0]["RestartCount"], 1);
    // stats reads the cgroup
    let stats = l.ok(&["stats", "--no-stream", "c2"]);
    assert!(
        stats.contains("c2") && stats.contains("MiB") || stats.contains("KiB"),
        "{stats}"
    );
    // cp both ways
    let f = l.path().join("in.txt");
    std::fs::write(&f, "copied in").unwrap();
    l.ok(&["cp", f.to_str().unwrap(), "c2:/tmp/"]);
    assert_eq!(l.ok(&["exec", "c2", "cat", "/tmp/in.txt"]), "copied in");
    let out = l.path().join("passwd");
    l.ok(&["cp", "c2:/etc/passwd", out.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&out).unwrap().contains("root:"));
    // attach sees output, start -a runs in the foreground
    let a = l.run_d(&[&img, "sh", "-c", "sleep 1; echo attached-out; exit 5"]);
    let o = l.run(&["attach", &a]);
    assert_eq!(o.code, 5);
    assert!(o.stdout.contains("attached-out"), "{}", o.stdout);
    let o = l.run(&["start", "-a", &a]);
    assert_eq!(o.code, 5);
    assert!(o.stdout.contains("attached-out"));
    // prune removes what is not running
    l.ok(&["container", "prune", "-f"]);
    let left = l.all_ids();
    assert_eq!(left, vec![id.clone()]);
    l.ok(&["rm", "-f", "c2"]);
    // a --rm container is gone after it exits, and `wait` still reports its code
    let r = l.run_d(&["--rm", &img, "sh", "-c", "sleep 0.5; exit 9"]);
    assert_eq!(l.ok(&["wait", &r]).trim(), "9");
    l.eventually(10, "--rm removal", || !l.all_ids().contains(&r));
    std::thread::sleep(Duration::from_millis(10));
}

/// `rm` right after `wait` returned: the process has ended while its monitor still
/// finishes the clean-up; rm waits for it instead of calling the container running.
#[test]
fn rm_right_after_wait() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    for _ in 0..5 {
        let id = l.run_d(&[&img, "true"]);
        assert_eq!(l.ok(&["wait", &id]).trim(), "0");
        l.ok(&["rm", &id]);
    }
    assert_eq!(l.ok(&["ps", "-aq"]).trim(), "");
}

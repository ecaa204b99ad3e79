//! The acceptance walkthrough of the engine issue, as a new user would type it.

use std::time::{Duration, Instant};

use crate::common::{fixture, free_total, host_mem_mib, Instance};

/// The walkthrough; rootless runs the same steps (limits are accepted with a warning:
/// nothing is delegated on a cgroup v1 host, so both runtimes see the host's memory).
pub fn walkthrough(l: &Instance) {
    let img = l.fx.image();
    let limits = ["-m", "128M", "--cpuset-cpus", "0"];
    // Two detached containers, one with gVisor.
    let mut a = vec!["--rm"];
    a.extend(limits);
    a.extend([img.as_str(), "sleep", "1000"]);
    let builtin = l.run_d(&a);
    let mut a = vec!["--rm", "--runtime", "runsc"];
    a.extend(limits);
    a.extend([img.as_str(), "sleep", "1000"]);
    let gvisor = l.run_d(&a);

    // ps lists both.
    let ps = l.ok(&["ps"]);
    assert!(
        ps.contains(&builtin[..12]) && ps.contains(&gvisor[..12]),
        "{ps}"
    );
    assert!(
        ps.lines().next().unwrap().starts_with("CONTAINER ID"),
        "{ps}"
    );

    // top of the first shows sleep.
    let top = l.ok(&["top", &builtin]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");

    // free -m: the host's memory for namespaces, the limit for gVisor.
    let host = host_mem_mib();
    let free_builtin = free_total(&l.ok(&["exec", &builtin, "free", "-m"]));
    assert!(
        free_builtin.abs_diff(host) <= host / 20,
        "built-in runtime: free says {free_builtin} MiB, host has {host}"
    );
    let free_gvisor = free_total(&l.ok(&["exec", &gvisor, "free", "-m"]));
    if l.is_rootless() {
        assert!(
            free_gvisor.abs_diff(host) <= host / 20,
            "runsc rootless: {free_gvisor} MiB"
        );
    } else {
        assert_eq!(
            free_gvisor, 128,
            "runsc: free should show the 128 MiB limit"
        );
    }

    // /proc/cpuinfo counts processors.
    let count = |id: &str| {
        l.ok(&["exec", id, "cat", "/proc/cpuinfo"])
            .lines()
            .filter(|x| x.starts_with("processor"))
            .count()
    };
    let n_builtin = count(&builtin);
    let n_gvisor = count(&gvisor);
    assert!(n_builtin >= 1 && n_gvisor >= 1);
    eprintln!("processors: built-in runtime {n_builtin}, runsc {n_gvisor}");
    if !l.is_rootless() {
        assert_eq!(n_gvisor, 1, "runsc with --cpuset-cpus 0 has one CPU");
    }

    // --pid host sees the host's processes (this test process among them).
    let ps_host = l.ok(&["run", "--rm", "--pid", "host", &img, "ps"]);
    let me = std::process::id().to_string();
    assert!(
        ps_host
            .lines()
            .any(|x| x.split_whitespace().next() == Some(me.as_str())),
        "ps in --pid host should list pid {me}:\n{ps_host}"
    );

    // gVisor's kernel version.
    let ours = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let theirs = l.ok(&["run", "--rm", "--runtime", "runsc", &img, "uname", "-r"]);
    assert!(
        !theirs.trim().is_empty() && theirs.trim() != ours,
        "uname -r under runsc: {theirs:?}"
    );

    // Exit codes come through.
    let o = l.run(&["run", "--rm", &img, "sh", "-c", "exit 3"]);
    assert_eq!(o.code, 3, "{}", o.stderr);

    // logs of a finished detached container.
    let done = l.run_d(&[
        &img,
        "sh",
        "-c",
        "echo hello from the log; echo on stderr >&2",
    ]);
    assert_eq!(l.ok(&["wait", &done]).trim(), "0");
    let o = l.run(&["logs", &done]);
    assert!(o.stdout.contains("hello from the log"), "{}", o.stdout);
    assert!(o.stderr.contains("on stderr"), "{}", o.stderr);

    // stop of a container that ignores SIGTERM kills it after the timeout.
    let stubborn = l.run_d(&[
        &img,
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 1; done",
    ]);
    l.eventually(10, "the trap to be set", || {
        l.ok(&["logs", &stubborn]).contains("ready")
    });
    let t = Instant::now();
    l.ok(&["stop", "-t", "2", &stubborn]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "stop took {took:?}"
    );
    let ps = l.ok(&["ps", "-a"]);
    let line = ps.lines().find(|x| x.starts_with(&stubborn[..12])).unwrap();
    assert!(line.contains("Exited (137)"), "{line}");

    // Stopping the --rm containers removes them.
    l.ok(&["stop", "-t", "1", &builtin, &gvisor]);
    let left = l.all_ids();
    assert!(
        !left.contains(&builtin) && !left.contains(&gvisor),
        "{left:?}"
    );
    l.ok(&["rm", &done, &stubborn]);
    assert!(l.all_ids().is_empty());
}

#[test]
fn docker_walkthrough_as_root() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    walkthrough(&l);
    // Nothing left mounted or in the cgroup tree.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(l.path().to_str().unwrap()),
        "mounts left:\n{mounts}"
    );
}

//! pause/resume, update, ps, kill --all and delete of what outlives init.

use super::*;

fn counter(b: &Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("tmp/count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_continues() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "count", "/tmp/count"]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let id = unique_id("pause");
    let pid = rt.run_detached(&b, &id);
    assert!(wait_for(Duration::from_secs(5), || counter(&b) > 3));
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(cgroup_file(pid, "freezer", "freezer.state"), "FROZEN");
    let frozen_at = counter(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&b), frozen_at, "a paused process made progress");
    assert_eq!(ps_json(&rt, &id), vec![pid], "ps works while paused");
    let err = rt.fails(&["pause", &id]);
    assert!(err.contains("paused"), "{err}");
    let (code, _, err) = exec(&rt, &id, &["/checker", "exit", "0"]);
    assert!(code != 0 && err.contains("paused"), "{err}");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    assert!(
        wait_for(Duration::from_secs(5), || counter(&b) > frozen_at + 3),
        "no progress after resume"
    );
    let err = rt.fails(&["resume", &id]);
    assert!(err.contains("running"), "{err}");
    // A paused container is thawed and killed by delete --force.
    rt.ok(&["pause", &id]);
    remove(&rt, &b, &id);
    assert!(!pid_alive(pid));
}

#[test]
fn update_changes_a_running_containers_limits() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 20},
               "cpu": {"shares": 1024, "cpus": "0-1"}}),
    );
    let id = unique_id("update");
    let pid = rt.run_detached(&b, &id);
    assert_eq!(
        cgroup_file(pid, "memory", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    rt.ok(&[
        "update",
        "--memory",
        "128M",
        "--memory-swap",
        "256M",
        "--pids-limit",
        "30",
        "--cpu-share",
        "512",
        "--cpuset-cpus",
        "1",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        &id,
    ]);
    let f = |c: &str, file: &str| cgroup_file(pid, c, file);
    assert_eq!(
        f("memory", "memory.limit_in_bytes"),
        (128 * MIB).to_string()
    );
    assert_eq!(
        f("memory", "memory.memsw.limit_in_bytes"),
        (256 * MIB).to_string()
    );
    assert_eq!(f("pids", "pids.max"), "30");
    assert_eq!(f("cpu", "cpu.shares"), "512");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(f("cpuset", "cpuset.cpus"), "1");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(cpus_allowed(&status), "1", "the running init moved");
    let inside = exec_ok(&rt, &id, &["/bin/cat", "/proc/self/status"]);
    assert_eq!(cpus_allowed(&inside), "1");
    let d = stats(&rt, &id)["data"].clone();
    assert_eq!(d["memory"]["usage"]["limit"], 128 * MIB);
    assert_eq!(d["pids"]["limit"], 30);
    // Lowering, and unlimited pids.
    rt.ok(&[
        "update",
        "--memory",
        "48m",
        "--pids-limit",
        "-1",
        "--cpuset-cpus",
        "0",
        &id,
    ]);
    assert_eq!(f("memory", "memory.limit_in_bytes"), (48 * MIB).to_string());
    assert_eq!(f("pids", "pids.max"), "max");
    assert_eq!(f("cpuset", "cpuset.cpus"), "0");
    // -1 is "unlimited" for runc's numeric flags.
    rt.ok(&[
        "update",
        "--memory",
        "-1",
        "--memory-swap",
        "-1",
        "--cpu-quota",
        "-1",
        &id,
    ]);
    let unlimited = f("memory", "memory.limit_in_bytes");
    assert!(unlimited.parse::<u64>().unwrap() > 1 << 62, "{unlimited}");
    assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), unlimited);
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "-1");
    remove(&rt, &b, &id);
}

#[test]
fn update_from_a_resources_file_and_stdin() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 20}}),
    );
    let id = unique_id("update-r");
    let pid = rt.run_detached(&b, &id);
    let file = b.path().join("resources.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 48 * MIB}, "pids": {"limit": 40}}).to_string(),
    )
    .unwrap();
    rt.ok(&["update", "--resources", file.to_str().unwrap(), &id]);
    assert_eq!(
        cgroup_file(pid, "memory", "memory.limit_in_bytes"),
        (48 * MIB).to_string()
    );
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "40");
    let input = json!({"cpu": {"shares": 300}, "pids": {"limit": 50}}).to_string();
    let out = rt.run_stdin(&["update", "--resources", "-", &id], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "50");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "300");
    assert_eq!(
        cgroup_file(pid, "memory", "memory.limit_in_bytes"),
        (48 * MIB).to_string(),
        "what the JSON leaves out is left alone"
    );
    remove(&rt, &b, &id);
}

#[test]
fn update_rejects_bad_values_naming_the_key() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"pids": {"limit": 20}, "cpu": {"shares": 1024}}),
    );
    let id = unique_id("update-bad");
    let pid = rt.run_detached(&b, &id);
    let cases: &[(&[&str], &str)] = &[
        (&["--cpu-share", "1"], "cpu.shares"),
        (&["--pids-limit", "30", "--cpu-share", "1"], "cpu.shares"),
        (&["--cpuset-cpus", "4095"], "cpu.cpus"),
        (&["--memory", "lots"], "--memory"),
        (&["--cpu-quota", "100"], "cpu.quota"),
    ];
    for (flags, key) in cases {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&id);
        let err = rt.fails(&args);
        assert!(
            err.contains(key),
            "{flags:?}: error does not name {key}: {err}"
        );
    }
    let out = rt.run_stdin(
        &["update", "--resources", "-", &id],
        br#"{"pids": {"limit": "many"}}"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pids.limit"), "{err}");
    assert_eq!(
        cgroup_file(pid, "pids", "pids.max"),
        "20",
        "no partial update"
    );
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "1024");
    rt.ok(&["kill", &id, "KILL"]);
    assert!(wait_for(Duration::from_secs(5), || rt.state(&id)["status"]
        == "stopped"));
    let err = rt.fails(&["update", "--pids-limit", "5", &id]);
    assert!(err.contains("stopped"), "{err}");
    remove(&rt, &b, &id);
}

#[test]
fn ps_lists_the_containers_processes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("ps");
    let pid = rt.run_detached(&b, &id);
    rt.ok(&["exec", "-d", &id, "/checker", "sleep", "61"]);
    rt.ok(&["exec", "-d", &id, "/checker", "sleep", "62"]);
    assert!(wait_for(Duration::from_secs(5), || ps_json(&rt, &id).len() == 3));
    let pids = ps_json(&rt, &id);
    assert!(pids.contains(&pid), "{pids:?}");
    let mut procs: Vec<i32> = cgroup_file(pid, "pids", "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    procs.sort_unstable();
    assert_eq!(pids, procs);
    let table = rt.ok(&["ps", &id]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let col = header.split_whitespace().position(|h| h == "PID").unwrap();
    let mut listed: Vec<i32> = lines
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, pids, "{table}");
    for n in ["60", "61", "62"] {
        assert!(table.contains(&format!("/checker sleep {n}")), "{table}");
    }
    let custom = rt.ok(&["ps", &id, "-o", "pid,comm"]);
    let head: Vec<&str> = custom.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["PID", "COMMAND"], "{custom}");
    assert_eq!(custom.lines().count(), 4, "{custom}");
    remove(&rt, &b, &id);
}

fn kill_all_case(pid_namespace: bool, signal: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    if !pid_namespace {
        b.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
        });
    }
    let id = unique_id("killall");
    let init = rt.run_detached(&b, &id);
    rt.ok(&["exec", "-d", &id, "/checker", "sleep", "61"]);
    rt.ok(&["exec", "-d", &id, "/checker", "sleep", "62"]);
    assert!(wait_for(Duration::from_secs(5), || ps_json(&rt, &id).len() == 3));
    let pids = ps_json(&rt, &id);
    rt.ok(&["kill", "--all", &id, signal]);
    assert!(
        wait_for(Duration::from_secs(5), || !pids
            .iter()
            .any(|&p| pid_alive(p))),
        "still alive after kill --all {signal}: {:?}",
        pids.iter().filter(|&&p| pid_alive(p)).collect::<Vec<_>>()
    );
    assert!(!pid_alive(init));
    assert!(wait_for(Duration::from_secs(5), || rt.state(&id)["status"]
        == "stopped"));
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn kill_all_signals_every_process() {
    kill_all_case(true, "KILL");
}

#[test]
fn kill_all_without_a_pid_namespace() {
    // SIGTERM takes the freeze-list-signal-thaw path (cgroup.kill is for SIGKILL only),
    // and an init outside a pid namespace of its own dies of it.
    kill_all_case(false, "TERM");
}

#[test]
fn delete_kills_what_outlives_init_without_a_pid_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/bin/sh", "-c", "/checker sleep 60 & exit 0"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("orphans");
    rt.run_detached(&b, &id);
    let procs = cgroup_leftovers(&id)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .expect("a pids cgroup")
        .join("cgroup.procs");
    assert!(wait_for(Duration::from_secs(5), || rt.state(&id)["status"]
        == "stopped"));
    let left: Vec<i32> = std::fs::read_to_string(&procs)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(left.len(), 1, "the background sleep outlives init");
    rt.ok(&["delete", &id]);
    assert!(wait_for(Duration::from_secs(5), || !pid_alive(left[0])));
    assert_gone(&rt, &b, &id);
}

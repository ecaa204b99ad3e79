//! Resource control through the CLI, as root, with real containers: limits enforced
//! as seen from inside (memory, pids, cpuset, cpu quota, devices), pause/resume,
//! update, events, ps, kill --all, the cgroup managers and linux.cgroupsPath, and
//! what the unified tree offers on a hybrid host. After each test no cgroup of the
//! container is left in any hierarchy.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const MIB: i64 = 1 << 20;

fn set_resources(b: &mut Bundle, r: Value) {
    b.edit(|c| c["linux"]["resources"] = r);
}

fn bundle_path(b: &Bundle) -> &str {
    b.path().to_str().unwrap()
}

/// `delete --force`, then nothing of the container is left.
fn remove(rt: &Runtime, b: &Bundle, id: &str) {
    rt.ok(&["delete", "--force", id]);
    assert_gone(rt, b, id);
}

fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.ok(&["events", "--stats", id]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad stats {out:?}: {e}"))
}

fn exec(rt: &Runtime, id: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["exec", id];
    a.extend_from_slice(args);
    let out = rt.run(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exec_ok(rt: &Runtime, id: &str, args: &[&str]) -> String {
    let (code, out, err) = exec(rt, id, args);
    assert_eq!(code, 0, "exec {args:?}: {out}{err}");
    out
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
        .trim()
        .to_owned()
}

fn ps_json(rt: &Runtime, id: &str) -> Vec<i32> {
    let out = rt.ok(&["ps", "--format", "json", id]);
    let mut v: Vec<i32> = serde_json::from_str(out.trim()).unwrap();
    v.sort_unstable();
    v
}

#[test]
fn memory_limit_oom_kills_and_run_exits_137() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Without a limit the same allocation succeeds: the 137 below is the limit's doing.
    b.args(&["/checker", "alloc", "96"]);
    let id = unique_id("mem-free");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
    );
    let id = unique_id("mem-oom");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 137, "OOM-killed init shows as SIGKILL: {out}{err}");
    assert!(!out.contains("allocated"), "{out}");
    assert_gone(&rt, &b, &id);
}

#[test]
fn events_stats_reports_memory_usage_and_the_oom() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    // No swap limit: with memsw == limit the kernel charges (and fails) memsw first
    // and memory.failcnt stays 0.
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB}, "pids": {"limit": 50}}),
    );
    let id = unique_id("stats");
    let pid = rt.run_detached(&b, &id);
    let s = stats(&rt, &id);
    assert_eq!(s["type"], "stats");
    assert_eq!(s["id"], id.as_str());
    let d = &s["data"];
    // runc's shape: cpu, memory{usage,swap,kernel,raw}, pids, blkio, hugetlb...
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt"] {
        assert!(d.get(key).is_some(), "no data.{key}: {d}");
    }
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 32 * MIB);
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["raw"].is_object(), "{d}");
    assert_eq!(d["memory"]["usage"]["failcnt"], 0);
    assert_eq!(d["pids"]["current"], 1);
    assert_eq!(d["pids"]["limit"], 50);

    let (code, out, err) = exec(&rt, &id, &["/checker", "alloc", "200"]);
    assert_eq!(code, 137, "the allocating exec is OOM-killed: {out}{err}");
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "only the allocating process dies"
    );
    let d = stats(&rt, &id)["data"].clone();
    assert!(
        d["memory"]["usage"]["failcnt"].as_u64().unwrap() > 0,
        "the limit was hit: {d}"
    );
    let oom = cgroup_file(pid, "memory", "memory.oom_control");
    assert!(
        oom.lines().any(|l| l == "oom_kill 1"),
        "the cgroup counts one OOM kill: {oom}"
    );
    remove(&rt, &b, &id);
}

#[test]
fn events_streams_an_oom_event() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
    );
    let id = unique_id("oom-ev");
    rt.run_detached(&b, &id);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut events = rt.cmd(&["events", "--interval", "1s", &id]);
    events.stdout(log.reopen().unwrap()).stderr(Stdio::null());
    let mut child = events.spawn().unwrap();
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(5), || !lines().is_empty()),
        "events printed nothing"
    );
    assert_eq!(lines()[0]["type"], "stats");
    let (code, _, _) = exec(&rt, &id, &["/checker", "alloc", "200"]);
    assert_eq!(code, 137);
    let oom = json!({"type": "oom", "id": id});
    assert!(
        wait_for(Duration::from_secs(5), || lines().contains(&oom)),
        "no oom event: {:?}",
        lines()
    );
    rt.ok(&["kill", &id, "KILL"]);
    let ended = wait_for(Duration::from_secs(5), || {
        child.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(ended, "events kept running after the container stopped");
    remove(&rt, &b, &id);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "fork", "50", "5"]);
    set_resources(&mut b, json!({"pids": {"limit": 100}}));
    let id = unique_id("pids-free");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!((code, out.trim()), (0, "forked 50"), "{err}");
    set_resources(&mut b, json!({"pids": {"limit": 10}}));
    let id = unique_id("pids");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 1, "{out}{err}");
    // The checker itself is one of the 10.
    assert!(
        out.starts_with("forked 9, then:") && out.contains("Resource temporarily unavailable"),
        "{out}"
    );
    assert_gone(&rt, &b, &id);
}

#[test]
fn cpuset_pins_the_container() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(cpus >= 2, "this test needs two cpus");
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/bin/cat", "/proc/self/status"]);
    for want in ["1", "0"] {
        set_resources(&mut b, json!({"cpu": {"cpus": want, "mems": "0"}}));
        let id = unique_id("cpuset");
        let (code, out, err) = rt.run_container(&b, &id);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(cpus_allowed(&out), want);
        assert_gone(&rt, &b, &id);
    }
}

#[test]
fn cpu_quota_is_applied_and_throttles() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"cpu": {"quota": 10000, "period": 100000, "shares": 256}}),
    );
    let id = unique_id("quota");
    let pid = rt.run_detached(&b, &id);
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "10000");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "256");
    let before = stats(&rt, &id)["data"]["cpu"]["usage"]["total"]
        .as_u64()
        .unwrap();
    exec_ok(&rt, &id, &["/checker", "spin", "1"]);
    let cpu = stats(&rt, &id)["data"]["cpu"].clone();
    let t = &cpu["throttling"];
    assert!(
        t["throttledPeriods"].as_u64().unwrap_or(0) > 0 && t["periods"].as_u64().unwrap() > 0,
        "a 1 s spin under a 10% quota is throttled: {cpu}"
    );
    let used = cpu["usage"]["total"].as_u64().unwrap() - before;
    assert!(
        used < 500_000_000,
        "1 s of spinning at 10% uses well under 0.5 s of cpu, used {used} ns"
    );
    remove(&rt, &b, &id);
}

#[test]
fn device_rules_allow_and_deny() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    b.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/fuse-ro", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
            {"path": "/dev/kmsg-denied", "type": "c", "major": 1, "minor": 11, "fileMode": 438},
        ]);
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"},
        ]});
    });
    let id = unique_id("devices");
    rt.run_detached(&b, &id);
    assert_eq!(
        exec_ok(&rt, &id, &["/checker", "open", "/dev/fuse-ro", "r"]).trim(),
        "ok"
    );
    for (path, mode) in [
        ("/dev/fuse-ro", "w"),
        ("/dev/kmsg-denied", "w"),
        ("/dev/kmsg-denied", "r"),
    ] {
        let (code, out, _) = exec(&rt, &id, &["/checker", "open", path, mode]);
        assert_eq!(code, 1, "{path} {mode}: {out}");
        assert!(
            out.contains("Operation not permitted"),
            "{path} {mode}: {out}"
        );
    }
    // The default rules still let the standard nodes through after a deny-all.
    assert_eq!(
        exec_ok(&rt, &id, &["/checker", "write", "/dev/null", "x"]).trim(),
        "ok"
    );
    remove(&rt, &b, &id);
}

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

#[test]
fn cgroup_manager_disabled_runs_without_cgroups() {
    let rt = Runtime::new().with_flags(&["--cgroup-manager", "disabled"]);
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(&mut b, json!({"memory": {"limit": 32 * MIB}}));
    let id = unique_id("nocg");
    let out = rt.run(&["run", "-d", "--bundle", bundle_path(&b), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("linux.resources is ignored"), "warns: {err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        "the container stays in the runtime's cgroups"
    );
    assert!(
        cgroup_leftovers(&id).is_empty(),
        "{:?}",
        cgroup_leftovers(&id)
    );
    assert_eq!(ps_json(&rt, &id), vec![pid]);
    let err = rt.fails(&["pause", &id]);
    assert!(err.contains("no cgroup"), "{err}");
    rt.ok(&["kill", "--all", &id, "KILL"]);
    assert!(wait_for(Duration::from_secs(5), || rt.state(&id)["status"]
        == "stopped"));
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn systemd_cgroup_fails_clearly_without_systemd() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test expects a host without systemd"
    );
    let b = Bundle::new();
    for flags in [&["--systemd-cgroup"][..], &["--cgroup-manager", "systemd"]] {
        let rt = Runtime::new().with_flags(flags);
        let id = unique_id("systemd");
        let out = rt.run(&["run", "--bundle", bundle_path(&b), &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} ran");
        assert!(
            err.contains("systemd is not running") && err.contains("cgroupfs"),
            "{flags:?}: {err}"
        );
        assert_gone(&rt, &b, &id);
    }
}

/// Removes the parents a cgroupsPath test made (runc leaves them too).
fn remove_parent_cgroups(name: &str) {
    for d in cgroup_leftovers(name) {
        let _ = std::fs::remove_dir(&d);
    }
    assert!(
        cgroup_leftovers(name).is_empty(),
        "{:?}",
        cgroup_leftovers(name)
    );
}

#[test]
fn absolute_cgroups_path_is_honoured() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("cgabs");
    let parent = format!("liana-it-abs-{}", std::process::id());
    let path = format!("/{parent}/{id}");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    let pid = rt.run_detached(&b, &id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in cg.lines() {
        assert!(l.ends_with(&format!(":{path}")), "{l}");
    }
    assert_eq!(
        cgroup_dirs(pid)["memory"],
        Path::new("/sys/fs/cgroup/memory").join(&parent).join(&id)
    );
    remove(&rt, &b, &id);
    remove_parent_cgroups(&parent);
}

#[test]
fn relative_cgroups_path_is_below_the_runtimes_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("cgrel");
    let parent = format!("liana-it-rel-{}", std::process::id());
    let rel = format!("{parent}/{id}");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(rel));
    let pid = rt.run_detached(&b, &id);
    let own = cgroup_dirs(std::process::id() as i32);
    let theirs = cgroup_dirs(pid);
    for (ctrl, dir) in &theirs {
        // v1: below our own cgroup; unified: below its parent (no internal processes).
        let base = if ctrl.is_empty() {
            let own_dir = &own[ctrl];
            if own_dir == Path::new("/sys/fs/cgroup/unified") {
                own_dir.clone()
            } else {
                own_dir.parent().unwrap().to_path_buf()
            }
        } else {
            own[ctrl].clone()
        };
        assert_eq!(dir, &base.join(&rel), "{ctrl}");
    }
    assert!(theirs["memory"].starts_with(&own["memory"]));
    remove(&rt, &b, &id);
    remove_parent_cgroups(&parent);
}

#[test]
fn hugetlb_limit_goes_to_the_unified_tree_on_hybrid() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let ctrls = std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    assert!(
        ctrls.split_whitespace().any(|c| c == "hugetlb"),
        "this host offers hugetlb on its unified tree"
    );
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]}),
    );
    let id = unique_id("hugetlb");
    let pid = rt.run_detached(&b, &id);
    let dir = &cgroup_dirs(pid)[""];
    assert!(dir.starts_with(unified), "{}", dir.display());
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("hugetlb.2MB.max"), (4 * MIB).to_string());
    let d = stats(&rt, &id)["data"].clone();
    assert!(d["hugetlb"]["2MB"].is_object(), "{d}");
    let input = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MIB}]}).to_string();
    let out = rt.run_stdin(&["update", "--resources", "-", &id], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read("hugetlb.2MB.max"), (8 * MIB).to_string());
    remove(&rt, &b, &id);
}

#[test]
fn rootless_runs_with_cgroups_skipped() {
    let rt = Runtime::rootless();
    let mut b = Bundle::rootless();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("rootless");
    let out = rt.run(&["run", "-d", "--bundle", bundle_path(&b), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("error"), "{err}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        "nothing is delegated here: the container stays in the caller's cgroups"
    );
    assert!(
        cgroup_leftovers(&id).is_empty(),
        "{:?}",
        cgroup_leftovers(&id)
    );
    assert_eq!(ps_json(&rt, &id), vec![pid]);
    remove(&rt, &b, &id);
}

#[test]
fn rootless_memory_limit_without_delegation_fails_clearly() {
    // As runc: a limit that cannot be enforced is an error, not a warning.
    let rt = Runtime::rootless();
    let mut b = Bundle::rootless();
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 32 * MIB}}));
    let id = unique_id("rootless-mem");
    let out = rt.run(&["run", "--bundle", bundle_path(&b), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without its memory limit");
    assert!(
        err.contains("memory.limit") && err.contains("rootless"),
        "names the limit and why: {err}"
    );
    assert!(out.stdout.is_empty(), "the process never ran");
    assert_gone(&rt, &b, &id);
}

#[test]
fn kill_all_of_a_stopped_container_kills_what_outlived_init() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/bin/sh", "-c", "/checker sleep 60 & exit 0"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("stopped-killall");
    rt.run_detached(&b, &id);
    let procs = cgroup_leftovers(&id)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .expect("a pids cgroup")
        .join("cgroup.procs");
    assert!(wait_for(Duration::from_secs(5), || rt.state(&id)["status"]
        == "stopped"));
    let left = std::fs::read_to_string(&procs).unwrap();
    let left: i32 = left.trim().parse().unwrap_or_else(|_| panic!("{left:?}"));
    // Plain kill still refuses a stopped container; --all reaches the leftovers (runc).
    let err = rt.fails(&["kill", &id, "KILL"]);
    assert!(err.contains("stopped"), "{err}");
    rt.ok(&["kill", "--all", &id, "KILL"]);
    assert!(wait_for(Duration::from_secs(5), || !pid_alive(left)));
    assert!(std::fs::read_to_string(&procs).unwrap().trim().is_empty());
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &b, &id);
    let err = rt.fails(&["kill", "--all", &id, "KILL"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_created_container_pauses_and_resumes_to_created() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("pause-created");
    rt.ok(&["create", "--bundle", bundle_path(&b), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(cgroup_file(pid, "freezer", "freezer.state"), "FROZEN");
    let err = rt.fails(&["start", &id]);
    assert!(err.contains("paused"), "{err}");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    remove(&rt, &b, &id);
}

#[test]
fn bad_resources_fail_naming_the_key_and_leave_nothing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let cases = [
        (json!({"cpu": {"shares": 1}}), "cpu.shares"),
        (json!({"cpu": {"cpus": "4095"}}), "cpu.cpus"),
        (
            json!({"cpu": {"quota": 100, "period": 100000}}),
            "cpu.quota",
        ),
        (json!({"memory": {"swappiness": 200}}), "memory.swappiness"),
        (
            json!({"memory": {"limit": 1000000, "swap": 500000}}),
            "memory.swap",
        ),
        (json!({"blockIO": {"weight": 5}}), "blockIO.weight"),
        (
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
            "hugepageLimits",
        ),
        // v2 key/values on a host whose memory controller is on v1.
        (json!({"unified": {"memory.max": "100000"}}), "unified"),
    ];
    for (resources, key) in cases {
        set_resources(&mut b, resources.clone());
        let id = unique_id("bad-res");
        let (code, out, err) = rt.run_container(&b, &id);
        assert_ne!(code, 0, "{resources} ran: {out}");
        assert!(
            err.contains(key),
            "{resources}: error does not name {key}: {err}"
        );
        assert!(out.is_empty(), "{resources}: the process ran");
        assert_gone(&rt, &b, &id);
    }
}

#[test]
fn the_container_sees_its_own_cgroup_and_limits() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB}, "pids": {"limit": 12}}),
    );
    b.args(&[
        "/bin/sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    ]);
    let id = unique_id("cgns");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        [(32 * MIB).to_string().as_str(), "12"]
    );
    // In its cgroup namespace every hierarchy is rooted at the container's cgroup.
    b.args(&["/checker", "report"]);
    let r = rt.report(&b, &id);
    let cg = r["cgroup"].as_str().unwrap();
    assert!(!cg.is_empty());
    for l in cg.lines() {
        assert!(l.ends_with(":/"), "{cg}");
    }
    assert_gone(&rt, &b, &id);
}

fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let p = format!("{prefix}.{k}");
            key_paths(v, &p, out);
            out.push(p);
        }
    }
}

#[test]
fn events_stats_has_runcs_json_shape() {
    let runc = Path::new("/usr/sbin/runc");
    assert!(
        runc.exists(),
        "runc (Debian's /usr/sbin/runc) is the reference here"
    );
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB}, "pids": {"limit": 20}}),
    );
    let id = unique_id("shape");
    rt.run_detached(&b, &id);
    let ours = stats(&rt, &id);
    remove(&rt, &b, &id);

    let runc_root = tempfile::tempdir().unwrap();
    let runc_cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(runc);
        c.arg("--root")
            .arg(runc_root.path())
            .args(args)
            .stdin(Stdio::null());
        output_via_files(c)
    };
    let rid = unique_id("shape-runc");
    let out = runc_cmd(&["run", "-d", "--bundle", bundle_path(&b), &rid]);
    assert!(
        out.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = runc_cmd(&["events", "--stats", &rid]);
    let _ = runc_cmd(&["delete", "--force", &rid]);
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();

    let (mut a, mut b_) = (Vec::new(), Vec::new());
    key_paths(&ours, "", &mut a);
    key_paths(&theirs, "", &mut b_);
    // runc leaves hugetlb empty on a hybrid host (it only reads v1 hugetlb); liana reads
    // the unified tree. Every other key runc prints, liana prints, and no more.
    // memory.cache is `omitempty` in both: present only when the page cache of the
    // container was charged, which differs from one run to the next.
    let keep = |v: Vec<String>| -> std::collections::BTreeSet<String> {
        v.into_iter()
            .filter(|p| !p.starts_with(".data.hugetlb.") && p != ".data.memory.cache")
            .collect()
    };
    let (a, b_) = (keep(a), keep(b_));
    assert_eq!(
        a.difference(&b_).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys runc does not print"
    );
    assert_eq!(
        b_.difference(&a).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys runc prints that liana lacks"
    );
    assert!(cgroup_leftovers(&rid).is_empty());
}

//! Limits enforced as seen from inside (memory and the OOM, pids, cpuset, cpu quota, devices) and events.

use super::*;

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

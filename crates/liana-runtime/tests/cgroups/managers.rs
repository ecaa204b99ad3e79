//! The cgroup managers, linux.cgroupsPath, the unified tree on hybrid hosts, rootless, bad input.

use super::*;

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

//! cgroup v1 against a fake cgroupfs: paths, create, every resource written
//! to the exact file with the exact value and order, update ordering,
//! validation errors naming the key, freezer, stats, state, destroy.

mod common;

use std::fs;

use common::{lines, read, FakeHost};
use liana_cgroups::{CgroupState, Error, FreezerState, Manager, Mode};
use oci_spec::runtime::LinuxResources;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn default_path_is_relative_to_own_cgroup() {
    let host = FakeHost::v1();
    assert_eq!(host.setup.mode(), Mode::V1);
    let m = host.manager("ctr", None);
    let paths = m.paths();
    assert_eq!(paths["memory"], host.root().join("memory/user/me/ctr"));
    assert_eq!(paths["cpu"], host.root().join("cpu,cpuacct/ctr"));
    assert_eq!(paths["cpuacct"], paths["cpu"]);
    assert_eq!(paths["name=systemd"], host.root().join("systemd/ctr"));
    assert!(!paths.contains_key(""));

    let abs = host.manager("ctr", Some("/liana/../x/ctr"));
    assert_eq!(abs.paths()["memory"], host.root().join("memory/x/ctr"));
    let rel = host.manager("ctr", Some("sub/ctr"));
    assert_eq!(
        rel.paths()["memory"],
        host.root().join("memory/user/me/sub/ctr")
    );
}

#[test]
fn mounts_name_combined_hierarchies_and_symlinks() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/a/ctr"));
    let mounts = m.mounts();
    let cpu = mounts.iter().find(|x| x.name == "cpu,cpuacct").unwrap();
    assert_eq!(cpu.symlinks, vec!["cpu", "cpuacct"]);
    assert_eq!(cpu.cgroup_path, "/a/ctr");
    assert_eq!(cpu.host_dir, host.root().join("cpu,cpuacct/a/ctr"));
    let sd = mounts.iter().find(|x| x.name == "systemd").unwrap();
    assert_eq!(sd.controllers, vec!["name=systemd"]);
    assert!(mounts.iter().all(|x| !x.v2));
    let mem = mounts.iter().find(|x| x.name == "memory").unwrap();
    assert!(mem.symlinks.is_empty());
}

#[test]
fn create_makes_every_hierarchy_and_destroy_removes_them() {
    let host = FakeHost::v1();
    let mut m = host.manager("ctr", Some("/deep/er/ctr"));
    // cpuset needs the kernel's files to be populated: use a hierarchy-less
    // manager state without it for the pure mkdir part.
    let mut state = m.state();
    state
        .v1
        .retain(|c| !c.controllers.iter().any(|x| x == "cpuset"));
    m = Manager::from_state(state);
    m.create().unwrap();
    for dir in m.paths().values() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    m.destroy().unwrap();
    for dir in m.paths().values() {
        assert!(!dir.exists(), "{} left", dir.display());
    }
    // Idempotent.
    m.destroy().unwrap();
    // The intermediate levels stay: they may be shared.
    assert!(host.root().join("memory/deep/er").is_dir());
}

#[test]
fn cpuset_is_populated_from_parent() {
    let host = FakeHost::v1();
    let mut m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    m.create().unwrap();
    let dir = &m.paths()["cpuset"];
    assert_eq!(read(dir, "cpuset.cpus"), "0-3\n");
    assert_eq!(read(dir, "cpuset.mems"), "0\n");
    // Already populated: nothing more is written.
    m.create().unwrap();
    assert_eq!(read(dir, "cpuset.cpus"), "0-3\n");
}

#[test]
fn set_writes_every_resource() {
    let host = FakeHost::v1();
    let mut m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    m.create().unwrap();
    let r = res(r#"{
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"}
        ],
        "memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152,
                   "kernel": 1, "swappiness": 10, "disableOOMKiller": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimeRuntime": 1000, "realtimePeriod": 10000,
                "cpus": "1", "mems": "0", "idle": 0},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3}}
    }"#);
    m.set(&r).unwrap();
    let p = m.paths();
    let cpu = &p["cpu"];
    assert_eq!(read(cpu, "cpu.shares"), "512\n");
    assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000\n");
    assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000\n");
    assert_eq!(read(cpu, "cpu.cfs_burst_us"), "1000\n");
    assert_eq!(read(cpu, "cpu.rt_period_us"), "10000\n");
    assert_eq!(read(cpu, "cpu.rt_runtime_us"), "1000\n");
    assert_eq!(read(cpu, "cpu.idle"), "0\n");
    let cpuset = &p["cpuset"];
    assert_eq!(lines(cpuset, "cpuset.cpus"), vec!["0-3", "1"]);
    assert_eq!(lines(cpuset, "cpuset.mems"), vec!["0", "0"]);
    let mem = &p["memory"];
    // Fresh cgroup: the limit goes first, memsw after it.
    assert_eq!(lines(mem, "memory.limit_in_bytes")[1], "1048576");
    assert_eq!(read(mem, "memory.memsw.limit_in_bytes"), "2097152\n");
    assert_eq!(read(mem, "memory.soft_limit_in_bytes"), "524288\n");
    assert_eq!(read(mem, "memory.oom_control"), "1\n");
    assert_eq!(read(mem, "memory.swappiness"), "10\n");
    assert_eq!(read(&p["pids"], "pids.max"), "42\n");
    let dev = &p["devices"];
    assert_eq!(read(dev, "devices.deny"), "a *:* rwm\n");
    assert_eq!(lines(dev, "devices.allow"), vec!["c 1:3 rwm", "c 136:* rw"]);
    let blk = &p["blkio"];
    assert_eq!(read(blk, "blkio.weight"), "300\n");
    assert_eq!(read(blk, "blkio.leaf_weight"), "200\n");
    assert_eq!(read(blk, "blkio.weight_device"), "8:0 500\n");
    assert_eq!(read(blk, "blkio.leaf_weight_device"), "8:0 100\n");
    assert_eq!(read(blk, "blkio.throttle.read_bps_device"), "8:0 1000\n");
    assert_eq!(read(blk, "blkio.throttle.write_bps_device"), "8:0 2000\n");
    assert_eq!(read(blk, "blkio.throttle.read_iops_device"), "8:0 30\n");
    assert_eq!(read(blk, "blkio.throttle.write_iops_device"), "8:16 40\n");
    let huge = &p["hugetlb"];
    assert_eq!(read(huge, "hugetlb.2MB.limit_in_bytes"), "4194304\n");
    assert_eq!(read(huge, "hugetlb.2MB.rsvd.limit_in_bytes"), "4194304\n");
    assert_eq!(read(&p["net_cls"], "net_cls.classid"), "1048577\n");
    assert_eq!(read(&p["net_prio"], "net_prio.ifpriomap"), "eth0 5\n");
    assert_eq!(
        read(&p["rdma"], "rdma.max"),
        "mlx5_1 hca_handle=3 hca_object=max\n"
    );
}

#[test]
fn update_orders_memory_and_swap() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let mem = m.paths()["memory"].clone();
    // Current limit 1000: raising both writes memsw first.
    fs::write(mem.join("memory.limit_in_bytes"), "1000\n").unwrap();
    fs::write(mem.join("memory.memsw.limit_in_bytes"), "").unwrap();
    m.update(&res(r#"{"memory": {"limit": 4000, "swap": 8000}}"#))
        .unwrap();
    assert_eq!(lines(&mem, "memory.limit_in_bytes"), vec!["1000", "4000"]);
    // Can't see the interleaving across two files in the fake, so check the
    // decision with a limit that is larger than the new memsw: limit first.
    fs::write(mem.join("memory.limit_in_bytes"), "100000\n").unwrap();
    m.update(&res(r#"{"memory": {"limit": 500, "swap": 600}}"#))
        .unwrap();
    assert_eq!(
        lines(&mem, "memory.memsw.limit_in_bytes"),
        vec!["8000", "600"]
    );
    // Unlimited memory without swap means unlimited swap too.
    m.update(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(
        lines(&mem, "memory.memsw.limit_in_bytes").last().unwrap(),
        "-1"
    );
    assert_eq!(lines(&mem, "memory.limit_in_bytes").last().unwrap(), "-1");
    // disableOOMKiller false re-enables the killer on update only.
    m.update(&res(r#"{"memory": {"disableOOMKiller": false}}"#))
        .unwrap();
    assert_eq!(read(&mem, "memory.oom_control"), "0\n");
}

#[test]
fn update_transitions_device_rules() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let dev = m.paths()["devices"].clone();
    fs::write(dev.join("devices.list"), "c 1:3 rwm\nc 1:5 rwm\n").unwrap();
    m.update(&res(r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "r"}
    ]}"#))
        .unwrap();
    // No "a" reset for a running whitelist: only the differences.
    assert_eq!(read(&dev, "devices.deny"), "c 1:5 rwm\n");
    assert_eq!(read(&dev, "devices.allow"), "c 1:9 r\n");
}

#[test]
fn validation_names_the_key_and_writes_nothing() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let key_of = |json: &str| match m.set(&res(json)).unwrap_err() {
        Error::InvalidResource { key, .. } | Error::Unsupported { key, .. } => key,
        other => panic!("unexpected error {other:?}"),
    };
    assert_eq!(
        key_of(r#"{"memory": {"swappiness": 101}}"#),
        "memory.swappiness"
    );
    assert_eq!(
        key_of(r#"{"memory": {"limit": 100, "swap": 50}}"#),
        "memory.swap"
    );
    assert_eq!(key_of(r#"{"memory": {"limit": -5}}"#), "memory.limit");
    assert_eq!(key_of(r#"{"cpu": {"shares": 1}}"#), "cpu.shares");
    assert_eq!(
        key_of(r#"{"cpu": {"quota": 100, "burst": 200}}"#),
        "cpu.burst"
    );
    assert_eq!(key_of(r#"{"cpu": {"idle": 2}}"#), "cpu.idle");
    assert_eq!(key_of(r#"{"blockIO": {"weight": 5}}"#), "blockIO.weight");
    assert_eq!(
        key_of(r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#),
        "hugepageLimits[2M]"
    );
    assert_eq!(key_of(r#"{"rdma": {"mlx": {}}}"#), "rdma[mlx]");
    assert_eq!(key_of(r#"{"unified": {"memory.max": "1"}}"#), "unified");
    // Nothing was written by the failed calls, even the valid parts.
    let mem = &m.paths()["memory"];
    assert_eq!(read(mem, "memory.memsw.limit_in_bytes"), "");
    assert!(matches!(
        m.set(&res(
            r#"{"devices": [{"allow": true, "type": "p", "access": "r"}]}"#
        )),
        Err(Error::Devices(_))
    ));
}

#[test]
fn missing_controller_is_reported_with_the_key() {
    let host = FakeHost::v1();
    let mut state = host.manager("ctr", Some("/ctr")).state();
    state
        .v1
        .retain(|c| !c.controllers.iter().any(|x| x == "net_cls" || x == "pids"));
    let m = Manager::from_state(state);
    let err = m.set(&res(r#"{"network": {"classID": 1}}"#)).unwrap_err();
    assert!(err.to_string().contains("network.classID"), "{err}");
    assert!(err.to_string().contains("net_cls"), "{err}");
    let err = m.set(&res(r#"{"pids": {"limit": 5}}"#)).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { ref key, .. } if key == "pids.limit"),
        "{err}"
    );
}

#[test]
fn write_failure_names_key_value_and_file() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    fs::remove_file(m.paths()["pids"].join("pids.max")).unwrap();
    match m.set(&res(r#"{"pids": {"limit": 7}}"#)).unwrap_err() {
        Error::SetResource {
            key, value, path, ..
        } => {
            assert_eq!(key, "pids.limit");
            assert_eq!(value, "7");
            assert_eq!(path, m.paths()["pids"].join("pids.max"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn freezer_via_files() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    assert_eq!(
        lines(&m.paths()["freezer"], "freezer.state"),
        vec!["THAWED", "FROZEN", "THAWED"]
    );
}

#[test]
fn apply_writes_pid_everywhere_and_pids_lists_them() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    m.apply(0).unwrap();
    for dir in m.paths().values() {
        assert_eq!(read(dir, "cgroup.procs"), "0", "{}", dir.display());
    }
    m.apply(4242).unwrap();
    assert_eq!(read(&m.paths()["memory"], "cgroup.procs"), "4242");
    let fz = m.paths()["freezer"].clone();
    fs::write(fz.join("cgroup.procs"), "10\n11\n").unwrap();
    fs::create_dir(fz.join("sub")).unwrap();
    fs::write(fz.join("sub/cgroup.procs"), "12\n").unwrap();
    assert_eq!(m.pids().unwrap(), vec![10, 11, 12]);
}

#[test]
fn stats_read_v1_files() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    fs::write(m.paths()["pids"].join("pids.max"), "max\n").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 5000);
    assert_eq!(s.cpu.usage.percpu, vec![3000, 2000]);
    assert!(s.cpu.usage.user > 0 && s.cpu.usage.kernel > 0);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 1);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.raw["rss"], 200);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, 0, "max is reported as 0");
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert!(s.hugetlb.contains_key("2MB"));
    let v = serde_json::to_value(liana_cgroups::Event::stats("ctr", s)).unwrap();
    assert_eq!(v["data"]["memory"]["usage"]["usage"], 4096);
}

#[test]
fn state_round_trips_through_json() {
    let host = FakeHost::v1();
    let m = host.manager("ctr", None);
    let json = serde_json::to_string(&m.state()).unwrap();
    let back: CgroupState = serde_json::from_str(&json).unwrap();
    let m2 = Manager::from_state(back);
    assert_eq!(m2.paths(), m.paths());
    assert_eq!(m2.state(), m.state());
    assert_eq!(m2.id(), "ctr");
}

//! cgroup v2 against a fake cgroupfs: controller enabling, every resource,
//! the eBPF device filter (recorded, then evaluated), update rules, errors
//! naming the key, freezer through cgroup.freeze/cgroup.events, stats.

mod common;

use std::fs;

use common::{lines, read, recording, FakeHost};
use liana_cgroups::devices::{access, DeviceKind};
use liana_cgroups::{Error, FreezerState, Mode};
use oci_spec::runtime::LinuxResources;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn relative_paths_go_below_the_parent_of_our_cgroup() {
    let host = FakeHost::v2();
    assert_eq!(host.setup.mode(), Mode::V2);
    let m = host.manager("ctr", None);
    assert_eq!(m.paths()[""], host.root().join("user.slice/ctr"));
    assert_eq!(m.mode(), Some(Mode::V2));
    let mounts = m.mounts();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].name, "");
    assert!(mounts[0].v2);
    assert_eq!(mounts[0].cgroup_path, "/user.slice/ctr");
    let abs = host.manager("ctr", Some("/machine/ctr"));
    assert_eq!(abs.paths()[""], host.root().join("machine/ctr"));
}

#[test]
fn create_enables_controllers_down_the_path() {
    let host = FakeHost::v2();
    let mut m = host.manager("ctr", Some("/a/b/ctr"));
    // The fake cannot add files on mkdir: give the levels we pass through
    // their subtree_control first.
    for d in ["a", "a/b"] {
        fs::create_dir_all(host.root().join(d)).unwrap();
        fs::write(host.root().join(d).join("cgroup.subtree_control"), "").unwrap();
    }
    m.create().unwrap();
    let all = "+cpuset +cpu +io +memory +hugetlb +pids +rdma";
    for d in ["", "a", "a/b"] {
        assert_eq!(
            read(&host.root().join(d), "cgroup.subtree_control").trim(),
            all,
            "level {d:?}"
        );
    }
    assert!(host.root().join("a/b/ctr").is_dir());
    assert!(!host.root().join("a/b/ctr/cgroup.subtree_control").exists());
    m.destroy().unwrap();
    assert!(!host.root().join("a/b/ctr").exists());
}

#[test]
fn set_writes_every_resource() {
    let host = FakeHost::v2();
    let loader = recording();
    let m = host
        .manager("ctr", Some("/ctr"))
        .with_device_loader(loader.clone());
    host.populate(&m);
    let r = res(r#"{
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"}
        ],
        "memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728, "swappiness": 5},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000,
                "cpus": "0-1", "mems": "0", "idle": 0},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "leafWeight": 10,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 100}},
        "unified": {"memory.high": "900000", "cgroup.max.depth": "4"}
    }"#);
    fs::write(m.paths()[""].join("cgroup.max.depth"), "").unwrap();
    fs::write(m.paths()[""].join("memory.high"), "").unwrap();
    m.set(&r).unwrap();
    let d = &m.paths()[""];
    assert_eq!(read(d, "cpu.weight"), "39\n");
    assert_eq!(lines(d, "cpu.max"), vec!["max 100000", "50000 100000"]);
    assert_eq!(read(d, "cpu.max.burst"), "1000\n");
    assert_eq!(read(d, "cpu.idle"), "0\n");
    assert_eq!(read(d, "cpuset.cpus"), "0-1\n");
    assert_eq!(read(d, "cpuset.mems"), "0\n");
    assert_eq!(read(d, "memory.max"), "1048576\n");
    assert_eq!(read(d, "memory.swap.max"), "2097152\n");
    assert_eq!(read(d, "memory.low"), "524288\n");
    assert_eq!(read(d, "pids.max"), "max\n");
    // No io.bfq.weight in the fake: io.weight, converted.
    assert_eq!(lines(d, "io.weight"), vec!["default 4950", "8:0 10000"]);
    assert_eq!(lines(d, "io.max"), vec!["8:0 rbps=1000", "8:0 wiops=max"]);
    assert_eq!(read(d, "hugetlb.2MB.max"), "4194304\n");
    assert_eq!(read(d, "hugetlb.2MB.rsvd.max"), "4194304\n");
    assert_eq!(read(d, "rdma.max"), "mlx5_1 hca_handle=3 hca_object=100\n");
    assert_eq!(read(d, "memory.high"), "900000\n");
    assert_eq!(read(d, "cgroup.max.depth"), "4\n");

    let installed = loader.installed.lock().unwrap();
    assert_eq!(installed.len(), 1);
    let (dir, prog) = &installed[0];
    assert_eq!(dir, d);
    assert!(prog.evaluate(DeviceKind::Char, 1, 3, access::READ | access::WRITE));
    assert!(prog.evaluate(DeviceKind::Char, 136, 2, access::WRITE));
    assert!(!prog.evaluate(DeviceKind::Char, 136, 2, access::MKNOD));
    assert!(!prog.evaluate(DeviceKind::Block, 8, 0, access::READ));
}

#[test]
fn update_keeps_the_other_half_of_cpu_max() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let d = m.paths()[""].clone();
    fs::write(d.join("cpu.max"), "20000 100000\n").unwrap();
    m.update(&res(r#"{"cpu": {"period": 50000}}"#)).unwrap();
    assert_eq!(lines(&d, "cpu.max").last().unwrap(), "20000 50000");
    m.update(&res(r#"{"cpu": {"quota": -1}}"#)).unwrap();
    assert_eq!(lines(&d, "cpu.max").last().unwrap(), "max 50000");
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let err = m
        .update(&res(
            r#"{"memory": {"limit": 1000, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err();
    match err {
        Error::MemoryBelowUsage {
            key, usage, limit, ..
        } => {
            assert_eq!((key.as_str(), usage, limit), ("memory.limit", 4096, 1000));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(read(&m.paths()[""], "memory.max"), "");
    m.update(&res(
        r#"{"memory": {"limit": 100000, "checkBeforeUpdate": true}}"#,
    ))
    .unwrap();
    assert_eq!(read(&m.paths()[""], "memory.max"), "100000\n");
}

#[test]
fn v2_specific_errors_name_the_key() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let err = |json: &str| m.set(&res(json)).unwrap_err();
    assert!(matches!(
        err(r#"{"cpu": {"realtimeRuntime": 100}}"#),
        Error::Unsupported { key, .. } if key == "cpu.realtimeRuntime"
    ));
    assert!(matches!(
        err(r#"{"network": {"classID": 1}}"#),
        Error::Unsupported { key, .. } if key == "network.classID"
    ));
    assert!(matches!(
        err(r#"{"memory": {"swap": 100}}"#),
        Error::InvalidResource { key, .. } if key == "memory.swap"
    ));
    assert!(matches!(
        err(r#"{"unified": {"../x": "1"}}"#),
        Error::InvalidResource { key, .. } if key.starts_with("unified")
    ));
    assert!(matches!(
        err(r#"{"unified": {"NOT-A-VALID-KEY": "1"}}"#),
        Error::InvalidResource { reason, .. } if reason.contains("CONTROLLER.VALUE")
    ));
    // An available controller's missing file keeps the kernel's ENOENT.
    match err(r#"{"unified": {"memory.DOESNTEXIST": "baz"}}"#) {
        e @ Error::SetResource { .. } => {
            let cause = std::error::Error::source(&e).unwrap().to_string();
            assert!(
                cause.to_lowercase().contains("no such file or directory"),
                "{cause}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match err(r#"{"unified": {"misc.max": "1"}}"#) {
        Error::Unsupported { key, reason } => {
            assert_eq!(key, "unified[\"misc.max\"]");
            assert!(
                reason.contains("controller `misc` is not available"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn freezer_via_cgroup_freeze() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let d = m.paths()[""].clone();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    // The fake kernel reports frozen as soon as it is asked.
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    assert_eq!(lines(&d, "cgroup.freeze"), vec!["0", "1", "0"]);
}

#[test]
fn kill_all_uses_cgroup_kill_for_sigkill() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    assert_eq!(m.kill_all(nix::sys::signal::Signal::SIGKILL).unwrap(), 0);
    assert_eq!(read(&m.paths()[""], "cgroup.kill"), "1\n");
}

#[test]
fn stats_read_v2_files() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let d = m.paths()[""].clone();
    fs::write(d.join("memory.max"), "max\n").unwrap();
    fs::write(d.join("pids.max"), "100\n").unwrap();
    fs::write(d.join("memory.swap.max"), "max\n").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 7000);
    assert_eq!(s.cpu.usage.user, 4000);
    assert_eq!(s.cpu.usage.kernel, 3000);
    assert_eq!(s.cpu.throttling.throttled_time, 2000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(s.memory.cache, 300);
    assert_eq!(s.memory.swap.usage, 4096, "swap is reported as memory+swap");
    assert_eq!((s.pids.current, s.pids.limit), (2, 100));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
    assert_eq!(s.hugetlb["2MB"].failcnt, 0);
}

#[test]
fn oom_watcher_follows_memory_events() {
    let host = FakeHost::v2();
    let m = host.manager("ctr", Some("/ctr"));
    host.populate(&m);
    let d = m.paths()[""].clone();
    let mut w = m.oom_watcher().unwrap();
    assert_eq!(
        w.wait(Some(std::time::Duration::from_millis(50))).unwrap(),
        None
    );
    let writer = {
        let d = d.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            fs::write(d.join("memory.events"), "oom 1\noom_kill 2\n").unwrap();
        })
    };
    let ev = w.wait(Some(std::time::Duration::from_secs(5))).unwrap();
    writer.join().unwrap();
    assert_eq!(ev, Some(liana_cgroups::OomEvent::Oom { count: 2 }));
    fs::write(d.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
    let ev = w.wait(Some(std::time::Duration::from_secs(5))).unwrap();
    assert_eq!(ev, Some(liana_cgroups::OomEvent::Gone));
}

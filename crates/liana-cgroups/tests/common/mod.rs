//! A fake cgroupfs in a temporary directory: v1, v2 or hybrid hierarchies
//! with the control files a kernel would create, plus the mountinfo and
//! /proc/self/cgroup describing them.
//!
//! liana writes cgroup files with O_APPEND and a newline, so every fake file
//! ends up as the log of the values written, one per line, after its seed.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use liana_cgroups::bpf::{BpfError, DeviceFilterLoader, DeviceProgram};
use liana_cgroups::{CgroupSetup, Manager, ManagerConfig};

pub struct FakeHost {
    pub tmp: tempfile::TempDir,
    pub setup: CgroupSetup,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    V1,
    V2,
    Hybrid,
}

/// v1 hierarchies: (mount dir name, controllers as in mount options).
const V1_HIERARCHIES: &[(&str, &str)] = &[
    ("cpu,cpuacct", "cpu,cpuacct"),
    ("cpuset", "cpuset"),
    ("memory", "memory"),
    ("devices", "devices"),
    ("freezer", "freezer"),
    ("blkio", "blkio"),
    ("pids", "pids"),
    ("hugetlb", "hugetlb"),
    ("net_cls,net_prio", "net_cls,net_prio"),
    ("rdma", "rdma"),
    ("systemd", "name=systemd"),
];

/// Files of a fresh v1 cgroup, per controller, with their seed.
fn v1_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "cpu" => &[
            ("cpu.shares", ""),
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.cfs_burst_us", ""),
            ("cpu.rt_period_us", ""),
            ("cpu.rt_runtime_us", ""),
            ("cpu.idle", ""),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\n",
            ),
        ],
        "cpuacct" => &[
            ("cpuacct.usage", "5000\n"),
            ("cpuacct.usage_percpu", "3000 2000\n"),
            ("cpuacct.stat", "user 2\nsystem 1\n"),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", ""),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.oom_control", ""),
            ("memory.swappiness", ""),
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.max_usage_in_bytes", "8192\n"),
            ("memory.failcnt", "1\n"),
            ("memory.stat", "cache 100\nrss 200\n"),
            ("cgroup.event_control", ""),
        ],
        "devices" => &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ],
        "freezer" => &[("freezer.state", "THAWED\n")],
        "blkio" => &[
            ("blkio.weight", ""),
            ("blkio.leaf_weight", ""),
            ("blkio.weight_device", ""),
            ("blkio.leaf_weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
            ),
        ],
        "pids" => &[("pids.max", ""), ("pids.current", "3\n")],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", ""),
            ("hugetlb.2MB.rsvd.limit_in_bytes", ""),
            ("hugetlb.2MB.usage_in_bytes", "0\n"),
        ],
        "net_cls" => &[("net_cls.classid", "")],
        "net_prio" => &[("net_prio.ifpriomap", "")],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

/// Files of a fresh v2 cgroup, per controller.
fn v2_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "core" => &[
            ("cgroup.procs", ""),
            ("cgroup.subtree_control", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 1\nfrozen 0\n"),
            ("cgroup.kill", ""),
        ],
        "cpu" => &[
            ("cpu.weight", ""),
            ("cpu.max", "max 100000\n"),
            ("cpu.max.burst", ""),
            ("cpu.idle", ""),
            (
                "cpu.stat",
                "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_periods 5\nnr_throttled 1\nthrottled_usec 2\n",
            ),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.max", ""),
            ("memory.swap.max", ""),
            ("memory.low", ""),
            ("memory.current", "4096\n"),
            ("memory.swap.current", "0\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 0\noom_kill 0\n"),
            ("memory.stat", "anon 100\nfile 300\n"),
        ],
        "io" => &[("io.weight", ""), ("io.max", ""), ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n")],
        "pids" => &[("pids.max", ""), ("pids.current", "2\n")],
        "hugetlb" => &[
            ("hugetlb.2MB.max", ""),
            ("hugetlb.2MB.rsvd.max", ""),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.events", "max 0\n"),
        ],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    }
}

const V2_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"];

impl FakeHost {
    /// v1 only; our own cgroup is `/user/me` in memory, `/` elsewhere.
    pub fn v1() -> FakeHost {
        Self::build(Kind::V1)
    }

    /// v2 only, mounted at `<tmp>/cgroup`; our own cgroup `/user.slice/me.scope`.
    pub fn v2() -> FakeHost {
        Self::build(Kind::V2)
    }

    /// v1 hierarchies plus `<tmp>/cgroup/unified` offering only hugetlb.
    pub fn hybrid() -> FakeHost {
        Self::build(Kind::Hybrid)
    }

    fn build(kind: Kind) -> FakeHost {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        fs::create_dir(&root).unwrap();
        let mut mountinfo = String::new();
        let mut proc_cgroup = String::new();
        if kind != Kind::V2 {
            for (i, (dir, ctrls)) in V1_HIERARCHIES.iter().enumerate() {
                let mp = root.join(dir);
                fs::create_dir(&mp).unwrap();
                mountinfo.push_str(&format!(
                    "{} 1 0:{} / {} rw - cgroup cgroup rw,{}\n",
                    40 + i,
                    40 + i,
                    mp.display(),
                    ctrls
                ));
                let own = if *ctrls == "memory" { "/user/me" } else { "/" };
                proc_cgroup.push_str(&format!("{}:{}:{}\n", i + 1, ctrls, own));
                // Root files that are read: cpuset lists.
                if *ctrls == "cpuset" {
                    fs::write(mp.join("cpuset.cpus"), "0-3\n").unwrap();
                    fs::write(mp.join("cpuset.mems"), "0\n").unwrap();
                }
            }
        }
        let unified_ctrls: Vec<&str> = match kind {
            Kind::V1 => vec![],
            Kind::V2 => V2_CONTROLLERS.to_vec(),
            Kind::Hybrid => vec!["hugetlb"],
        };
        if kind != Kind::V1 {
            let mp = if kind == Kind::V2 {
                root.clone()
            } else {
                let u = root.join("unified");
                fs::create_dir(&u).unwrap();
                u
            };
            mountinfo.push_str(&format!(
                "99 1 0:99 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n",
                mp.display()
            ));
            let own = if kind == Kind::V2 {
                "/user.slice/me.scope"
            } else {
                "/"
            };
            proc_cgroup.push_str(&format!("0::{own}\n"));
            fs::write(
                mp.join("cgroup.controllers"),
                unified_ctrls.join(" ") + "\n",
            )
            .unwrap();
            fs::write(mp.join("cgroup.subtree_control"), "").unwrap();
            if kind == Kind::V2 {
                let slice = mp.join("user.slice");
                fs::create_dir_all(slice.join("me.scope")).unwrap();
                fs::write(slice.join("cgroup.subtree_control"), "").unwrap();
            }
        }
        let mi = tmp.path().join("mountinfo");
        let pc = tmp.path().join("proc-cgroup");
        fs::write(&mi, mountinfo).unwrap();
        fs::write(&pc, proc_cgroup).unwrap();
        let setup = CgroupSetup::detect_from(&mi, &pc).unwrap();
        FakeHost { tmp, setup, kind }
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("cgroup")
    }

    pub fn manager(&self, id: &str, path: Option<&str>) -> Manager {
        Manager::new(&self.setup, &ManagerConfig::new(id, path)).unwrap()
    }

    /// Creates the manager's cgroup directories with the files the kernel
    /// would put there (the fake cannot react to mkdir).
    pub fn populate(&self, m: &Manager) {
        let state = m.state();
        for c in &state.v1 {
            fs::create_dir_all(&c.dir).unwrap();
            write_files(&c.dir, &[("cgroup.procs", ""), ("tasks", "")]);
            for ctrl in &c.controllers {
                write_files(&c.dir, v1_files(ctrl));
            }
        }
        if let Some(u) = &state.unified {
            fs::create_dir_all(&u.dir).unwrap();
            write_files(&u.dir, v2_files("core"));
            for ctrl in &u.controllers {
                write_files(&u.dir, v2_files(ctrl));
            }
        }
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, seed) in files {
        fs::write(dir.join(name), seed).unwrap();
    }
}

/// Content of a file.
pub fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

/// Lines written to a file (its content, split), after the seed.
pub fn lines(dir: &Path, file: &str) -> Vec<String> {
    read(dir, file).lines().map(str::to_owned).collect()
}

/// A device filter loader that records programs instead of calling bpf(2).
#[derive(Debug, Default)]
pub struct RecordingLoader {
    pub installed: Mutex<Vec<(PathBuf, DeviceProgram)>>,
}

impl DeviceFilterLoader for RecordingLoader {
    fn install(&self, cgroup_dir: &Path, program: &DeviceProgram) -> Result<(), BpfError> {
        self.installed
            .lock()
            .unwrap()
            .push((cgroup_dir.to_path_buf(), program.clone()));
        Ok(())
    }
}

pub fn recording() -> Arc<RecordingLoader> {
    Arc::new(RecordingLoader::default())
}

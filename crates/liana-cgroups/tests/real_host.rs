//! Real cgroups on this host, as root. Each test works below its own parent
//! cgroup `/liana-test-<pid>-<n>` in every hierarchy; a drop guard kills
//! whatever is left in it and removes it, also when the test fails.
//! Skipped (with a message) when not root or when cgroups are not mounted.
//!
//! The v1/hybrid tests use the detected setup as is; the v2 tests use only
//! the unified hierarchy (on the hybrid development VM it offers hugetlb,
//! cgroup.freeze, cgroup.kill and eBPF device filters).

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use liana_cgroups::{CgroupSetup, Error, FreezerState, Manager, ManagerConfig, Mode, OomEvent};
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// Returns the detected setup, or `None` (test skipped) when not root.
fn host() -> Option<CgroupSetup> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: real cgroup tests need root");
        return None;
    }
    match CgroupSetup::detect() {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping: no cgroups here: {e}");
            None
        }
    }
}

/// A unique parent cgroup in every hierarchy, removed on drop.
struct Parent {
    name: String,
    dirs: Vec<PathBuf>,
}

impl Parent {
    fn new(setup: &CgroupSetup) -> Parent {
        let name = format!(
            "liana-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut dirs: Vec<PathBuf> = setup.v1.iter().map(|h| h.mountpoint.join(&name)).collect();
        dirs.extend(setup.unified.iter().map(|u| u.mountpoint.join(&name)));
        Parent { name, dirs }
    }

    fn path(&self, leaf: &str) -> String {
        format!("/{}/{leaf}", self.name)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for dir in &self.dirs {
            if !dir.exists() {
                continue;
            }
            // Thaw, kill and remove everything below.
            let mut tree = vec![dir.clone()];
            let mut i = 0;
            while i < tree.len() {
                if let Ok(rd) = fs::read_dir(&tree[i]) {
                    for e in rd.flatten() {
                        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            tree.push(e.path());
                        }
                    }
                }
                i += 1;
            }
            for d in &tree {
                let _ = fs::write(d.join("freezer.state"), "THAWED");
                let _ = fs::write(d.join("cgroup.freeze"), "0");
                if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGKILL,
                        );
                    }
                }
            }
            for d in tree.iter().rev() {
                for _ in 0..100 {
                    match fs::remove_dir(d) {
                        Ok(()) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                        Err(_) => sleep(Duration::from_millis(10)),
                    }
                }
            }
            if dir.exists() {
                eprintln!("warning: could not remove {}", dir.display());
            }
        }
    }
}

/// Spawns `sh -c script` moved into the manager's cgroups right after fork,
/// the way the runtime will do it.
fn spawn_in(m: &Arc<Manager>, script: &str) -> Child {
    let mgr = Arc::clone(m);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec; apply(0) only
    // makes open/write/close syscalls on preallocated paths.
    unsafe {
        cmd.pre_exec(move || {
            mgr.apply(0)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
        });
    }
    cmd.spawn().expect("spawn child in cgroup")
}

fn wait_for<F: FnMut() -> bool>(what: &str, mut f: F) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(20));
    }
}

fn read(p: &std::path::Path, f: &str) -> String {
    fs::read_to_string(p.join(f)).unwrap().trim().to_string()
}

#[test]
fn lifecycle_on_the_host_hierarchies() {
    let Some(setup) = host() else { return };
    let parent = Parent::new(&setup);
    let mut m = Manager::new(
        &setup,
        &ManagerConfig::new("ctr", Some(&parent.path("ctr"))),
    )
    .unwrap();
    m.create().unwrap();
    for (name, dir) in m.paths() {
        assert!(dir.is_dir(), "{name}: {} missing", dir.display());
    }
    m.set(&res(r#"{"memory": {"limit": 67108864, "swap": 134217728},
                  "pids": {"limit": 32},
                  "cpu": {"shares": 512, "quota": 20000, "period": 100000}}"#))
        .unwrap();
    let m = Arc::new(m);
    let p = m.paths();
    if let Some(mem) = p.get("memory") {
        assert_eq!(read(mem, "memory.limit_in_bytes"), "67108864");
        if mem.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read(mem, "memory.memsw.limit_in_bytes"), "134217728");
        }
    }
    if let Some(pids) = p.get("pids") {
        assert_eq!(read(pids, "pids.max"), "32");
    }

    let dir = std::env::temp_dir().join(format!("{}-progress", parent.name));
    let script = format!("while :; do echo x >> {}; sleep 0.01; done", dir.display());
    let mut child = spawn_in(&m, &script);
    let pid = child.id() as i32;
    wait_for("the child in the cgroup", || {
        m.pids().unwrap().contains(&pid)
    });
    for (name, d) in &p {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "pid not in {name}"
        );
    }

    let stats = m.stats().unwrap();
    if p.contains_key("pids") {
        assert!(stats.pids.current >= 1);
        assert_eq!(stats.pids.limit, 32);
    }
    if p.contains_key("memory") {
        assert_eq!(stats.memory.usage.limit, 67108864);
    }
    let json = serde_json::to_value(liana_cgroups::Event::stats("ctr", stats)).unwrap();
    assert_eq!(json["type"], "stats");

    // Pause: no progress while frozen, progress after thaw.
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    let size = || fs::metadata(&dir).map(|md| md.len()).unwrap_or(0);
    let frozen_size = size();
    sleep(Duration::from_millis(300));
    assert_eq!(size(), frozen_size, "a frozen container made progress");
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    wait_for("progress after thaw", || size() > frozen_size);

    // kill_all with SIGTERM goes through freeze/signal/thaw.
    assert!(m.kill_all(Signal::SIGTERM).unwrap() >= 1);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));

    // And SIGKILL (cgroup.kill where the unified tree is joined).
    let mut child = spawn_in(&m, "sleep 60");
    let pid = child.id() as i32;
    wait_for("second child", || m.pids().unwrap().contains(&pid));
    m.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    wait_for("empty cgroup", || m.pids().unwrap().is_empty());

    // Reload from the saved state, destroy, destroy again.
    let saved = serde_json::to_string(&m.state()).unwrap();
    let again = Manager::from_state(serde_json::from_str(&saved).unwrap());
    again.destroy().unwrap();
    for (name, d) in &p {
        assert!(!d.exists(), "{name}: {} left behind", d.display());
    }
    again.destroy().unwrap();
    let _ = fs::remove_file(&dir);
}

#[test]
fn v1_update_orders_memory_and_swap() {
    let Some(setup) = host() else { return };
    let Some(mem) = setup.v1_hierarchy("memory").cloned() else {
        eprintln!("skipping: no v1 memory hierarchy");
        return;
    };
    let v1_only = CgroupSetup {
        v1: vec![mem],
        unified: None,
    };
    let parent = Parent::new(&v1_only);
    let mut m = Manager::new(&v1_only, &ManagerConfig::new("c", Some(&parent.path("c")))).unwrap();
    m.create().unwrap();
    let d = m.paths()["memory"].clone();
    if !d.join("memory.memsw.limit_in_bytes").exists() {
        eprintln!("skipping: no swap accounting");
        return;
    }
    let mb = |n: i64| n * 1024 * 1024;
    m.set(&res(&format!(
        r#"{{"memory": {{"limit": {}, "swap": {}}}}}"#,
        mb(64),
        mb(128)
    )))
    .unwrap();
    // Lowering both: the limit must go first or memsw < limit is refused.
    m.update(&res(&format!(
        r#"{{"memory": {{"limit": {}, "swap": {}}}}}"#,
        mb(16),
        mb(24)
    )))
    .unwrap();
    assert_eq!(read(&d, "memory.limit_in_bytes"), mb(16).to_string());
    assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), mb(24).to_string());
    // Raising both: memsw must go first.
    m.update(&res(&format!(
        r#"{{"memory": {{"limit": {}, "swap": {}}}}}"#,
        mb(256),
        mb(512)
    )))
    .unwrap();
    assert_eq!(read(&d, "memory.limit_in_bytes"), mb(256).to_string());
    assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), mb(512).to_string());
    // The kernel's own refusal names the key.
    let err = m
        .update(&res(&format!(r#"{{"memory": {{"swap": {}}}}}"#, mb(1))))
        .unwrap_err();
    assert!(
        matches!(&err, Error::SetResource { key, .. } if key == "memory.swap"),
        "{err}"
    );
    m.destroy().unwrap();
}

#[test]
fn oom_is_reported() {
    let Some(setup) = host() else { return };
    let parent = Parent::new(&setup);
    let mut m = Manager::new(
        &setup,
        &ManagerConfig::new("oom", Some(&parent.path("oom"))),
    )
    .unwrap();
    m.create().unwrap();
    m.set(&res(r#"{"memory": {"limit": 16777216}}"#)).unwrap();
    let m = Arc::new(m);
    let mut watcher = m.oom_watcher().unwrap();
    let mut child = spawn_in(
        &m,
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
    );
    let ev = watcher.wait(Some(Duration::from_secs(20))).unwrap();
    assert!(
        matches!(ev, Some(OomEvent::Oom { count }) if count >= 1),
        "{ev:?}"
    );
    let status = child.wait().unwrap();
    assert!(!status.success());
    m.kill_all(Signal::SIGKILL).unwrap();
    wait_for("empty cgroup", || m.pids().unwrap().is_empty());
    m.destroy().unwrap();
}

fn unified_only(setup: &CgroupSetup) -> Option<CgroupSetup> {
    let u = setup.unified.clone()?;
    Some(CgroupSetup {
        v1: Vec::new(),
        unified: Some(u),
    })
}

#[test]
fn v2_freeze_kill_and_hugetlb_on_the_unified_tree() {
    let Some(setup) = host() else { return };
    let Some(v2) = unified_only(&setup) else {
        eprintln!("skipping: no unified hierarchy");
        return;
    };
    let parent = Parent::new(&v2);
    let mut m = Manager::new(&v2, &ManagerConfig::new("v2", Some(&parent.path("v2")))).unwrap();
    assert_eq!(m.mode(), Some(Mode::V2));
    m.create().unwrap();
    let d = m.paths()[""].clone();
    let has_hugetlb = v2
        .unified
        .as_ref()
        .unwrap()
        .controllers
        .iter()
        .any(|c| c == "hugetlb");
    if has_hugetlb && d.join("hugetlb.2MB.max").exists() {
        m.set(&res(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
        ))
        .unwrap();
        assert_eq!(read(&d, "hugetlb.2MB.max"), "4194304");
        let stats = m.stats().unwrap();
        assert!(stats.hugetlb.contains_key("2MB"), "{:?}", stats.hugetlb);
    } else {
        eprintln!("note: hugetlb not available on the unified tree");
    }
    let err = m
        .set(&res(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
        ))
        .err();
    if has_hugetlb {
        assert!(
            matches!(&err, Some(Error::SetResource { key, .. }) if key == "hugepageLimits[3MB]"),
            "{err:?}"
        );
    }

    let m = Arc::new(m);
    let mut child = spawn_in(&m, "sleep 60");
    let pid = child.id() as i32;
    wait_for("child in v2 cgroup", || m.pids().unwrap().contains(&pid));
    if !d.join("cgroup.freeze").exists() {
        eprintln!("skipping freeze: no cgroup.freeze");
    } else {
        m.freeze().unwrap();
        assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
        assert!(read(&d, "cgroup.events").contains("frozen 1"));
        m.thaw().unwrap();
        assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    }
    m.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    wait_for("empty v2 cgroup", || m.pids().unwrap().is_empty());
    m.destroy().unwrap();
    assert!(!d.exists());
}

#[test]
fn v2_ebpf_device_filter_is_enforced() {
    let Some(setup) = host() else { return };
    let Some(v2) = unified_only(&setup) else {
        eprintln!("skipping: no unified hierarchy");
        return;
    };
    let parent = Parent::new(&v2);
    let mut m = Manager::new(&v2, &ManagerConfig::new("dev", Some(&parent.path("dev")))).unwrap();
    m.create().unwrap();
    // Deny everything but /dev/null (c 1:3).
    m.set(&res(r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]}"#))
        .unwrap();
    let m = Arc::new(m);
    let script =
        "echo hi > /dev/null || exit 3; head -c1 /dev/zero >/dev/null 2>&1 && exit 4; exit 0";
    let status = spawn_in(&m, script).wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "device filter not enforced: {status:?}"
    );
    // Replace the filter on update: now /dev/zero is allowed too, and only
    // one program stays attached.
    m.update(&res(r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
    ]}"#))
        .unwrap();
    let status = spawn_in(&m, "head -c1 /dev/zero >/dev/null || exit 5; exit 0")
        .wait()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "updated filter not in force: {status:?}"
    );
    wait_for("empty", || m.pids().unwrap().is_empty());
    m.destroy().unwrap();
}

/// Measures create + set(memory, pids) + destroy, the cgroup share of a
/// container start. Run with `--nocapture` to see the figure.
#[test]
fn timing_create_set_destroy() {
    let Some(setup) = host() else { return };
    let parent = Parent::new(&setup);
    let r = res(r#"{"memory": {"limit": 67108864}, "pids": {"limit": 100}}"#);
    let n = 50;
    let (mut total, mut worst) = (Duration::ZERO, Duration::ZERO);
    let (mut t_create, mut t_set, mut t_destroy) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let start = Instant::now();
        let mut m = Manager::new(
            &setup,
            &ManagerConfig::new("t", Some(&parent.path(&format!("t{i}")))),
        )
        .unwrap();
        m.create().unwrap();
        let created = Instant::now();
        m.set(&r).unwrap();
        let set = Instant::now();
        m.destroy().unwrap();
        let el = start.elapsed();
        t_create += created - start;
        t_set += set - created;
        t_destroy += set.elapsed();
        total += el;
        worst = worst.max(el);
    }
    let start = Instant::now();
    let _ = CgroupSetup::detect().unwrap();
    let detect = start.elapsed();
    eprintln!(
        "cgroups ({:?}, {} hierarchies): create+set(memory,pids)+destroy mean {:?} \
         (new+create {:?}, set {:?}, destroy {:?}), worst {:?}; detect {:?}",
        setup.mode(),
        setup.v1.len() + usize::from(setup.unified.is_some()),
        total / n,
        t_create / n,
        t_set / n,
        t_destroy / n,
        worst,
        detect
    );
    assert!(
        total / n < Duration::from_millis(200),
        "cgroup setup too slow"
    );
}

const ROOTLESS_CHILD: &str = "LIANA_CGROUPS_ROOTLESS_CHILD";

/// Runs in a re-executed copy of this test binary as uid/gid 65534; does
/// nothing in a normal run.
#[test]
fn rootless_child_scenario() {
    if std::env::var_os(ROOTLESS_CHILD).is_none() {
        return;
    }
    assert!(!nix::unistd::geteuid().is_root());
    let setup = CgroupSetup::detect().unwrap();
    let mut cfg = ManagerConfig::new(&format!("rootless-{}", std::process::id()), None);
    cfg.rootless = true;
    let mut m = Manager::new(&setup, &cfg).unwrap();
    m.create().unwrap();
    let hierarchies = setup.v1.len() + usize::from(setup.unified.is_some());
    assert_eq!(m.skipped().len(), hierarchies, "skipped {:?}", m.skipped());
    assert!(m.paths().is_empty());
    m.apply(0).unwrap();
    let err = m
        .set(&res(r#"{"memory": {"limit": 1000000}}"#))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { reason, .. } if reason.contains("rootless")),
        "{err}"
    );
    m.set(&res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#))
        .unwrap();
    m.destroy().unwrap();
    // With an explicit cgroupsPath the lack of permission is fatal.
    cfg.cgroups_path = Some(format!("/liana-rootless-{}", std::process::id()));
    let mut m = Manager::new(&setup, &cfg).unwrap();
    let err = m.create().unwrap_err();
    assert_eq!(
        err.kind(),
        liana_cgroups::ErrorKind::PermissionDenied,
        "{err}"
    );
}

#[test]
fn rootless_skips_cgroups_it_may_not_write() {
    let Some(_) = host() else { return };
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootless_child_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOTLESS_CHILD, "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rootless child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

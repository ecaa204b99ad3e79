//! The rootless tier: the runtime run by an unprivileged user (`lianatest`), with the
//! config `spec --rootless` writes.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn rootless_container_runs_as_mapped_root() {
    let rt = Runtime::rootless();
    let b = Bundle::rootless();
    let (uid, _) = test_user();
    let id = unique_id("rl");
    let r = rt.report(&b, &id);
    assert_eq!(r["uid"], 0, "the user is root inside");
    assert_eq!(r["pid"], 1);
    // No network namespace by default: the host's interfaces are visible.
    let host: Vec<serde_json::Value> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| json!(n.trim())))
        .collect();
    assert_eq!(r["interfaces"].as_array().unwrap(), &host);
    // The cgroup hierarchies are not delegated here: skipped, nothing created.
    assert!(cgroup_leftovers(&id).is_empty());
    let mut b2 = Bundle::rootless();
    b2.args(&["/bin/cat", "/proc/self/uid_map"]);
    let (code, out, err) = rt.run_container(&b2, &unique_id("rlmap"));
    assert_eq!(code, 0, "{err}");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f, ["0", uid.to_string().as_str(), "1"]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn rootless_lifecycle() {
    let rt = Runtime::rootless();
    let mut b = Bundle::rootless();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("rllife");
    let bundle = b.path().to_str().unwrap().to_owned();
    rt.ok(&["create", "--bundle", &bundle, &id]);
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let out = rt.ok(&["exec", &id, "/bin/sh", "-c", "id -u; cat /proc/1/cmdline"]);
    assert!(out.starts_with("0\n") && out.contains("/checker"), "{out}");
    rt.ok(&["kill", &id, "KILL"]);
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn multi_range_mapping_goes_through_newuidmap() {
    let rt = Runtime::rootless();
    let mut b = Bundle::rootless();
    let (uid, gid) = test_user();
    let sub = std::fs::read_to_string("/etc/subuid").unwrap();
    let start: u32 = sub
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{TEST_USER}:")))
        .and_then(|r| r.split(':').next())
        .and_then(|s| s.parse().ok())
        .expect("lianatest needs an /etc/subuid range");
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1},
                                            {"containerID": 1, "hostID": start, "size": 1000}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1},
                                            {"containerID": 1, "hostID": start, "size": 1000}]);
        c["process"]["user"] = json!({"uid": 500, "gid": 500});
    });
    b.args(&["/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
    let (code, out, err) = rt.run_container(&b, &unique_id("rlmulti"));
    assert_eq!(code, 0, "{err}");
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&w[..2], ["500", "500"], "{out}");
    assert!(
        out.contains(&start.to_string()),
        "second range mapped: {out}"
    );
}

#[test]
fn rootless_default_state_root_is_under_xdg_runtime_dir() {
    require_root();
    let (uid, gid) = test_user();
    let b = Bundle::rootless();
    let xdg = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(xdg.path(), Some(uid), Some(gid)).unwrap();
    let id = unique_id("rlxdg");
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            TEST_USER,
            "--regid",
            TEST_USER,
            "--init-groups",
            "--",
        ])
        .arg(runtime_bin())
        .args(["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id])
        .env("XDG_RUNTIME_DIR", xdg.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(xdg.path().join("liana").join(&id).join("status").exists());
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            TEST_USER,
            "--regid",
            TEST_USER,
            "--init-groups",
            "--",
        ])
        .arg(runtime_bin())
        .args(["delete", &id])
        .env("XDG_RUNTIME_DIR", xdg.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!xdg.path().join("liana").join(&id).exists());
}

#[test]
fn rootless_cannot_join_the_hosts_network_namespace() {
    let rt = Runtime::rootless();
    let mut b = Bundle::rootless();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network", "path": "/proc/1/ns/net"}));
    });
    let id = unique_id("rlnet");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("network namespace"), "{err}");
    assert_gone(&rt, &b, &id);
}

//! Lifecycle through the CLI, as root: create/start/state/kill/delete/list, run's exit
//! status, invalid operations, pid files, preserved fds and hooks.

mod common;

use common::*;

#[test]
fn run_reports_the_default_process() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("report");
    let r = rt.report(&b, &id);
    assert_eq!(r["pid"], 1, "init is pid 1 of its pid namespace");
    assert_eq!(r["uid"], 0);
    assert_eq!(r["hostname"], "liana");
    assert_eq!(r["cwd"], "/");
    // CAP_AUDIT_WRITE | CAP_KILL | CAP_NET_BIND_SERVICE, as runc's default spec.
    assert_eq!(r["caps"]["bnd"], "0000000020000420");
    assert_eq!(r["caps"]["eff"], "0000000020000420");
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["rlimits"]["nofile"], serde_json::json!([1024, 1024]));
    let fds: Vec<i64> = r["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    assert_eq!(
        fds,
        vec![0, 1, 2],
        "only stdio reaches the container: {}",
        r["fds"]
    );
    assert_eq!(r["interfaces"], serde_json::json!(["lo"]));
    let mounts = r["mounts"].as_array().unwrap();
    let find = |t: &str| {
        mounts
            .iter()
            .find(|m| m["target"] == t)
            .unwrap_or_else(|| panic!("no {t}"))
    };
    assert!(
        find("/")["options"].as_str().unwrap().starts_with("ro"),
        "root is read-only"
    );
    assert_eq!(find("/proc")["fstype"], "proc");
    assert_eq!(find("/dev/pts")["fstype"], "devpts");
    assert!(find("/sys")["options"].as_str().unwrap().starts_with("ro"));
    assert_eq!(
        find("/proc/sys")["options"]
            .as_str()
            .unwrap()
            .split(',')
            .next(),
        Some("ro")
    );
    assert_gone(&rt, &b, &id);
}

#[test]
fn create_start_kill_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let id = unique_id("life");
    let bundle = b.path().to_str().unwrap().to_owned();
    rt.ok(&["create", "--bundle", &bundle, &id]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["bundle"], bundle.as_str());
    assert_eq!(st["ociVersion"], "1.2.0");
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let err = rt.fails(&["start", &id]);
    assert!(err.contains(&id) && err.contains("running"), "{err}");
    let err = rt.fails(&["delete", &id]);
    assert!(err.contains("--force"), "{err}");
    rt.ok(&["kill", &id, "KILL"]);
    for _ in 0..200 {
        if rt.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(rt.state(&id)["status"], "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    let err = rt.fails(&["kill", &id, "TERM"]);
    assert!(err.contains("stopped"), "{err}");
    rt.ok(&["delete", &id]);
    let err = rt.fails(&["state", &id]);
    assert!(err.contains(&id) && err.contains("does not exist"), "{err}");
    assert_gone(&rt, &b, &id);
}

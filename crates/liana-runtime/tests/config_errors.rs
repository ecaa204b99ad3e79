//! Bad input: each case gets a non-zero exit, a message naming the file or field, and
//! leaves nothing behind (no state directory, cgroup, mount or process).

mod common;

use common::*;
use serde_json::json;

/// Runs `create` on the bundle and checks the failure is clean.
fn fails_cleanly(rt: &Runtime, b: &Bundle, expect: &[&str]) -> String {
    let id = unique_id("bad");
    let bundle = b.path().to_str().unwrap().to_owned();
    let before = processes_with(&id);
    let err = rt.fails(&["create", "--bundle", &bundle, &id]);
    for e in expect {
        assert!(err.contains(e), "error should mention {e:?}: {err}");
    }
    assert_gone(rt, b, &id);
    assert_eq!(processes_with(&id), before, "processes left behind");
    assert!(
        rt.ok(&["list", "-q"]).trim().is_empty(),
        "list shows a container"
    );
    err
}

#[test]
fn missing_config() {
    let rt = Runtime::new();
    let b = Bundle::new();
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    fails_cleanly(&rt, &b, &["config.json", "No such file"]);
}

#[test]
fn config_is_not_json() {
    let rt = Runtime::new();
    let b = Bundle::new();
    std::fs::write(b.path().join("config.json"), "{ this is not json").unwrap();
    fails_cleanly(&rt, &b, &["config.json", "not valid JSON"]);
}

#[test]
fn wrong_type_names_the_field() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["user"]["uid"] = json!("root"));
    fails_cleanly(&rt, &b, &["process.user.uid"]);
}

#[test]
fn unknown_namespace_names_the_field() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["namespaces"][0]["type"] = json!("bogus"));
    fails_cleanly(&rt, &b, &["linux.namespaces[0].type", "bogus"]);
}

#[test]
fn relative_cwd_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["cwd"] = json!("tmp"));
    fails_cleanly(&rt, &b, &["process.cwd", "absolute"]);
}

#[test]
fn relative_mount_destination_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "data", "type": "tmpfs", "source": "tmpfs"
        }))
    });
    fails_cleanly(&rt, &b, &["destination", "absolute"]);
}

#[test]
fn mount_destination_escaping_the_rootfs_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/../../../tmp/liana-escape", "type": "tmpfs", "source": "tmpfs"
        }))
    });
    fails_cleanly(&rt, &b, &["destination", "escapes"]);
    assert!(!std::path::Path::new("/tmp/liana-escape").exists());
}

#[test]
fn missing_rootfs_is_named() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
    fails_cleanly(&rt, &b, &["root.path", "no-such-rootfs"]);
}

#[test]
fn missing_executable_fails_at_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/not/here"]);
    fails_cleanly(&rt, &b, &["/not/here"]);
}

#[test]
fn bind_source_missing_is_named() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "/nonexistent/source",
            "options": ["bind"]
        }))
    });
    fails_cleanly(&rt, &b, &["/data", "/nonexistent/source"]);
}

#[test]
fn unknown_namespace_path_is_named() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": "/run/netns/liana-missing"}));
    });
    fails_cleanly(&rt, &b, &["network namespace", "/run/netns/liana-missing"]);
}

#[test]
fn userns_without_mappings_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}))
    });
    fails_cleanly(&rt, &b, &["linux.uidMappings"]);
}

#[test]
fn failing_prestart_hook_leaves_nothing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 7"]}]}));
    fails_cleanly(&rt, &b, &["prestart", "exit status: 7", "nope"]);
}

#[test]
fn invalid_container_id() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), "../evil"]);
    assert!(err.contains("invalid container id"), "{err}");
}

#[test]
fn duplicate_id_is_refused_and_the_first_survives() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "30"]);
    let id = unique_id("dup");
    let bundle = b.path().to_str().unwrap().to_owned();
    rt.ok(&["create", "--bundle", &bundle, &id]);
    let err = rt.fails(&["create", "--bundle", &bundle, &id]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

#[test]
fn tty_without_console_socket_when_detaching() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["terminal"] = json!(true));
    fails_cleanly(&rt, &b, &["--console-socket"]);
}

#[test]
fn errors_go_to_the_log_file_as_json() {
    let rt = Runtime::new();
    let b = Bundle::new();
    std::fs::write(b.path().join("config.json"), "[]").unwrap();
    let log = b.path().join("runtime.log");
    let id = unique_id("log");
    let out = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("config.json"),
        "{line}"
    );
    assert!(line["time"].as_str().is_some());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

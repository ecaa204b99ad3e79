//! The clean-up after a container's exit when the runtime's `delete` fails (a process
//! still leaving its cgroup makes runc's delete fail on a loaded machine): the engine
//! tries again, and neither the runtime's state nor the record is left; when every try
//! fails, even with `--rm`, the container is kept for a later `rm` rather than
//! forgotten with the runtime still holding it.

use std::os::unix::fs::PermissionsExt;

use crate::common::{fixture, Instance};

/// A runtime that is runc, except that its first `refusals` `delete` calls fail.
fn flaky_runc(dir: &std::path::Path, refusals: usize) -> std::path::PathBuf {
    let script = dir.join("flaky-runc");
    let log = dir.join("calls");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"$*\" >> {log}\n\
             for a in \"$@\"; do\n\
             \x20 if [ \"$a\" = delete ]; then\n\
             \x20   n=$(grep -c ' delete ' {log})\n\
             \x20   if [ \"$n\" -le {refusals} ]; then echo \"flaky-runc: delete refused ($n)\" >&2; exit 1; fi\n\
             \x20 fi\n\
             done\n\
             exec runc \"$@\"\n",
            log = log.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_failing_runtime_delete_is_retried() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let dir = l.path().join("flaky");
    std::fs::create_dir(&dir).unwrap();
    let rt = flaky_runc(&dir, 2);
    let img = fx.image();
    let o = l.run(&[
        "run",
        "--rm",
        "--runtime",
        rt.to_str().unwrap(),
        &img,
        "true",
    ]);
    o.ok("run --rm with a runtime whose delete fails twice");
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    let deletes: Vec<&str> = calls.lines().filter(|l| l.contains(" delete ")).collect();
    assert!(
        deletes.len() >= 3,
        "delete tried again after failures: {calls}"
    );
    // runc's state under the --root the engine gave it holds no container.
    assert_eq!(
        runc_list(&runtime_root(&calls)),
        "",
        "runc state left: {calls}"
    );
    assert_eq!(l.ok(&["ps", "-aq"]).trim(), "", "no record left");
}

/// The `--root` the engine gave the runtime, from its logged calls.
fn runtime_root(calls: &str) -> String {
    calls
        .split_whitespace()
        .skip_while(|a| *a != "--root")
        .nth(1)
        .expect("the engine passes --root")
        .to_string()
}

fn runc_list(root: &str) -> String {
    let out = std::process::Command::new("runc")
        .args(["--root", root, "list", "-q"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_runtime_delete_failing_every_time_keeps_the_container_for_rm() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let dir = l.path().join("flaky");
    std::fs::create_dir(&dir).unwrap();
    let rt = flaky_runc(&dir, 3);
    let img = fx.image();
    let o = l.run(&[
        "run",
        "--rm",
        "--name",
        "kept",
        "--runtime",
        rt.to_str().unwrap(),
        &img,
        "true",
    ]);
    assert_eq!(o.code, 0, "the container's own exit code: {}", o.stderr);
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    let root = runtime_root(&calls);
    let id = l.ok(&["ps", "-aq", "--no-trunc"]).trim().to_string();
    assert_eq!(id.len(), 64, "kept: {}", l.ok(&["ps", "-a"]));
    assert_eq!(runc_list(&root), id, "runc still holds it");
    // rm deletes it in the runtime (the fourth delete succeeds), then the record.
    l.ok(&["rm", "kept"]);
    assert_eq!(runc_list(&root), "", "runc state left");
    assert_eq!(l.ok(&["ps", "-aq"]).trim(), "", "no record left");
}

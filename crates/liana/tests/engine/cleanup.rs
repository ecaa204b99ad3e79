//! The clean-up after a container's exit when the runtime's `delete` fails at first (a
//! process still leaving its cgroup makes runc's delete fail on a loaded machine): the
//! engine tries again, and neither the runtime's state nor the record is left.

use std::os::unix::fs::PermissionsExt;

use crate::common::{fixture, Instance};

/// A runtime that is runc, except that its first two `delete` calls fail.
fn flaky_runc(dir: &std::path::Path) -> std::path::PathBuf {
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
             \x20   if [ \"$n\" -le 2 ]; then echo \"flaky-runc: delete refused ($n)\" >&2; exit 1; fi\n\
             \x20 fi\n\
             done\n\
             exec runc \"$@\"\n",
            log = log.display()
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
    let rt = flaky_runc(&dir);
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
    let root = deletes[0]
        .split_whitespace()
        .skip_while(|a| *a != "--root")
        .nth(1)
        .expect("the engine passes --root")
        .to_string();
    let out = std::process::Command::new("runc")
        .args(["--root", &root, "list", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "runc state left: {calls}"
    );
    assert_eq!(l.ok(&["ps", "-aq"]).trim(), "", "no record left");
}

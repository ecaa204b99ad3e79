//! Crash safety of cgroups: the runtime SIGKILLed in the middle of `create` leaves a
//! container that `delete --force` removes completely (state dir, cgroups, processes).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[test]
fn sigkill_during_create_then_delete_force_repairs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/checker", "sleep", "60"]);
    let hook_pid = b.path().join("hook.pid");
    let hook_state = b.path().join("hook.state");
    // Records the hook state (with the init pid), then its own pid, then blocks create.
    let script = format!(
        "cat > {state}; echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; exec sleep 60",
        state = hook_state.display(),
        pid = hook_pid.display()
    );
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}});
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let id = unique_id("crash");
    let mut create = rt.cmd(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    create.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runtime = create.spawn().unwrap();
    let in_hook = wait_for(Duration::from_secs(10), || hook_pid.exists());
    if !in_hook {
        let _ = runtime.kill();
        let _ = runtime.wait();
        panic!("the prestart hook never ran");
    }
    let hook: i32 = std::fs::read_to_string(&hook_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&hook_state).unwrap()).unwrap();
    let init = state["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(init), "the init waits for the hooks");
    let cgroups = cgroup_leftovers(&id);
    assert!(
        cgroups.len() >= 2 && cgroup_dirs(init).values().all(|d| cgroups.contains(d)),
        "the init is in the container's cgroups: {cgroups:?} vs {:?}",
        cgroup_dirs(init)
    );

    runtime.kill().unwrap();
    runtime.wait().unwrap();
    assert!(
        rt.root().join(&id).exists(),
        "the state dir survives the crash"
    );
    rt.ok(&["state", &id]);
    rt.ok(&["delete", "--force", &id]);
    assert!(
        wait_for(Duration::from_secs(5), || !pid_alive(init)),
        "the init outlived delete --force"
    );
    assert_gone(&rt, &b, &id);
    // SAFETY: kill takes integers; the hook is our own grandchild.
    unsafe { libc::kill(hook, libc::SIGKILL) };
}

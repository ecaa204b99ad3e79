//! Resource control through the CLI, as root, with real containers: limits enforced
//! as seen from inside (memory, pids, cpuset, cpu quota, devices), pause/resume,
//! update, events, ps, kill --all, the cgroup managers and linux.cgroupsPath, and
//! what the unified tree offers on a hybrid host. After each test no cgroup of the
//! container is left in any hierarchy.

#[path = "../common/mod.rs"]
mod common;

mod control;
mod limits;
mod managers;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const MIB: i64 = 1 << 20;

fn set_resources(b: &mut Bundle, r: Value) {
    b.edit(|c| c["linux"]["resources"] = r);
}

fn bundle_path(b: &Bundle) -> &str {
    b.path().to_str().unwrap()
}

/// `delete --force`, then nothing of the container is left.
fn remove(rt: &Runtime, b: &Bundle, id: &str) {
    rt.ok(&["delete", "--force", id]);
    assert_gone(rt, b, id);
}

fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.ok(&["events", "--stats", id]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad stats {out:?}: {e}"))
}

fn exec(rt: &Runtime, id: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["exec", id];
    a.extend_from_slice(args);
    let out = rt.run(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exec_ok(rt: &Runtime, id: &str, args: &[&str]) -> String {
    let (code, out, err) = exec(rt, id, args);
    assert_eq!(code, 0, "exec {args:?}: {out}{err}");
    out
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
        .trim()
        .to_owned()
}

fn ps_json(rt: &Runtime, id: &str) -> Vec<i32> {
    let out = rt.ok(&["ps", "--format", "json", id]);
    let mut v: Vec<i32> = serde_json::from_str(out.trim()).unwrap();
    v.sort_unstable();
    v
}

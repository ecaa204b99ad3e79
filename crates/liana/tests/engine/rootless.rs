//! The same walkthrough as the unprivileged test user, with the default rootless
//! locations ($XDG_DATA_HOME, $XDG_RUNTIME_DIR).

use crate::common::{fixture, Instance};

#[test]
fn docker_walkthrough_rootless() {
    let Some(fx) = fixture() else { return };
    let l = Instance::rootless(fx);
    crate::walkthrough::walkthrough(&l);
    // Storage and state went where rootless podman users expect them.
    assert!(l.root_dir().join("metadata.db").exists());
    assert!(l.runroot().join("runtime").exists());
    // The container's root is the user; the rest of its ids are subordinate ones.
    let map = l.ok(&["run", "--rm", &fx.image(), "cat", "/proc/self/uid_map"]);
    let lines: Vec<Vec<u64>> = map
        .lines()
        .map(|x| x.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect();
    let (uid, _) = crate::common::test_user();
    assert_eq!(lines[0], vec![0, uid as u64, 1], "{map}");
    assert!(
        lines.len() == 2 && lines[1][0] == 1 && lines[1][2] >= 65536,
        "{map}"
    );
}

#[test]
fn rootless_limits_warn() {
    let Some(fx) = fixture() else { return };
    let l = Instance::rootless(fx);
    let o = l.run(&["run", "--rm", "-m", "64m", &fx.image(), "true"]);
    o.ok("run -m rootless");
    assert!(
        o.stderr.contains("--memory") && o.stderr.contains("ignored"),
        "{}",
        o.stderr
    );
}

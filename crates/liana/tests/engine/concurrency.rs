//! 100 `liana run -d` at once leave 100 consistent containers; 100 `rm -f` at once
//! leave nothing behind.

use std::collections::HashSet;
use std::process::{Child, Stdio};

use crate::common::{fixture, Instance};

fn spawn_all(
    l: &Instance,
    argv: impl Fn(usize) -> Vec<String>,
    n: usize,
) -> Vec<(Child, tempfile::NamedTempFile)> {
    (0..n)
        .map(|i| {
            let out = tempfile::NamedTempFile::new().unwrap();
            let args = argv(i);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = l
                .cmd(&refs)
                .stdout(out.reopen().unwrap())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect()
}

#[test]
fn hundred_parallel_runs() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    // Pull once so that the runs race on containers, not on the pull.
    l.ok(&["pull", "-q", &img]);
    let n = 100;
    let children = spawn_all(
        &l,
        |i| {
            vec![
                "run".into(),
                "-d".into(),
                "--name".into(),
                format!("par-{i}"),
                img.clone(),
                "sleep".into(),
                "1000".into(),
            ]
        },
        n,
    );
    let mut ids = HashSet::new();
    for (mut c, out) in children {
        assert!(c.wait().unwrap().success(), "a parallel run failed");
        let id = std::fs::read_to_string(out.path())
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(id.len(), 64);
        ids.insert(id);
    }
    assert_eq!(ids.len(), n);
    let running: HashSet<String> = l
        .ok(&["ps", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(running, ids, "ps lists exactly the containers started");
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&l.ok(&["ps", "--format", "json"])).unwrap();
    let names: HashSet<String> = json
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, (0..n).map(|i| format!("par-{i}")).collect());
    for c in &json {
        let pid = c["Pid"].as_i64().unwrap();
        assert!(
            pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{c}"
        );
    }
    let children = spawn_all(
        &l,
        |i| vec!["rm".into(), "-f".into(), format!("par-{i}")],
        n,
    );
    for (mut c, _) in children {
        assert!(c.wait().unwrap().success(), "a parallel rm -f failed");
    }
    assert!(l.all_ids().is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(l.path().to_str().unwrap()),
        "mounts left behind"
    );
    for id in &ids {
        for ctrl in ["memory", "pids", "cpu"] {
            let p = format!("/sys/fs/cgroup/{ctrl}/liana/{id}");
            assert!(!std::path::Path::new(&p).exists(), "{p} left behind");
        }
    }
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines()
            .any(|x| x.contains("liana-monitor") && x.contains(l.path().to_str().unwrap())),
        "monitors left"
    );
}

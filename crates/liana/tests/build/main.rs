//! `liana build` integration tests: real builds on the busybox test image from a real
//! registry (the engine tests' fixture, on its own ports), run with `liana run`, pushed
//! and read back by skopeo and podman. Needs root; skipped otherwise.

#![allow(missing_debug_implementations)]

#[path = "../engine/common.rs"]
mod common;

mod archives;
mod bad_input;
mod basics;
mod cache;
mod cli;
mod interop;
mod remote;
mod rootless;

use std::path::{Path, PathBuf};

use common::{Fixture, Instance, Out};

/// The fixture, on ports of our own (15700..) so that the engine tests (15400) and the
/// engine bench (15600) can run at the same time.
pub fn fx() -> Option<&'static Fixture> {
    static PORT: std::sync::Once = std::sync::Once::new();
    PORT.call_once(|| {
        if std::env::var_os("LIANA_TEST_PORT").is_none() {
            std::env::set_var("LIANA_TEST_PORT", "15700");
        }
    });
    common::fixture()
}

/// A build context: `files` (path, content) under a fresh directory of the instance.
pub fn context(l: &Instance, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = l.path().join(name);
    for (p, c) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, c).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `liana build ARGS CONTEXT`.
pub fn build(l: &Instance, ctx: &Path, args: &[&str]) -> Out {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    let c = ctx.to_str().unwrap();
    a.push(c);
    l.run(&a)
}

/// Lines of the progress output of steps that ran a command (`#N 0.123 ...`).
pub fn ran_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|n| n.starts_with('#'))
                && w.next()
                    .is_some_and(|t| t.contains('.') && t.parse::<f64>().is_ok())
        })
        .collect()
}

/// Nothing of a build is left mounted or in its scratch directory.
pub fn assert_clean(l: &Instance) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let p = l.path().to_str().unwrap();
    assert!(
        !mounts.lines().any(|m| m.contains(p)),
        "mounts left under {p}:\n{mounts}"
    );
    let b = l.runroot().join("build");
    let left: Vec<_> = std::fs::read_dir(&b)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build directories left: {left:?}");
}

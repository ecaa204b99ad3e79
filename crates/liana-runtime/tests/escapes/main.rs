//! Escape regression tests: each reproduces a known container escape (most of them
//! found in runc) against liana-runtime, as root, with real containers, and asserts that
//! it fails and that the host is untouched.
//!
//! `LIANA_IT_RUNTIME=/usr/sbin/runc` runs the same attacks against runc (the tests that
//! need liana's own behaviour say so).

#[path = "../common/mod.rs"]
mod common;

mod dev;
mod exe;
mod fds;
mod masks;
mod mounts;

use dev::CorePattern;
use fds::{borrowed, leaks};
use masks::{userns_all_caps_bundle, userns_bundle};

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_str().unwrap().to_owned()
}

/// Replaces the config mount at `dest` (or appends one).
fn set_mount(b: &mut Bundle, dest: &str, m: Value) {
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        match mounts.iter().position(|x| x["destination"] == dest) {
            Some(i) => mounts[i] = m,
            None => mounts.push(m),
        }
    });
}

fn remove_mount(b: &mut Bundle, dest: &str) {
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x["destination"] != dest)
    });
}

fn open_dir(p: &Path) -> OwnedFd {
    fs::File::open(p).unwrap().into()
}

fn host_dir_with_marker() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("liana-host-")
        .tempdir()
        .unwrap();
    fs::write(d.path().join("liana-host-marker"), "host").unwrap();
    d
}

/// A path on the host that does not exist yet (its parent is a fresh temporary dir).
fn absent_host_path() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("liana-escape-")
        .tempdir()
        .unwrap();
    let p = d.path().join("target");
    (d, p)
}

fn cstr(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn read_file(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn run_detached(rt: &Runtime, b: &Bundle, id: &str) {
    rt.ok(&["run", "-d", "--bundle", &bundle_arg(b), id]);
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

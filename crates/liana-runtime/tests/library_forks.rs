//! liana-runtime's library in a process whose other threads work on other containers
//! (as `liana build` runs stages in parallel): the init of a created container, waiting
//! for `start`, keeps nothing it inherited from that process, neither another
//! container's state lock nor another container's output pipe.

mod common;

use common::*;
use liana_container::config::ContainerId;
use liana_container::state::ContainerDir;
use liana_container::{CreateRequest, Runtime};

#[test]
fn a_created_init_keeps_no_inherited_lock_or_pipe() {
    require_root();
    let state = tempfile::tempdir().unwrap();
    let rt = Runtime {
        root: state.path().join("state"),
        rootless: false,
        cgroup_driver: liana_cgroups::Driver::Cgroupfs,
    };
    // What another thread holds while this one creates a container: the state lock of
    // the container it works on, and the write end of that container's output pipe.
    let other = ContainerId::new("other").unwrap();
    let locked = ContainerDir::create(&rt.root, &other).unwrap();
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).unwrap();

    let mut b = Bundle::new();
    b.args(&["true"]);
    let id = unique_id("forks");
    let created = rt.create(&CreateRequest {
        id: id.clone(),
        bundle: b.path().into(),
        ..Default::default()
    });
    drop(locked);
    drop(wr);
    let check = || -> Result<(), String> {
        created.as_ref().map_err(|e| format!("create: {e}"))?;
        let dir = std::fs::File::open(rt.root.join("other")).unwrap();
        nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| format!("the other container's lock is still held: {e}"))?;
        let mut buf = [0u8; 1];
        match nix::unistd::read(&rd, &mut buf) {
            Ok(0) => Ok(()),
            r => Err(format!("the other container's pipe is still open: {r:?}")),
        }
    };
    let result = check();
    rt.delete(&id, true).unwrap();
    result.unwrap();
}

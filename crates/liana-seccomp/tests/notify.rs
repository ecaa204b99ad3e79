//! SCMP_ACT_NOTIFY end to end: a child installs a filter, sends the listener to an agent socket
//! with `listener::send`, and this test, as the agent, receives the fd and the container process
//! state, then answers the child's notified syscalls.

mod common;

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::{allow_install_unprivileged, filter, fork_child, sys_getppid, wait, Outcome};
use liana_seccomp::notify::{self, Response};
use liana_seccomp::{listener, CompiledFilter};
use oci_spec::runtime::{ContainerState, State};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a 2-int array for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new fds that nothing else owns.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// Waits until `fd` is readable, failing the test after 10 s instead of hanging.
fn wait_readable(fd: BorrowedFd<'_>, what: &str) {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let ready = unsafe { libc::poll(&mut pollfd, 1, 10_000) };
    assert_eq!(ready, 1, "timed out waiting for {what}");
}

/// Accepts one connection and reads the whole message: the payload and the fds sent with it.
fn accept_state(agent: &UnixListener) -> (serde_json::Value, Vec<OwnedFd>) {
    wait_readable(agent.as_fd(), "the runtime to connect");
    let (conn, _) = agent.accept().expect("accept");
    let mut payload = Vec::new();
    let mut fds = Vec::new();
    loop {
        wait_readable(conn.as_fd(), "the container process state");
        let mut buf = [0u8; 4096];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 {
            break; // the runtime closes the connection after one state
        }
        payload.extend_from_slice(&buf[..msg.bytes]);
    }
    (
        serde_json::from_slice(&payload).expect("payload is JSON"),
        fds,
    )
}

/// The child's side: install, hand the listener to the agent, then run `after`.
fn container(f: &CompiledFilter, agent: &Path, after: impl FnOnce() -> i32) -> libc::pid_t {
    fork_child(|| {
        let mut state = State::default();
        state.set_version("1.2.0".to_owned());
        state.set_id("ctr-notify".to_owned());
        state.set_status(ContainerState::Creating);
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        state.set_pid(Some(pid));
        state.set_bundle("/bundles/ctr-notify".into());
        let Ok(payload) = listener::encode(&listener::process_state(&state, pid, Some("meta-42")))
        else {
            return 2;
        };
        allow_install_unprivileged();
        let listener_fd = match f.install() {
            Ok(Some(fd)) => fd,
            Ok(None) => return 3,
            Err(_) => return 4,
        };
        if listener::send(agent, listener_fd.as_fd(), &payload).is_err() {
            return 5;
        }
        drop(listener_fd);
        after()
    })
}

fn check_state(state: &serde_json::Value, pid: libc::pid_t) {
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(state["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(state["pid"], pid);
    assert_eq!(state["metadata"], "meta-42");
    assert_eq!(state["state"]["id"], "ctr-notify");
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["state"]["pid"], pid);
    assert_eq!(state["state"]["bundle"], "/bundles/ctr-notify");
}

#[test]
fn notified_syscalls_are_answered_by_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&socket).unwrap();
    let f = filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":{socket:?},
            "listenerMetadata":"meta-42","flags":["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}}]}}"#
    ));
    assert!(f.has_notify_rules());
    let pid = container(&f, &socket, || match (sys_getppid(), sys_getppid()) {
        (Ok(4242), Err(libc::EXDEV)) => 0,
        (Ok(4242), _) => 11,
        _ => 10,
    });

    let (state, mut fds) = accept_state(&agent);
    check_state(&state, pid);
    assert_eq!(fds.len(), 1, "exactly the seccomp fd");
    let listener_fd = fds.pop().unwrap();

    wait_readable(listener_fd.as_fd(), "the first notification");
    let first = notify::receive(listener_fd.as_fd()).unwrap();
    assert_eq!(i64::from(first.data.nr), libc::SYS_getppid);
    assert_eq!(first.pid, pid as u32);
    assert!(notify::id_valid(listener_fd.as_fd(), first.id).unwrap());
    notify::respond(listener_fd.as_fd(), first.id, Response::Value(4242)).unwrap();
    assert!(
        !notify::id_valid(listener_fd.as_fd(), first.id).unwrap(),
        "answered ids are gone"
    );

    wait_readable(listener_fd.as_fd(), "the second notification");
    let second = notify::receive(listener_fd.as_fd()).unwrap();
    assert_ne!(second.id, first.id);
    notify::respond(listener_fd.as_fd(), second.id, Response::Errno(libc::EXDEV)).unwrap();

    assert_eq!(
        wait(pid),
        Outcome::Exited(0),
        "10: first answer lost, 11: second; 2-5: set-up"
    );
}

#[test]
fn continue_response_runs_the_syscall() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&socket).unwrap();
    let f = filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":{socket:?},
            "listenerMetadata":"meta-42",
            "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}}]}}"#
    ));
    // SAFETY: getpid has no preconditions.
    let me = i64::from(unsafe { libc::getpid() });
    let pid = container(
        &f,
        &socket,
        move || if sys_getppid() == Ok(me) { 0 } else { 10 },
    );
    let (_, mut fds) = accept_state(&agent);
    let listener_fd = fds.pop().expect("the seccomp fd");
    wait_readable(listener_fd.as_fd(), "the notification");
    let notification = notify::receive(listener_fd.as_fd()).unwrap();
    notify::respond(listener_fd.as_fd(), notification.id, Response::Continue).unwrap();
    assert_eq!(
        wait(pid),
        Outcome::Exited(0),
        "10: getppid did not really run"
    );
}

/// crun (and podman, and crun's test-suite) send the agent a listener whenever listenerPath is
/// set, even with no notify rule; it just never carries a notification.
#[test]
fn listener_path_without_notify_rules_sends_an_idle_listener() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&socket).unwrap();
    let f = filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":{socket:?},
            "listenerMetadata":"meta-42"}}"#
    ));
    assert!(f.needs_listener() && !f.has_notify_rules());
    let pid = container(&f, &socket, || if sys_getppid().is_ok() { 0 } else { 10 });
    let (state, fds) = accept_state(&agent);
    check_state(&state, pid);
    assert_eq!(fds.len(), 1);
    assert_eq!(wait(pid), Outcome::Exited(0));
    // It is a seccomp listener: the notify ioctl knows it (any other fd gives ENOTTY).
    assert!(!notify::id_valid(fds[0].as_fd(), 1).unwrap());
    let not_a_listener = std::fs::File::open("/dev/null").unwrap();
    assert!(notify::id_valid(not_a_listener.as_fd(), 1).is_err());
}

/// runc's flow: the container process only reports its listener's fd number; the runtime copies
/// the fd out with `listener::take`, sends it to the agent, then lets the process go on.
#[test]
fn runtime_takes_the_listener_and_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = UnixListener::bind(&socket).unwrap();
    let f = filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":{socket:?},
            "listenerMetadata":"meta-42",
            "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}}]}}"#
    ));
    let (report_rx, report_tx) = pipe();
    let (go_rx, go_tx) = pipe();
    let pid = fork_child(|| {
        use std::io::{Read, Write};
        allow_install_unprivileged();
        let Ok(Some(listener_fd)) = f.install() else {
            return 3;
        };
        let number = listener_fd.as_raw_fd().to_ne_bytes();
        if (&report_tx).write_all(&number).is_err() {
            return 4;
        }
        let mut go = [0u8; 1];
        if (&go_rx).read_exact(&mut go).is_err() {
            return 5;
        }
        drop(listener_fd);
        if sys_getppid() == Ok(4242) {
            0
        } else {
            10
        }
    });
    drop(report_tx);
    drop(go_rx);

    use std::io::{Read, Write};
    let mut number = [0u8; 4];
    (&report_rx)
        .read_exact(&mut number)
        .expect("the child reports its listener");
    let taken = listener::take(pid, i32::from_ne_bytes(number)).expect("pidfd_getfd");
    let mut state = State::default();
    state.set_version("1.2.0".to_owned());
    state.set_id("ctr-notify".to_owned());
    state.set_status(ContainerState::Creating);
    state.set_pid(Some(pid));
    state.set_bundle("/bundles/ctr-notify".into());
    let payload = listener::encode(&listener::process_state(&state, pid, Some("meta-42"))).unwrap();
    listener::send(&socket, taken.as_fd(), &payload).unwrap();
    drop(taken);
    (&go_tx).write_all(b"g").unwrap();

    let (state, mut fds) = accept_state(&agent);
    check_state(&state, pid);
    let listener_fd = fds.pop().expect("the seccomp fd");
    wait_readable(listener_fd.as_fd(), "the notification");
    let notification = notify::receive(listener_fd.as_fd()).unwrap();
    assert_eq!(notification.pid, pid as u32);
    notify::respond(listener_fd.as_fd(), notification.id, Response::Value(4242)).unwrap();
    assert_eq!(
        wait(pid),
        Outcome::Exited(0),
        "10: answer lost; 3-5: set-up in the child"
    );
}

#[test]
fn take_reports_a_missing_fd() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let err = listener::take(me, 1_000_000).unwrap_err();
    assert!(
        matches!(err, listener::ListenerError::Take { fd: 1_000_000, .. }),
        "{err:?}"
    );
}

//! SCMP_ACT_LOG: the syscall runs, and the kernel audits it. Alone in its test binary so that few
//! other audit records compete with it for the kernel's printk rate limit (10 per 5 s), and
//! tried a second time after that window if its record is missing.
//!
//! The audit check needs root (to read /dev/kmsg) and the kernel's audit records on the kernel
//! log, which is where they go when no audit daemon runs (the case on this project's machines).

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::{allow_install_unprivileged, filter, fork_child, sys_getppid, wait, Outcome};
use liana_seccomp::CompiledFilter;

/// /dev/kmsg positioned at its end, to see only records written from now on.
fn open_kmsg() -> Option<File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    file.seek(SeekFrom::End(0)).ok()?;
    Some(file)
}

/// Runs the LOG-filtered child; returns its pid once it exited successfully.
fn run_logged_child(f: &CompiledFilter) -> libc::pid_t {
    let pid = fork_child(|| {
        let before = sys_getppid();
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        if sys_getppid() == before && before.is_ok() {
            0
        } else {
            4
        }
    });
    assert_eq!(
        wait(pid),
        Outcome::Exited(0),
        "3: install, 4: getppid did not run"
    );
    pid
}

/// Whether a SECCOMP_RET_LOG record for `pid`'s getppid shows up within 3 s.
fn audited(kmsg: &mut File, pid: libc::pid_t) -> bool {
    let pid_field = format!(" pid={pid} ");
    let syscall_field = format!(" syscall={} ", libc::SYS_getppid);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut record = vec![0u8; 8192];
    while Instant::now() < deadline {
        match kmsg.read(&mut record) {
            Ok(n) => {
                let line = String::from_utf8_lossy(&record[..n]);
                if line.contains(&pid_field)
                    && line.contains(&syscall_field)
                    && line.contains("code=0x7ffc0000")
                {
                    return true;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            // EPIPE: records were overwritten while reading; keep going.
            Err(err) if err.raw_os_error() == Some(libc::EPIPE) => {}
            Err(err) => panic!("reading /dev/kmsg: {err}"),
        }
    }
    false
}

#[test]
fn log_action_lets_the_syscall_run_and_audits_it() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    let Some(mut kmsg) = open_kmsg() else {
        run_logged_child(&f);
        eprintln!("SKIPPED audit check: /dev/kmsg is not readable (needs root)");
        return;
    };
    let pid = run_logged_child(&f);
    if audited(&mut kmsg, pid) {
        return;
    }
    // Perhaps rate-limited: wait out the printk window and try once more.
    std::thread::sleep(Duration::from_millis(5500));
    let pid = run_logged_child(&f);
    assert!(
        audited(&mut kmsg, pid),
        "no SECCOMP_RET_LOG audit record for pid {pid}"
    );
}

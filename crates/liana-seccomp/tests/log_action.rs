//! SCMP_ACT_LOG: the syscall runs, and the kernel audits it. Alone in its test binary so that no
//! other test's audit records compete with it for the kernel's printk rate limit.

mod common;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::{allow_install_unprivileged, filter, fork_child, sys_getppid, wait, Outcome};

#[test]
fn log_action_lets_the_syscall_run_and_audits_it() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    // Opened (at the end of the log) before the child runs, to see only new records.
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .and_then(|mut file| {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::End(0))?;
            Ok(file)
        })
        .ok();
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

    let Some(kmsg) = kmsg.as_mut() else {
        eprintln!("SKIPPED audit check: /dev/kmsg is not readable (needs root)");
        return;
    };
    let (pid_field, syscall_field) = (
        format!(" pid={pid} "),
        format!(" syscall={} ", libc::SYS_getppid),
    );
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
                    return;
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
    panic!("no SECCOMP_RET_LOG audit record for pid {pid} in the kernel log");
}

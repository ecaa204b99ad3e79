//! Filters installed for real in forked children, checked by what the syscalls then do.
//! As root the children install without no_new_privs (with CAP_SYS_ADMIN, the runtime's usual
//! path); unprivileged they set no_new_privs first. Tests that drop privileges need root.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use common::{allow_install_unprivileged, filter, run_in_child, sys_getcwd, sys_getppid, Outcome};
use liana_seccomp::InstallError;

#[test]
fn errno_rule_fails_the_syscall_with_its_errno() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("made-under-seccomp");
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42},
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    );
    let outcome = run_in_child(|| {
        if sys_getcwd().is_err() {
            return 2; // getcwd must work before the filter
        }
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        if sys_getcwd() != Err(42) {
            return 4;
        }
        match std::fs::create_dir(&target) {
            Err(err) if err.raw_os_error() == Some(13) => 0,
            _ => 5,
        }
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "2: getcwd failed early, 3: install, 4: getcwd, 5: mkdir"
    );
    assert!(!target.exists(), "mkdir ran despite the filter");
}

#[test]
fn default_errno_applies_to_every_unlisted_syscall() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["exit","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        let getcwd = sys_getcwd();
        let getppid = sys_getppid();
        // SAFETY: exit_group is allowed; nothing else may run now.
        unsafe {
            libc::syscall(
                libc::SYS_exit_group,
                if (getcwd, getppid) == (Err(38), Err(38)) {
                    0
                } else {
                    4
                },
            )
        };
        5
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "3: install, 4: a syscall was not ENOSYS"
    );
}

#[test]
fn kill_process_kills_the_whole_process_with_sigsys() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        // A second thread makes the call; the main thread must die too.
        std::thread::spawn(|| {
            let _ = sys_getppid();
        });
        std::thread::sleep(Duration::from_secs(5));
        0
    });
    assert_eq!(outcome, Outcome::Signaled(libc::SIGSYS));
}

#[test]
fn kill_thread_kills_only_the_calling_thread() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {{"names":["getppid"],"action":"{action}"}}]}}"#
        ));
        let outcome = run_in_child(|| {
            allow_install_unprivileged();
            if f.install().is_err() {
                return 3;
            }
            static AFTER: AtomicBool = AtomicBool::new(false);
            std::thread::spawn(|| {
                let _ = sys_getppid();
                AFTER.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(300));
            // The thread died in the syscall; the process lives on.
            if AFTER.load(Ordering::SeqCst) {
                4
            } else {
                0
            }
        });
        assert_eq!(
            outcome,
            Outcome::Exited(0),
            "{action}: 4 means the thread survived"
        );

        let outcome = run_in_child(|| {
            allow_install_unprivileged();
            if f.install().is_err() {
                return 3;
            }
            let _ = sys_getppid();
            4
        });
        assert_eq!(
            outcome,
            Outcome::Signaled(libc::SIGSYS),
            "{action}: single thread"
        );
    }
}

static TRAPPED_NR: AtomicI32 = AtomicI32::new(-1);
static TRAPPED_ARCH: AtomicU32 = AtomicU32::new(0);
static TRAPPED_CODE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t. For SIGSYS its union holds
    // { void *call_addr; int syscall; unsigned int arch; } right after the three ints and
    // their padding, at byte offset 16 on 64-bit targets.
    unsafe {
        let base = info.cast::<u8>();
        TRAPPED_CODE.store((*info).si_code, Ordering::SeqCst);
        TRAPPED_NR.store(base.add(24).cast::<i32>().read(), Ordering::SeqCst);
        TRAPPED_ARCH.store(base.add(28).cast::<u32>().read(), Ordering::SeqCst);
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn trap_delivers_sigsys_naming_the_syscall() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_TRAP"}]}"#,
    );
    let outcome = run_in_child(|| {
        // SAFETY: installs a SA_SIGINFO handler that only stores into atomics.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigsys as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut());
        }
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        let _ = sys_getcwd();
        const SYS_SECCOMP: i32 = 1;
        if TRAPPED_CODE.load(Ordering::SeqCst) != SYS_SECCOMP {
            return 4;
        }
        if i64::from(TRAPPED_NR.load(Ordering::SeqCst)) != libc::SYS_getcwd {
            return 5;
        }
        if TRAPPED_ARCH.load(Ordering::SeqCst) != liana_seccomp::bpf::AUDIT_ARCH_X86_64 {
            return 6;
        }
        // Other syscalls still work.
        if sys_getppid().is_err() {
            return 7;
        }
        0
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "4: no SYS_SECCOMP SIGSYS, 5: nr, 6: arch, 7"
    );
}

#[test]
fn argument_condition_denies_only_the_matching_value() {
    // personality(PER_LINUX32) is refused; personality(0xffffffff) (a query) is not.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
            "action":"SCMP_ACT_ERRNO","errnoRet":77,
            "args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        // SAFETY: personality takes an integer.
        let query = common::raw(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) });
        // SAFETY: as above; if allowed it would switch this child to PER_LINUX32, harmless.
        let set = common::raw(unsafe { libc::syscall(libc::SYS_personality, 8u64) });
        match (query, set) {
            (Ok(_), Err(77)) => 0,
            (Err(_), _) => 4,
            (Ok(_), _) => 5,
        }
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "4: query refused, 5: PER_LINUX32 not refused"
    );
}

/// A thread started before install sees the filter only with SECCOMP_FILTER_FLAG_TSYNC.
#[test]
fn tsync_filters_threads_started_before_install() {
    for (flags, expected) in [
        (r#"["SECCOMP_FILTER_FLAG_TSYNC"]"#, Err(42)),
        ("[]", Ok(())),
    ] {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","flags":{flags},"syscalls":[
                {{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}}]}}"#
        ));
        let outcome = run_in_child(|| {
            static GO: AtomicBool = AtomicBool::new(false);
            let thread = std::thread::spawn(|| {
                while !GO.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                sys_getcwd().map(|_| ())
            });
            allow_install_unprivileged();
            if f.install().is_err() {
                return 3;
            }
            GO.store(true, Ordering::SeqCst);
            match thread.join() {
                Ok(result) if result == expected => 0,
                _ => 4,
            }
        });
        assert_eq!(
            outcome,
            Outcome::Exited(0),
            "flags {flags}: 4 means the thread saw otherwise"
        );
    }
}

#[test]
fn log_and_spec_allow_flags_install() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    assert_eq!(f.flags(), 0b110);
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        match f.install() {
            Ok(None) if sys_getcwd() == Err(42) => 0,
            Ok(_) => 4,
            Err(_) => 3,
        }
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn install_needs_no_new_privs_or_cap_sys_admin() {
    if !common::is_root("install_needs_no_new_privs_or_cap_sys_admin") {
        return;
    }
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    // As nobody, without no_new_privs: refused, with a clear error.
    let outcome = run_in_child(|| {
        // SAFETY: setresgid/setresuid take integers; the child drops to nobody.
        unsafe {
            if libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return 2;
            }
        }
        match f.install() {
            Err(InstallError::NotPermitted { .. }) if sys_getcwd().is_ok() => 0,
            Err(_) => 4,
            Ok(_) => 5,
        }
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "2: setuid, 4: other error, 5: installed"
    );
    // As nobody with no_new_privs: installed.
    let outcome = run_in_child(|| {
        // SAFETY: as above, then prctl(PR_SET_NO_NEW_PRIVS).
        unsafe {
            if libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return 2;
            }
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
        match f.install() {
            Ok(None) if sys_getcwd() == Err(42) => 0,
            _ => 4,
        }
    });
    assert_eq!(outcome, Outcome::Exited(0));
    // As root without no_new_privs (CAP_SYS_ADMIN): installed.
    let outcome = run_in_child(|| match f.install() {
        Ok(None) if sys_getcwd() == Err(42) => 0,
        _ => 4,
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn podman_default_profile_runs_a_program() {
    let f = filter(include_str!("fixtures/podman-default-x86_64.json"));
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        // Denied with EPERM by the profile (errnoRet 1).
        // SAFETY: swapon with a NULL path never gets to run.
        let swapon =
            common::raw(unsafe { libc::syscall(libc::SYS_swapon, std::ptr::null::<u8>(), 0) });
        if swapon != Err(libc::EPERM) {
            return 4;
        }
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", "cd / && ls >/dev/null && exit 7"])
            .status();
        match status.map(|s| s.code()) {
            Ok(Some(7)) => 0,
            _ => 5,
        }
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "4: swapon not EPERM, 5: /bin/sh did not run"
    );
}

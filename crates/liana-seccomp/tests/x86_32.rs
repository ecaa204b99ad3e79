//! A real 32-bit x86 program under a multi-architecture filter: its syscalls arrive with
//! AUDIT_ARCH_I386 and i386 numbers, and must be filtered by those. The program is a few lines
//! of assembly built with `cc -m32 -nostdlib` (no 32-bit libc needed); the test is skipped when
//! that toolchain or the kernel's IA-32 emulation is missing.
#![cfg(target_arch = "x86_64")]

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{allow_install_unprivileged, filter, run_in_child, Outcome};

/// getcwd via `int 0x80` (i386 number 183); exits 0 on success, else with the errno.
const PROGRAM: &str = r#"
    .text
    .globl _start
_start:
    sub $256, %esp
    mov $183, %eax
    mov %esp, %ebx
    mov $256, %ecx
    int $0x80
    mov $0, %ebx
    cmp $0, %eax
    jge 1f
    mov %eax, %ebx
    neg %ebx
1:
    mov $1, %eax
    int $0x80
"#;

fn build(dir: &Path) -> Option<PathBuf> {
    let source = dir.join("getcwd32.S");
    let binary = dir.join("getcwd32");
    std::fs::write(&source, PROGRAM).ok()?;
    let built = Command::new("cc")
        .args(["-m32", "-nostdlib", "-static", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .ok()?;
    built.success().then_some(binary)
}

fn exec(binary: &Path) -> ! {
    let path = CString::new(binary.as_os_str().as_encoded_bytes()).unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: NUL-terminated path, argv and envp arrays; on failure we exit.
    unsafe {
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        libc::_exit(127);
    }
}

#[test]
fn i386_syscalls_are_filtered_by_their_own_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = build(dir.path()) else {
        eprintln!("SKIPPED: cannot build a 32-bit x86 program (cc -m32 -nostdlib failed)");
        return;
    };
    // Unfiltered, it runs and getcwd succeeds; otherwise this kernel has no IA-32 emulation.
    if run_in_child(|| exec(&binary)) != Outcome::Exited(0) {
        eprintln!("SKIPPED: this kernel cannot run 32-bit x86 programs");
        return;
    }

    // With x86 in the filter, i386 getcwd (183) gets the errno; x86-64 getcwd is 79.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        exec(&binary)
    });
    assert_eq!(
        outcome,
        Outcome::Exited(42),
        "the i386 getcwd must get errno 42"
    );

    // afs_syscall is 183 on x86-64 (137 on i386): a compiler that put x86-64 numbers in the
    // i386 section would refuse the i386 getcwd here.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["afs_syscall"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        exec(&binary)
    });
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "afs_syscall's x86-64 number reached the i386 section"
    );

    // Without x86 in the filter, the first i386 syscall is a bad architecture: killed.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    let outcome = run_in_child(|| {
        allow_install_unprivileged();
        if f.install().is_err() {
            return 3;
        }
        exec(&binary)
    });
    assert_eq!(outcome, Outcome::Signaled(libc::SIGSYS));
}

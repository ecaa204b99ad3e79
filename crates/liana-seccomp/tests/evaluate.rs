//! Compiled filters checked by running their BPF on chosen syscalls, without installing them:
//! every action, every operator, the three x86 ABIs, unknown names, podman's default profile.
//! Needs no privileges.
#![cfg(target_arch = "x86_64")]

use liana_seccomp::bpf::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use liana_seccomp::{compile, parse, CompiledFilter, SeccompData, Verdict};

// x86-64 numbers (the x32 ABI uses the same ones with X32_SYSCALL_BIT).
const X64_READ: i32 = 0;
const X64_SOCKET: i32 = 41;
const X64_GETUID: i32 = 102;
const X64_GETPPID: i32 = 110;
const X64_PERSONALITY: i32 = 135;
const X64_ADD_KEY: i32 = 248;
const X64_SETNS: i32 = 308;
const X64_SETHOSTNAME: i32 = 170;
const X64_KEXEC_LOAD: i32 = 246;
const X64_GETCWD: i32 = 79;
// i386 numbers.
const I386_READ: i32 = 3;
const I386_SETTIMEOFDAY: i32 = 79;
const I386_SOCKETCALL: i32 = 102;
const I386_PERSONALITY: i32 = 136;
const I386_GETCWD: i32 = 183;

fn filter(json: &str) -> CompiledFilter {
    compile(&parse(json).expect("profile parses")).expect("profile compiles")
}

fn x64(nr: i32) -> SeccompData {
    SeccompData::new(AUDIT_ARCH_X86_64, nr)
}

fn verdict(filter: &CompiledFilter, data: SeccompData) -> Verdict {
    filter.evaluate(&data).expect("program runs")
}

#[test]
fn every_action_gives_its_verdict() {
    let cases = [
        ("SCMP_ACT_KILL", "", Verdict::KillThread),
        ("SCMP_ACT_KILL_THREAD", "", Verdict::KillThread),
        ("SCMP_ACT_KILL_PROCESS", "", Verdict::KillProcess),
        ("SCMP_ACT_TRAP", "", Verdict::Trap(0)),
        ("SCMP_ACT_ERRNO", "", Verdict::Errno(libc::EPERM as u16)),
        ("SCMP_ACT_ERRNO", r#","errnoRet":42"#, Verdict::Errno(42)),
        ("SCMP_ACT_TRACE", "", Verdict::Trace(libc::EPERM as u16)),
        ("SCMP_ACT_TRACE", r#","errnoRet":7"#, Verdict::Trace(7)),
        ("SCMP_ACT_LOG", "", Verdict::Log),
        ("SCMP_ACT_NOTIFY", "", Verdict::Notify),
    ];
    for (action, extra, expected) in cases {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
                "syscalls":[{{"names":["getcwd"],"action":"{action}"{extra}}}]}}"#
        ));
        assert_eq!(verdict(&f, x64(X64_GETCWD)), expected, "{action}{extra}");
        assert_eq!(
            verdict(&f, x64(X64_READ)),
            Verdict::Allow,
            "{action}: other syscalls"
        );
    }
}

#[test]
fn every_default_action_applies_to_unmatched_syscalls() {
    let cases = [
        ("SCMP_ACT_KILL", "", Verdict::KillThread),
        ("SCMP_ACT_KILL_PROCESS", "", Verdict::KillProcess),
        ("SCMP_ACT_TRAP", "", Verdict::Trap(0)),
        ("SCMP_ACT_ERRNO", "", Verdict::Errno(libc::EPERM as u16)),
        (
            "SCMP_ACT_ERRNO",
            r#","defaultErrnoRet":38"#,
            Verdict::Errno(38),
        ),
        (
            "SCMP_ACT_TRACE",
            r#","defaultErrnoRet":3"#,
            Verdict::Trace(3),
        ),
        ("SCMP_ACT_LOG", "", Verdict::Log),
    ];
    for (action, extra, expected) in cases {
        let f = filter(&format!(
            r#"{{"defaultAction":"{action}"{extra},
                "syscalls":[{{"names":["read"],"action":"SCMP_ACT_ALLOW"}}]}}"#
        ));
        assert_eq!(verdict(&f, x64(X64_GETCWD)), expected, "{action}{extra}");
        assert_eq!(
            verdict(&f, x64(X64_READ)),
            Verdict::Allow,
            "{action}: the allowed one"
        );
    }
}

/// One rule `personality(arg0 OP value)` -> ERRNO(99), checked at values around the operand,
/// including ones differing only in the upper 32 bits.
#[test]
fn every_operator_compares_64_bit_arguments() {
    let value: u64 = 0x1_0000_0010;
    let probes = [
        0u64,
        0x10,
        value - 1,
        value,
        value + 1,
        0x2_0000_0010,
        u64::MAX,
    ];
    type Holds = fn(u64) -> bool;
    let cases: [(&str, Holds); 6] = [
        ("SCMP_CMP_NE", |a| a != 0x1_0000_0010),
        ("SCMP_CMP_LT", |a| a < 0x1_0000_0010),
        ("SCMP_CMP_LE", |a| a <= 0x1_0000_0010),
        ("SCMP_CMP_EQ", |a| a == 0x1_0000_0010),
        ("SCMP_CMP_GE", |a| a >= 0x1_0000_0010),
        ("SCMP_CMP_GT", |a| a > 0x1_0000_0010),
    ];
    for (op, holds) in cases {
        let f = filter(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["personality"],
                "action":"SCMP_ACT_ERRNO","errnoRet":99,
                "args":[{{"index":0,"value":{value},"op":"{op}"}}]}}]}}"#
        ));
        for arg in probes {
            let expected = if holds(arg) {
                Verdict::Errno(99)
            } else {
                Verdict::Allow
            };
            assert_eq!(
                verdict(&f, x64(X64_PERSONALITY).with_arg(0, arg)),
                expected,
                "{op} with arg {arg:#x}"
            );
        }
    }
}

#[test]
fn masked_eq_uses_value_as_mask_and_value_two_as_expected() {
    // clone-like: deny when any of the namespace bits 0x7e020000 is set... expressed the way
    // docker writes it: (arg & mask) == 0 allows; here deny when (arg & 0xff00) == 0x0400.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
            "action":"SCMP_ACT_ERRNO","errnoRet":5,
            "args":[{"index":0,"value":65280,"valueTwo":1024,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    for (arg, denied) in [
        (0x0400u64, true),
        (0x04ff, true),
        (0x1_0000_0400, true),
        (0x0500, false),
        (0, false),
    ] {
        let expected = if denied {
            Verdict::Errno(5)
        } else {
            Verdict::Allow
        };
        assert_eq!(
            verdict(&f, x64(X64_PERSONALITY).with_arg(0, arg)),
            expected,
            "arg {arg:#x}"
        );
    }
}

#[test]
fn conditions_on_distinct_arguments_are_anded() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],
            "action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[
            {"index":0,"value":16,"op":"SCMP_CMP_EQ"},
            {"index":2,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let socket = |domain, protocol| x64(X64_SOCKET).with_arg(0, domain).with_arg(2, protocol);
    assert_eq!(verdict(&f, socket(16, 9)), Verdict::Errno(22));
    assert_eq!(verdict(&f, socket(16, 0)), Verdict::Allow);
    assert_eq!(verdict(&f, socket(2, 9)), Verdict::Allow);
}

#[test]
fn conditions_on_the_same_argument_are_ored() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
            "action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[
            {"index":0,"value":8,"op":"SCMP_CMP_EQ"},
            {"index":0,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    for (arg, expected) in [
        (8, Verdict::Errno(1)),
        (9, Verdict::Errno(1)),
        (10, Verdict::Allow),
    ] {
        assert_eq!(
            verdict(&f, x64(X64_PERSONALITY).with_arg(0, arg)),
            expected,
            "arg {arg}"
        );
    }
}

#[test]
fn each_x86_abi_is_filtered_by_its_own_numbers() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
    );
    assert_eq!(
        verdict(&f, x64(X64_GETCWD)),
        Verdict::Errno(42),
        "x86-64 getcwd"
    );
    assert_eq!(
        verdict(&f, x64(X64_GETCWD | X32_SYSCALL_BIT)),
        Verdict::Errno(42),
        "x32 getcwd"
    );
    let i386 = |nr| SeccompData::new(AUDIT_ARCH_I386, nr);
    assert_eq!(
        verdict(&f, i386(I386_GETCWD)),
        Verdict::Errno(42),
        "i386 getcwd is 183"
    );
    assert_eq!(
        verdict(&f, i386(I386_SETTIMEOFDAY)),
        Verdict::Allow,
        "i386 79 is settimeofday"
    );
    assert_eq!(
        verdict(&f, x64(I386_GETCWD)),
        Verdict::Allow,
        "x86-64 183 is not getcwd"
    );
}

#[test]
fn abis_left_out_of_the_profile_are_killed() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(verdict(&f, x64(X64_READ)), Verdict::Allow);
    assert_eq!(
        verdict(&f, SeccompData::new(AUDIT_ARCH_I386, I386_READ)),
        Verdict::KillThread
    );
    assert_eq!(
        verdict(&f, x64(X64_READ | X32_SYSCALL_BIT)),
        Verdict::KillThread,
        "x32"
    );
}

#[test]
fn foreign_architectures_are_accepted_and_left_out() {
    let with_foreign = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64","SCMP_ARCH_LOONGARCH64",
                             "SCMP_ARCH_S390X","SCMP_ARCH_SH"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let native_only = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(with_foreign.program(), native_only.program());
    assert_eq!(
        verdict(&with_foreign, SeccompData::new(AUDIT_ARCH_AARCH64, 17)),
        Verdict::KillThread
    );
}

#[test]
fn syscalls_of_one_abi_only_land_in_its_section() {
    // socketcall exists on i386 only; arch_prctl on x86-64 only.
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["socketcall","arch_prctl"],"action":"SCMP_ACT_ERRNO","errnoRet":9}]}"#,
    );
    assert_eq!(
        verdict(&f, SeccompData::new(AUDIT_ARCH_I386, I386_SOCKETCALL)),
        Verdict::Errno(9)
    );
    assert_eq!(
        verdict(&f, x64(I386_SOCKETCALL)),
        Verdict::Allow,
        "x86-64 102 is getuid"
    );
    assert_eq!(
        verdict(&f, x64(158)),
        Verdict::Errno(9),
        "x86-64 arch_prctl"
    );
    assert_eq!(
        verdict(&f, SeccompData::new(AUDIT_ARCH_I386, 158)),
        Verdict::Allow,
        "i386 158"
    );
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["no_such_syscall_liana","getcwd","another_made_up_one"],
             "action":"SCMP_ACT_ERRNO","errnoRet":3}]}"#,
    );
    assert_eq!(verdict(&f, x64(X64_GETCWD)), Verdict::Errno(3));
    assert_eq!(verdict(&f, x64(X64_READ)), Verdict::Allow);
}

#[test]
fn listener_is_requested_for_notify_rules_or_a_listener_path() {
    let notify_and_path = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(notify_and_path.needs_listener() && notify_and_path.has_notify_rules());
    let path_only = filter(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock"}"#);
    assert!(path_only.needs_listener() && !path_only.has_notify_rules());
    let neither = filter(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    assert!(!neither.needs_listener());
    assert_eq!(neither.flags(), 0);
}

#[test]
fn flags_reach_the_compiled_filter() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    );
    assert_eq!(f.flags(), 0b111, "TSYNC | LOG | SPEC_ALLOW");
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","flags":[
            "SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    // TSYNC | NEW_LISTENER | TSYNC_ESRCH, plus WAIT_KILLABLE_RECV where the kernel has it.
    assert_eq!(f.flags() & 0b11111, 0b11001);
}

#[test]
fn podman_default_profile_behaves_like_podman() {
    let text = include_str!("fixtures/podman-default-x86_64.json");
    let f = compile(&parse(text).unwrap()).unwrap();
    assert!(f.program().len() < 4096);
    let enosys = Verdict::Errno(libc::ENOSYS as u16);
    assert_eq!(verdict(&f, x64(X64_READ)), Verdict::Allow);
    assert_eq!(verdict(&f, x64(X64_GETPPID)), Verdict::Allow);
    assert_eq!(verdict(&f, x64(X64_GETUID)), Verdict::Allow);
    assert_eq!(
        verdict(&f, x64(X64_KEXEC_LOAD)),
        Verdict::Errno(1),
        "explicitly denied"
    );
    assert_eq!(
        verdict(&f, x64(X64_ADD_KEY)),
        enosys,
        "not listed: default ENOSYS"
    );
    // setns is both in the big ALLOW list and in the ERRNO list for containers without
    // CAP_SYS_ADMIN; libseccomp keeps the first rule, as it does for runc and crun.
    assert_eq!(verdict(&f, x64(X64_SETNS)), Verdict::Allow);
    assert_eq!(verdict(&f, x64(X64_SETHOSTNAME)), Verdict::Errno(1));
    assert_eq!(
        verdict(&f, x64(X64_PERSONALITY).with_arg(0, 0)),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&f, x64(X64_PERSONALITY).with_arg(0, 0xffff_ffff)),
        Verdict::Allow
    );
    assert_eq!(verdict(&f, x64(X64_PERSONALITY).with_arg(0, 1)), enosys);
    let socket = |domain, protocol| x64(X64_SOCKET).with_arg(0, domain).with_arg(2, protocol);
    assert_eq!(
        verdict(&f, socket(16, 9)),
        Verdict::Errno(22),
        "NETLINK_AUDIT socket"
    );
    assert_eq!(verdict(&f, socket(2, 6)), Verdict::Allow, "TCP socket");
    let i386 = |nr| SeccompData::new(AUDIT_ARCH_I386, nr);
    assert_eq!(verdict(&f, i386(I386_READ)), Verdict::Allow, "i386 read");
    assert_eq!(
        verdict(&f, i386(I386_PERSONALITY).with_arg(0, 8)),
        Verdict::Allow
    );
    assert_eq!(verdict(&f, i386(I386_PERSONALITY).with_arg(0, 1)), enosys);
    assert_eq!(
        verdict(&f, x64(X64_READ | X32_SYSCALL_BIT)),
        Verdict::Allow,
        "x32 read"
    );
}

#[test]
fn compiled_filters_round_trip_through_serde() {
    let text = include_str!("fixtures/podman-default-x86_64.json");
    let f = compile(&parse(text).unwrap()).unwrap();
    let json = serde_json::to_string(&f).unwrap();
    let back: CompiledFilter = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
    assert_eq!(f.program_bytes().len(), f.program().len() * 8);
}

#[test]
fn duplicate_unconditional_rules_keep_the_first() {
    // libseccomp's behaviour, and so runc's and crun's: the later rule is ignored.
    let allow_first = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":5}]}"#,
    );
    assert_eq!(verdict(&allow_first, x64(X64_GETCWD)), Verdict::Allow);
    let errno_first = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":5},
            {"names":["getcwd"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(verdict(&errno_first, x64(X64_GETCWD)), Verdict::Errno(5));
}

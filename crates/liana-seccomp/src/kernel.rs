//! The seccomp(2) interface: operation and flag numbers, and probes of what this kernel supports.
//!
//! Probing a flag costs one syscall that installs nothing: `seccomp(SECCOMP_SET_MODE_FILTER, flag,
//! NULL)` fails with `EFAULT` when the kernel knows the flag (it got as far as reading the
//! program) and with `EINVAL` when it does not. This is what libseccomp does too. The flag checks
//! come before the privilege check in the kernel, so probing works without privileges.

use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccompFilterFlag;

/// `SECCOMP_SET_MODE_FILTER`.
pub const SET_MODE_FILTER: libc::c_uint = 1;
/// `SECCOMP_GET_ACTION_AVAIL`.
pub const GET_ACTION_AVAIL: libc::c_uint = 2;

/// `SECCOMP_FILTER_FLAG_TSYNC` (Linux 3.17).
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG` (Linux 4.14).
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (Linux 4.17).
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` (Linux 5.0).
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH` (Linux 5.7): lets TSYNC be combined with NEW_LISTENER.
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19); only valid with NEW_LISTENER.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Every filter flag the spec defines, in the spec's order.
pub const SPEC_FLAGS: [LinuxSeccompFilterFlag; 4] = [
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

/// The seccomp(2) bit of a spec flag.
pub fn flag_bit(flag: LinuxSeccompFilterFlag) -> u32 {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
    }
}

/// The flags this kernel accepts, as a mask of `FLAG_*` bits.
///
/// Probed once per process. Each flag is probed together with the flags it needs
/// (WAIT_KILLABLE_RECV with NEW_LISTENER, TSYNC_ESRCH with TSYNC and NEW_LISTENER).
pub fn supported_flags() -> u32 {
    static SUPPORTED: OnceLock<u32> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let probes = [
            (FLAG_TSYNC, FLAG_TSYNC),
            (FLAG_LOG, FLAG_LOG),
            (FLAG_SPEC_ALLOW, FLAG_SPEC_ALLOW),
            (FLAG_NEW_LISTENER, FLAG_NEW_LISTENER),
            (
                FLAG_TSYNC_ESRCH,
                FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH,
            ),
            (
                FLAG_WAIT_KILLABLE_RECV,
                FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV,
            ),
        ];
        let mut mask = 0;
        for (bit, probe) in probes {
            if probe_flags(probe) {
                mask |= bit;
            }
        }
        tracing::debug!(
            mask = format_args!("{mask:#x}"),
            "seccomp filter flags supported"
        );
        mask
    })
}

fn probe_flags(flags: u32) -> bool {
    // SAFETY: a NULL program pointer makes the kernel fail with EFAULT (flags known) or EINVAL
    // (flags unknown) before it installs anything; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Whether the kernel implements a `SECCOMP_RET_*` action (`SECCOMP_GET_ACTION_AVAIL`).
pub fn action_available(ret_action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from the pointer, which points to a live local.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &ret_action,
        )
    };
    ret == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_supports_the_basic_flags() {
        // Every kernel this project targets (>= 5.10) knows these.
        let mask = supported_flags();
        for bit in [
            FLAG_TSYNC,
            FLAG_LOG,
            FLAG_SPEC_ALLOW,
            FLAG_NEW_LISTENER,
            FLAG_TSYNC_ESRCH,
        ] {
            assert_ne!(
                mask & bit,
                0,
                "flag {bit:#x} should be supported, mask {mask:#x}"
            );
        }
    }

    #[test]
    fn unknown_flags_probe_as_unsupported() {
        assert!(!probe_flags(1 << 30));
    }

    #[test]
    fn actions_are_probed() {
        assert!(action_available(0x7fff_0000), "ALLOW");
        assert!(action_available(0x7ffc_0000), "LOG");
        assert!(!action_available(0x0001_0000), "not an action");
    }
}

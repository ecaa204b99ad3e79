//! Process capabilities (the five sets of `process.capabilities`).
//!
//! Names map to kernel numbers through one table; unknown names are dropped when the
//! config is parsed, and capabilities this kernel does not know (above
//! `/proc/sys/kernel/cap_last_cap`) are skipped when applied.

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Kernel capability numbers, indexed by number.
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Kernel number of a capability name (`CAP_SYS_ADMIN` or `SYS_ADMIN`, any case).
pub fn by_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// The `CAP_` name of a number.
pub fn name_of(n: u32) -> Option<String> {
    NAMES.get(n as usize).map(|s| format!("CAP_{s}"))
}

/// Every capability name this runtime knows, with the `CAP_` prefix.
pub fn all_names() -> Vec<String> {
    NAMES.iter().map(|s| format!("CAP_{s}")).collect()
}

/// Capability sets as bit masks, ready to apply without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Ambient set.
    pub ambient: u64,
}

fn mask(set: &Option<Capabilities>) -> u64 {
    set.as_ref().map_or(0, |caps| {
        caps.iter()
            .filter_map(|c| by_name(&c.to_string()))
            .fold(0, |m, n| m | (1u64 << n))
    })
}

impl CapSets {
    /// Converts the spec's sets (absent sets are empty, as runc).
    pub fn from_spec(caps: &LinuxCapabilities) -> Self {
        Self {
            bounding: mask(caps.bounding()),
            effective: mask(caps.effective()),
            inheritable: mask(caps.inheritable()),
            permitted: mask(caps.permitted()),
            ambient: mask(caps.ambient()),
        }
    }

    /// Every capability the kernel knows.
    pub fn full(last_cap: u32) -> Self {
        let all = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        Self {
            bounding: all,
            effective: all,
            inheritable: 0,
            permitted: all,
            ambient: 0,
        }
    }

    /// Adds one capability (by number) to every set, as `exec --cap` does.
    pub fn add_everywhere(&mut self, n: u32) {
        let b = 1u64 << n;
        self.bounding |= b;
        self.effective |= b;
        self.inheritable |= b;
        self.permitted |= b;
        self.ambient |= b;
    }
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability outside `sets.bounding` from the bounding set. Needs
/// CAP_SETPCAP, so it runs before the user switch.
pub fn drop_bounding(sets: &CapSets, last_cap: u32) -> std::io::Result<()> {
    for n in 0..=last_cap.min(63) {
        if sets.bounding & (1 << n) == 0 {
            // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                // EINVAL: the kernel does not know this capability.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient set.
pub fn apply(sets: &CapSets, last_cap: u32) -> std::io::Result<()> {
    let known = if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    };
    let (e, p, i) = (
        sets.effective & known,
        sets.permitted & known,
        sets.inheritable & known,
    );
    let mut hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        CapData {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs, both valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let ambient = sets.ambient & known;
    if ambient != 0 {
        for n in 0..=last_cap.min(63) {
            if ambient & (1 << n) != 0 {
                // SAFETY: PR_CAP_AMBIENT_RAISE takes a capability number and no pointers.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        n as libc::c_ulong,
                        0,
                        0,
                    )
                };
                if r != 0 {
                    // Raising fails when the capability is not permitted and inheritable;
                    // runc ignores that too.
                    tracing::debug!("cannot raise ambient capability {n}");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(by_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(by_name("sys_admin"), Some(21));
        assert_eq!(by_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(by_name("CAP_NOPE"), None);
        assert_eq!(name_of(21).as_deref(), Some("CAP_SYS_ADMIN"));
        assert_eq!(all_names().len(), 41);
    }

    #[test]
    fn spec_sets_become_masks() {
        let caps: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_SYS_ADMIN", "CAP_KILL"], "effective": ["CAP_KILL"]
        }))
        .unwrap();
        let s = CapSets::from_spec(&caps);
        assert_eq!(s.bounding, (1 << 21) | (1 << 5));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.permitted, 0);
    }
}

//! The `linux.seccomp` object of the runtime's `features` output (runtime-spec features-linux.md).

use oci_spec::runtime::{LinuxSeccompAction, Seccomp};

use crate::arch;
use crate::kernel;

/// Every action the compiler accepts.
pub const ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

/// Every operator the compiler accepts, by its spec name.
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The seccomp features: `enabled`, the actions, operators and architectures accepted, the
/// flags known, and the flags this kernel supports (a flag the kernel lacks is skipped with a
/// warning at compile time).
///
/// Every spec architecture is listed: the ones this kernel cannot run are accepted and left out
/// of the filter. `knownFlags` are the spec's four; `supportedFlags` the subset the kernel takes.
pub fn features() -> Seccomp {
    let supported = kernel::supported_flags();
    let flag_name = |flag| serde_json::to_value(flag).ok()?.as_str().map(str::to_owned);
    let known: Vec<String> = kernel::SPEC_FLAGS
        .iter()
        .filter_map(|&f| flag_name(f))
        .collect();
    let supported_flags: Vec<String> = kernel::SPEC_FLAGS
        .iter()
        .filter(|&&flag| supported & kernel::flag_bit(flag) != 0)
        .filter_map(|&f| flag_name(f))
        .collect();
    let mut features = Seccomp::default();
    features.set_enabled(Some(true));
    features.set_actions(Some(ACTIONS.to_vec()));
    features.set_operators(Some(OPERATORS.iter().map(|&op| op.to_owned()).collect()));
    features.set_archs(Some(arch::ALL.to_vec()));
    features.set_known_flags(Some(known));
    features.set_supported_flags(Some(supported_flags));
    features
}

/// The libseccomp library version in use, for the runtime's features annotations
/// (runc reports it as `io.github.seccomp.libseccomp.version`).
pub fn libseccomp_version() -> Option<(u32, u32, u32)> {
    libseccomp::ScmpVersion::current()
        .ok()
        .map(|v| (v.major, v.minor, v.micro))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_serialise_with_spec_names() {
        let json = serde_json::to_value(features()).unwrap();
        assert_eq!(json["enabled"], true);
        let actions = json["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 9);
        assert!(actions.contains(&"SCMP_ACT_NOTIFY".into()));
        assert!(actions.contains(&"SCMP_ACT_KILL_PROCESS".into()));
        assert_eq!(json["operators"].as_array().unwrap().len(), 7);
        let archs = json["archs"].as_array().unwrap();
        for arch in [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
        ] {
            assert!(archs.contains(&arch.into()), "{arch} in {archs:?}");
        }
        assert_eq!(
            json["knownFlags"],
            serde_json::json!([
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
            ])
        );
        let supported = json["supportedFlags"].as_array().unwrap();
        assert!(
            supported.contains(&"SECCOMP_FILTER_FLAG_LOG".into()),
            "{supported:?}"
        );
    }

    #[test]
    fn every_operator_name_parses() {
        for op in OPERATORS {
            let parsed: Result<oci_spec::runtime::LinuxSeccompOperator, _> =
                serde_json::from_value(op.into());
            assert!(parsed.is_ok(), "{op}");
        }
    }

    #[test]
    fn libseccomp_is_2_5_or_newer() {
        let (major, minor, _) = libseccomp_version().unwrap();
        assert!((major, minor) >= (2, 5), "{major}.{minor}");
    }
}

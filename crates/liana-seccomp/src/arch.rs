//! Architectures: the `SCMP_ARCH_*` names of the spec, libseccomp's tokens, and which of them
//! this kernel can ever report.
//!
//! A filter only ever sees the `AUDIT_ARCH_*` values the running kernel produces: on x86-64 that is
//! x86-64 itself, i386 (`int 0x80`, 32-bit binaries) and x32 (x86-64 numbers with bit 30 set). A
//! profile usually lists more (docker's and podman's list every architecture of the family), so an
//! architecture the kernel cannot run is accepted and left out of the filter: its section would be
//! dead code. This also means profiles naming architectures newer than the installed libseccomp
//! (loongarch64, m68k, sh) still compile on hosts where they cannot occur.

use libseccomp::ScmpArch;
use oci_spec::runtime::Arch;

/// Every architecture name the spec (and so `config.json`) can carry.
pub const ALL: [Arch; 24] = [
    Arch::ScmpArchNative,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
];

/// The libseccomp token for a spec architecture.
pub fn to_scmp(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The architecture of this build, which is the kernel's native one.
pub const fn native() -> Arch {
    if cfg!(target_arch = "x86_64") {
        Arch::ScmpArchX86_64
    } else if cfg!(target_arch = "x86") {
        Arch::ScmpArchX86
    } else if cfg!(target_arch = "aarch64") {
        Arch::ScmpArchAarch64
    } else if cfg!(target_arch = "arm") {
        Arch::ScmpArchArm
    } else if cfg!(target_arch = "riscv64") {
        Arch::ScmpArchRiscv64
    } else if cfg!(target_arch = "s390x") {
        Arch::ScmpArchS390x
    } else if cfg!(target_arch = "loongarch64") {
        Arch::ScmpArchLoongarch64
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        Arch::ScmpArchPpc64le
    } else if cfg!(target_arch = "powerpc64") {
        Arch::ScmpArchPpc64
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        Arch::ScmpArchMipsel64
    } else if cfg!(target_arch = "mips64") {
        Arch::ScmpArchMips64
    } else {
        Arch::ScmpArchNative
    }
}

/// The architectures whose syscalls the running kernel can deliver to a filter: the native one
/// first, then its compat ABIs.
pub fn runnable() -> &'static [Arch] {
    match native() {
        Arch::ScmpArchX86_64 => &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        Arch::ScmpArchAarch64 => &[Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        Arch::ScmpArchPpc64 => &[Arch::ScmpArchPpc64, Arch::ScmpArchPpc],
        Arch::ScmpArchS390x => &[Arch::ScmpArchS390x, Arch::ScmpArchS390],
        Arch::ScmpArchMips64 => &[
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips64n32,
            Arch::ScmpArchMips,
        ],
        Arch::ScmpArchMipsel64 => &[
            Arch::ScmpArchMipsel64,
            Arch::ScmpArchMipsel64n32,
            Arch::ScmpArchMipsel,
        ],
        Arch::ScmpArchX86 => &[Arch::ScmpArchX86],
        Arch::ScmpArchArm => &[Arch::ScmpArchArm],
        Arch::ScmpArchRiscv64 => &[Arch::ScmpArchRiscv64],
        Arch::ScmpArchPpc64le => &[Arch::ScmpArchPpc64le],
        Arch::ScmpArchLoongarch64 => &[Arch::ScmpArchLoongarch64],
        _ => &[],
    }
}

/// Splits a profile's `architectures` into the extra ones to add to the filter (runnable here,
/// not native, deduplicated, in profile order) and the ones left out because this kernel cannot
/// produce them.
pub fn partition(requested: &[Arch]) -> (Vec<Arch>, Vec<Arch>) {
    let runnable = runnable();
    let native = native();
    let mut extra = Vec::new();
    let mut dropped = Vec::new();
    for &arch in requested {
        if arch == Arch::ScmpArchNative || arch == native {
            continue;
        }
        let bucket = if runnable.contains(&arch) {
            &mut extra
        } else {
            &mut dropped
        };
        if !bucket.contains(&arch) {
            bucket.push(arch);
        }
    }
    (extra, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_arch_has_a_libseccomp_token_and_name() {
        for arch in ALL {
            let name = serde_json::to_string(&arch).unwrap();
            assert!(name.starts_with("\"SCMP_ARCH_"), "{name}");
            let token = to_scmp(arch);
            let parsed: ScmpArch = name.trim_matches('"').parse().unwrap();
            assert_eq!(parsed, token, "{name}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_keeps_x86_and_x32_and_drops_foreign() {
        let requested = [
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchX86,
            Arch::ScmpArchLoongarch64,
            Arch::ScmpArchNative,
        ];
        let (extra, dropped) = partition(&requested);
        assert_eq!(extra, [Arch::ScmpArchX86, Arch::ScmpArchX32]);
        assert_eq!(dropped, [Arch::ScmpArchAarch64, Arch::ScmpArchLoongarch64]);
        assert_eq!(native(), Arch::ScmpArchX86_64);
        assert_eq!(ScmpArch::native(), ScmpArch::X8664);
    }
}

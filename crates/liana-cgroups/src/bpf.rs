//! cgroup v2 device control: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! generated from a [`DeviceRuleSet`] and attached to the container's cgroup.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (type in the low 16 bits of `access_type`, access bits in the
//! high 16) and returns 1 to allow, 0 to deny. Each exception is one block of
//! compare-and-jump instructions; the last block returns the default.
//!
//! Loading needs the `bpf(2)` syscall, so it sits behind [`DeviceFilterLoader`]:
//! [`KernelLoader`] is the real one; tests may record programs instead.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::devices::{access, DeviceKind, DeviceRuleSet};

/// Errors of loading and attaching a device filter.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The cgroup directory could not be opened.
    #[error("cannot open the cgroup directory")]
    Open(#[source] io::Error),
    /// The verifier or the kernel refused the program.
    #[error("BPF_PROG_LOAD failed; verifier log: {log:?}")]
    Load {
        /// The verifier's log (may be empty).
        log: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Listing the programs already attached failed.
    #[error("BPF_PROG_QUERY failed")]
    Query(#[source] io::Error),
    /// Attaching the program failed.
    #[error("BPF_PROG_ATTACH failed")]
    Attach(#[source] io::Error),
    /// Detaching a previously attached program failed.
    #[error("cannot detach the previous device filter (program id {id})")]
    Detach {
        /// The old program's id.
        id: u32,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl BpfError {
    /// The underlying OS error.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            BpfError::Open(e) | BpfError::Query(e) | BpfError::Attach(e) => Some(e),
            BpfError::Load { source, .. } | BpfError::Detach { source, .. } => Some(source),
        }
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (low nibble) and source register (high nibble).
    pub regs: u8,
    /// Offset (memory access or jump).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

// Opcode parts from include/uapi/linux/bpf_common.h and bpf.h.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// A generated device filter program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProgram {
    insns: Vec<Insn>,
}

impl DeviceProgram {
    /// Generates the program enforcing `set`.
    pub fn from_rules(set: &DeviceRuleSet) -> Self {
        // r2 = type, r3 = access, r4 = major, r5 = minor.
        let mut insns = vec![
            insn(LDX_MEM_W, 2, 1, 0, 0),
            insn(ALU32_AND_K, 2, 0, 0, 0xffff),
            insn(LDX_MEM_W, 3, 1, 0, 0),
            insn(ALU32_RSH_K, 3, 0, 0, 16),
            insn(LDX_MEM_W, 4, 1, 4, 0),
            insn(LDX_MEM_W, 5, 1, 8, 0),
        ];
        let verdict = i32::from(!set.default_allow);
        for (m, &bits) in &set.exceptions {
            let mut block: Vec<Insn> = Vec::new();
            // Every jump in a block goes to the first instruction after it; the
            // offsets are patched once the block's length is known.
            let kind = match m.kind {
                DeviceKind::Block => BPF_DEVCG_DEV_BLOCK,
                DeviceKind::Char => BPF_DEVCG_DEV_CHAR,
            };
            block.push(insn(JMP_JNE_K, 2, 0, 0, kind));
            if bits != access::ALL {
                // r1 = access & bits
                block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
                block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(bits)));
                if set.default_allow {
                    // A deny exception matches when any requested bit is denied.
                    block.push(insn(JMP_JEQ_K, 1, 0, 0, 0));
                } else {
                    // An allow exception matches when every requested bit is allowed.
                    block.push(insn(JMP_JNE_X, 1, 3, 0, 0));
                }
            }
            if let Some(major) = m.major {
                block.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
            }
            if let Some(minor) = m.minor {
                block.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
            }
            block.push(insn(ALU32_MOV_K, 0, 0, 0, verdict));
            block.push(insn(JMP_EXIT, 0, 0, 0, 0));
            let len = block.len();
            for (i, ins) in block.iter_mut().enumerate() {
                if matches!(ins.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
                    ins.off = (len - i - 1) as i16;
                }
            }
            insns.extend(block);
        }
        insns.push(insn(ALU32_MOV_K, 0, 0, 0, i32::from(set.default_allow)));
        insns.push(insn(JMP_EXIT, 0, 0, 0, 0));
        DeviceProgram { insns }
    }

    /// The instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// Runs the program on a device access as the kernel would, for tests and
    /// for checking a program without loading it. `access_bits` uses
    /// [`access`] values.
    pub fn evaluate(&self, kind: DeviceKind, major: u32, minor: u32, access_bits: u8) -> bool {
        let typ = match kind {
            DeviceKind::Block => BPF_DEVCG_DEV_BLOCK as u32,
            DeviceKind::Char => BPF_DEVCG_DEV_CHAR as u32,
        };
        let ctx = [(u32::from(access_bits) << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        while let Some(i) = self.insns.get(pc) {
            let (dst, src) = (usize::from(i.regs & 0x0f), usize::from(i.regs >> 4));
            let imm = i64::from(i.imm) as u64;
            let mut next = pc + 1;
            let jump = |cond: bool| {
                if cond {
                    pc + 1 + i.off as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_K => r[dst] = u64::from(i.imm as u32),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                JMP_JNE_K => next = jump(r[dst] != imm),
                JMP_JNE_X => next = jump(r[dst] != r[src]),
                JMP_JEQ_K => next = jump(r[dst] == imm),
                JMP_EXIT => return r[0] != 0,
                other => panic!("unknown opcode {other:#x}"),
            }
            pc = next;
        }
        false
    }
}

/// Installs device filter programs on cgroup v2 directories.
pub trait DeviceFilterLoader: fmt::Debug + Send + Sync {
    /// Attaches `program` to the cgroup at `cgroup_dir`, replacing any device
    /// filter this loader attached before, so that exactly one is in force.
    fn install(&self, cgroup_dir: &Path, program: &DeviceProgram) -> Result<(), BpfError>;
}

/// The real loader: `bpf(2)` with `BPF_PROG_LOAD`, `BPF_PROG_QUERY`,
/// `BPF_PROG_ATTACH` (`BPF_F_ALLOW_MULTI`) and `BPF_PROG_DETACH` of the old
/// programs once the new one is in place.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelLoader;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Calls `bpf(cmd, attr, size_of::<T>())`.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised, exclusively borrowed #[repr(C)]
    // struct matching the layout the kernel expects for `cmd`; pointers inside
    // it (instructions, license, buffers) are owned by the caller and outlive
    // the call. The kernel reads and writes at most `size_of::<T>()` bytes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(raw: libc::c_long) -> OwnedFd {
    // SAFETY: `raw` was just returned by a successful bpf(2) call that creates
    // a new file descriptor, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw as RawFd) }
}

impl KernelLoader {
    fn load(program: &DeviceProgram) -> Result<OwnedFd, BpfError> {
        let license = CString::new("Apache").expect("static string has no NUL");
        let mut log = vec![0u8; 64 * 1024];
        let insns = program.instructions();
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(owned_fd(fd)),
            Err(_) => {
                // Load again with the verifier log on, to report why.
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                match bpf(BPF_PROG_LOAD, &mut attr) {
                    Ok(fd) => Ok(owned_fd(fd)),
                    Err(source) => {
                        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                        Err(BpfError::Load {
                            log: String::from_utf8_lossy(&log[..end]).into_owned(),
                            source,
                        })
                    }
                }
            }
        }
    }

    fn attached_ids(cgroup: &File) -> Result<Vec<u32>, BpfError> {
        let mut ids = vec![0u32; 64];
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        bpf(BPF_PROG_QUERY, &mut attr).map_err(BpfError::Query)?;
        ids.truncate(attr.prog_cnt as usize);
        Ok(ids)
    }

    fn prog_id(fd: &OwnedFd) -> io::Result<u32> {
        // struct bpf_prog_info starts with `u32 type; u32 id;`.
        let mut info = [0u32; 2];
        let mut attr = InfoByFdAttr {
            bpf_fd: fd.as_raw_fd() as u32,
            info_len: std::mem::size_of_val(&info) as u32,
            info: info.as_mut_ptr() as u64,
        };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
        Ok(info[1])
    }
}

impl DeviceFilterLoader for KernelLoader {
    fn install(&self, cgroup_dir: &Path, program: &DeviceProgram) -> Result<(), BpfError> {
        let cgroup = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(cgroup_dir)
            .map_err(BpfError::Open)?;
        let prog = Self::load(program)?;
        let old = Self::attached_ids(&cgroup).unwrap_or_default();
        let mut attr = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            ..Default::default()
        };
        if let Err(e) = bpf(BPF_PROG_ATTACH, &mut attr) {
            // A program attached without BPF_F_ALLOW_MULTI (by another tool)
            // can only be replaced by another such attachment.
            tracing::debug!(error = %e, "multi attach refused, replacing the device filter");
            attr.attach_flags = 0;
            bpf(BPF_PROG_ATTACH, &mut attr).map_err(BpfError::Attach)?;
            return Ok(());
        }
        let new_id = Self::prog_id(&prog).ok();
        for id in old.into_iter().filter(|id| Some(*id) != new_id) {
            let mut by_id = GetFdByIdAttr {
                id,
                ..Default::default()
            };
            let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) {
                Ok(fd) => owned_fd(fd),
                // Already gone.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(source) => return Err(BpfError::Detach { id, source }),
            };
            let mut detach = AttachAttr {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_bpf_fd: old_fd.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                ..Default::default()
            };
            match bpf(BPF_PROG_DETACH, &mut detach) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => return Err(BpfError::Detach { id, source }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{parse_rules, DeviceMatch};
    use std::collections::BTreeMap;

    fn set(
        default_allow: bool,
        ex: &[(DeviceKind, Option<u32>, Option<u32>, u8)],
    ) -> DeviceRuleSet {
        let exceptions: BTreeMap<_, _> = ex
            .iter()
            .map(|&(kind, major, minor, bits)| (DeviceMatch { kind, major, minor }, bits))
            .collect();
        DeviceRuleSet {
            default_allow,
            exceptions,
        }
    }

    #[test]
    fn whitelist_program() {
        let p = DeviceProgram::from_rules(&set(
            false,
            &[
                (DeviceKind::Char, Some(1), Some(3), access::ALL),
                (
                    DeviceKind::Char,
                    Some(136),
                    None,
                    access::READ | access::WRITE,
                ),
                (DeviceKind::Block, None, None, access::MKNOD),
            ],
        ));
        use DeviceKind::*;
        assert!(p.evaluate(Char, 1, 3, access::READ | access::WRITE));
        assert!(!p.evaluate(Char, 1, 5, access::READ));
        assert!(p.evaluate(Char, 136, 7, access::WRITE));
        assert!(!p.evaluate(Char, 136, 7, access::MKNOD));
        assert!(!p.evaluate(Char, 136, 7, access::READ | access::MKNOD));
        assert!(p.evaluate(Block, 8, 0, access::MKNOD));
        assert!(!p.evaluate(Block, 8, 0, access::READ));
        // Header + 3 blocks + default.
        assert_eq!(p.instructions().len(), 6 + 6 + 7 + 5 + 2);
        assert_eq!(p.instructions()[0].code, LDX_MEM_W);
    }

    #[test]
    fn blacklist_program_denies_on_any_bit() {
        let p = DeviceProgram::from_rules(&set(
            true,
            &[(DeviceKind::Char, Some(1), Some(5), access::WRITE)],
        ));
        assert!(p.evaluate(DeviceKind::Char, 1, 5, access::READ));
        assert!(!p.evaluate(DeviceKind::Char, 1, 5, access::WRITE));
        assert!(!p.evaluate(DeviceKind::Char, 1, 5, access::READ | access::WRITE));
        assert!(p.evaluate(DeviceKind::Block, 1, 5, access::WRITE));
    }

    #[test]
    fn allow_all_and_deny_all() {
        let allow = DeviceProgram::from_rules(&DeviceRuleSet::default());
        assert!(allow.evaluate(DeviceKind::Block, 8, 0, access::ALL));
        let rules = parse_rules(&[oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap()])
        .unwrap();
        let deny = DeviceProgram::from_rules(&DeviceRuleSet::from_rules(&rules).unwrap());
        assert!(!deny.evaluate(DeviceKind::Char, 1, 3, access::READ));
        assert_eq!(deny.instructions().len(), 8);
    }
}

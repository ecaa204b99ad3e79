//! Classic BPF as the kernel's seccomp filter sees it: the instruction type, the `seccomp_data`
//! input, the return-value encoding, and a small interpreter.
//!
//! The interpreter runs a compiled program against a chosen `seccomp_data` without installing
//! anything, the way the kernel's `seccomp_run_filters` would. It lets tests (and a debug command)
//! ask "what would this filter do to syscall N on architecture A with these arguments" without
//! root and without a foreign-architecture binary.

use serde::{Deserialize, Serialize};

/// One classic BPF instruction, laid out exactly as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SockFilter {
    /// Opcode: class, size, mode or operation, and source bits.
    pub code: u16,
    /// Jump offset when the condition is true.
    pub jt: u8,
    /// Jump offset when the condition is false.
    pub jf: u8,
    /// Generic multi-use field: constant, offset or return value.
    pub k: u32,
}

// The install path hands a pointer to `[SockFilter]` to the kernel as `struct sock_filter *`.
const _: () =
    assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());
const _: () =
    assert!(std::mem::align_of::<SockFilter>() == std::mem::align_of::<libc::sock_filter>());

/// Size in bytes of one instruction in the exported (kernel) format.
pub const INSTRUCTION_SIZE: usize = std::mem::size_of::<SockFilter>();

/// The kernel refuses filters longer than this (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

impl SockFilter {
    /// Decodes one instruction from its 8-byte native-endian kernel representation.
    pub fn from_bytes(bytes: [u8; INSTRUCTION_SIZE]) -> Self {
        Self {
            code: u16::from_ne_bytes([bytes[0], bytes[1]]),
            jt: bytes[2],
            jf: bytes[3],
            k: u32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    /// Encodes this instruction in the kernel's 8-byte native-endian representation.
    pub fn to_bytes(self) -> [u8; INSTRUCTION_SIZE] {
        let mut out = [0u8; INSTRUCTION_SIZE];
        out[0..2].copy_from_slice(&self.code.to_ne_bytes());
        out[2] = self.jt;
        out[3] = self.jf;
        out[4..8].copy_from_slice(&self.k.to_ne_bytes());
        out
    }
}

/// Serde representation of a program as one hex string of its kernel bytes: compact and quick
/// to parse (podman's default profile is 1,400 instructions). Use with `#[serde(with = ...)]`.
pub mod hex_program {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use super::{SockFilter, INSTRUCTION_SIZE};

    /// Writes `program` as lowercase hex.
    pub fn serialize<S: Serializer>(
        program: &[SockFilter],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(program.len() * INSTRUCTION_SIZE * 2);
        for byte in program.iter().flat_map(|insn| insn.to_bytes()) {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        serializer.serialize_str(&text)
    }

    /// Reads a program written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<SockFilter>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let digits = text.as_bytes();
        if digits.len() % (INSTRUCTION_SIZE * 2) != 0 {
            return Err(D::Error::custom(
                "bpf program hex is not a whole number of instructions",
            ));
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(D::Error::custom("bpf program hex has a non-hex digit")),
        };
        digits
            .chunks_exact(INSTRUCTION_SIZE * 2)
            .map(|chunk| {
                let mut bytes = [0u8; INSTRUCTION_SIZE];
                for (byte, pair) in bytes.iter_mut().zip(chunk.chunks_exact(2)) {
                    *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
                }
                Ok(SockFilter::from_bytes(bytes))
            })
            .collect()
    }
}

/// `AUDIT_ARCH_X86_64`: what the kernel reports for native 64-bit and x32 syscalls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: what the kernel reports for `int 0x80` and compat 32-bit syscalls.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `__X32_SYSCALL_BIT`: x32 syscalls are x86-64 syscalls with this bit set in `nr`.
pub const X32_SYSCALL_BIT: i32 = 0x4000_0000;

/// The input of a seccomp filter: the kernel's `struct seccomp_data`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// The syscall number, as seen by the architecture in `arch`.
    pub nr: i32,
    /// An `AUDIT_ARCH_*` value.
    pub arch: u32,
    /// The instruction pointer at the time of the syscall.
    pub instruction_pointer: u64,
    /// Up to six syscall arguments.
    pub args: [u64; 6],
}

const _: () = assert!(std::mem::size_of::<SeccompData>() == 64);

impl SeccompData {
    /// A syscall `nr` on architecture `arch` with all arguments zero.
    pub fn new(arch: u32, nr: i32) -> Self {
        Self {
            nr,
            arch,
            ..Self::default()
        }
    }

    /// The same syscall with argument `index` set to `value`.
    ///
    /// # Panics
    /// When `index` is 6 or more: syscalls have at most six arguments.
    pub fn with_arg(mut self, index: usize, value: u64) -> Self {
        self.args[index] = value;
        self
    }

    /// Reads the 32-bit word at byte `offset`, as `BPF_LD|BPF_W|BPF_ABS` does.
    fn load_word(&self, offset: u32) -> Option<u32> {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        let offset = usize::try_from(offset).ok()?;
        if offset % 4 != 0 {
            return None;
        }
        let word = bytes.get(offset..offset + 4)?;
        Some(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]))
    }
}

/// What a seccomp filter decided, decoded from its 32-bit return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `SECCOMP_RET_KILL_PROCESS`.
    KillProcess,
    /// `SECCOMP_RET_KILL_THREAD` (also what `SCMP_ACT_KILL` means).
    KillThread,
    /// `SECCOMP_RET_TRAP`: SIGSYS is delivered; the data is passed in `si_errno`.
    Trap(u16),
    /// `SECCOMP_RET_ERRNO`: the syscall fails with this errno.
    Errno(u16),
    /// `SECCOMP_RET_USER_NOTIF`: a supervisor is asked.
    Notify,
    /// `SECCOMP_RET_TRACE`: a ptrace tracer is notified with this message.
    Trace(u16),
    /// `SECCOMP_RET_LOG`: allowed and logged.
    Log,
    /// `SECCOMP_RET_ALLOW`.
    Allow,
    /// A return value outside the known actions (the kernel treats it as kill process).
    Unknown(u32),
}

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

impl Verdict {
    /// Decodes a filter's return value as the kernel does.
    pub fn from_ret(ret: u32) -> Self {
        let data = (ret & RET_DATA) as u16;
        match ret & RET_ACTION_FULL {
            RET_KILL_PROCESS => Self::KillProcess,
            RET_KILL_THREAD => Self::KillThread,
            RET_TRAP => Self::Trap(data),
            RET_ERRNO => Self::Errno(data),
            RET_USER_NOTIF => Self::Notify,
            RET_TRACE => Self::Trace(data),
            RET_LOG => Self::Log,
            RET_ALLOW => Self::Allow,
            _ => Self::Unknown(ret),
        }
    }
}

/// Why a program could not be run to a verdict.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BpfError {
    /// The program counter left the program without reaching a return.
    #[error("bpf program ran past its end at instruction {pc}")]
    RanOffEnd {
        /// The instruction index that does not exist.
        pc: usize,
    },
    /// An instruction that seccomp filters may not use, or that this interpreter does not know.
    #[error("bpf instruction {pc} has unsupported opcode {code:#06x}")]
    UnsupportedOpcode {
        /// Index of the instruction.
        pc: usize,
        /// Its opcode.
        code: u16,
    },
    /// A load outside `struct seccomp_data` or not 4-byte aligned.
    #[error("bpf instruction {pc} loads from invalid offset {offset}")]
    BadLoad {
        /// Index of the instruction.
        pc: usize,
        /// The byte offset it wanted.
        offset: u32,
    },
    /// A scratch-memory slot index of 16 or more.
    #[error("bpf instruction {pc} uses scratch slot {slot}, beyond the 16 that exist")]
    BadScratch {
        /// Index of the instruction.
        pc: usize,
        /// The slot it wanted.
        slot: u32,
    },
    /// A division or modulo by zero.
    #[error("bpf instruction {pc} divides by zero")]
    DivideByZero {
        /// Index of the instruction.
        pc: usize,
    },
}

// Opcode fields (linux/bpf_common.h).
const CLASS_LD: u16 = 0x00;
const CLASS_LDX: u16 = 0x01;
const CLASS_ST: u16 = 0x02;
const CLASS_STX: u16 = 0x03;
const CLASS_ALU: u16 = 0x04;
const CLASS_JMP: u16 = 0x05;
const CLASS_RET: u16 = 0x06;
const CLASS_MISC: u16 = 0x07;
const SIZE_W: u16 = 0x00;
const MODE_IMM: u16 = 0x00;
const MODE_ABS: u16 = 0x20;
const MODE_MEM: u16 = 0x60;
const MODE_LEN: u16 = 0x80;
const SRC_X: u16 = 0x08;
const RVAL_A: u16 = 0x10;
const MISC_TAX: u16 = 0x00;
const MISC_TXA: u16 = 0x80;

/// Runs `program` on `data` and returns the raw 32-bit return value.
///
/// Only the instructions the kernel's seccomp checker accepts are interpreted (word loads from
/// `seccomp_data`, scratch memory, ALU, jumps, returns, `tax`/`txa`); anything else is an error
/// rather than a guess.
pub fn run(program: &[SockFilter], data: &SeccompData) -> Result<u32, BpfError> {
    let (mut a, mut x): (u32, u32) = (0, 0);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let insn = *program.get(pc).ok_or(BpfError::RanOffEnd { pc })?;
        let unsupported = BpfError::UnsupportedOpcode {
            pc,
            code: insn.code,
        };
        let class = insn.code & 0x07;
        match class {
            CLASS_LD | CLASS_LDX => {
                let size = insn.code & 0x18;
                let mode = insn.code & 0xe0;
                let value = match mode {
                    MODE_ABS if size == SIZE_W && class == CLASS_LD => data
                        .load_word(insn.k)
                        .ok_or(BpfError::BadLoad { pc, offset: insn.k })?,
                    MODE_IMM => insn.k,
                    MODE_MEM => *mem
                        .get(insn.k as usize)
                        .ok_or(BpfError::BadScratch { pc, slot: insn.k })?,
                    MODE_LEN => std::mem::size_of::<SeccompData>() as u32,
                    _ => return Err(unsupported),
                };
                if class == CLASS_LD {
                    a = value;
                } else {
                    x = value;
                }
            }
            CLASS_ST | CLASS_STX => {
                let slot = mem
                    .get_mut(insn.k as usize)
                    .ok_or(BpfError::BadScratch { pc, slot: insn.k })?;
                *slot = if class == CLASS_ST { a } else { x };
            }
            CLASS_ALU => {
                let operand = if insn.code & SRC_X != 0 { x } else { insn.k };
                a = match insn.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 => a
                        .checked_div(operand)
                        .ok_or(BpfError::DivideByZero { pc })?,
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.checked_shl(operand).unwrap_or(0),
                    0x70 => a.checked_shr(operand).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a
                        .checked_rem(operand)
                        .ok_or(BpfError::DivideByZero { pc })?,
                    0xa0 => a ^ operand,
                    _ => return Err(unsupported),
                };
            }
            CLASS_JMP => {
                let operand = if insn.code & SRC_X != 0 { x } else { insn.k };
                let op = insn.code & 0xf0;
                if op == 0x00 {
                    // BPF_JA: unconditional, 32-bit offset in k.
                    pc = pc + 1 + insn.k as usize;
                    continue;
                }
                let taken = match op {
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    _ => return Err(unsupported),
                };
                pc = pc + 1 + usize::from(if taken { insn.jt } else { insn.jf });
                continue;
            }
            CLASS_RET => {
                return Ok(if insn.code & 0x18 == RVAL_A {
                    a
                } else {
                    insn.k
                });
            }
            CLASS_MISC => match insn.code & 0xf8 {
                MISC_TAX => x = a,
                MISC_TXA => a = x,
                _ => return Err(unsupported),
            },
            _ => return Err(unsupported),
        }
        pc += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(code: u16, k: u32) -> SockFilter {
        SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    #[test]
    fn bytes_round_trip() {
        let insn = SockFilter {
            code: 0x15,
            jt: 3,
            jf: 7,
            k: 0xdead_beef,
        };
        assert_eq!(SockFilter::from_bytes(insn.to_bytes()), insn);
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Wrapped(#[serde(with = "hex_program")] Vec<SockFilter>);

    #[test]
    fn hex_program_round_trips_and_rejects_garbage() {
        let program = vec![stmt(0x06, 0x7fff_0000), jump(0x15, 59, 1, 0)];
        let json = serde_json::to_string(&Wrapped(program.clone())).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(json, "\"060000000000ff7f150001003b000000\"");
        }
        assert_eq!(
            serde_json::from_str::<Wrapped>(&json).unwrap(),
            Wrapped(program)
        );
        assert!(
            serde_json::from_str::<Wrapped>("\"0600\"").is_err(),
            "short"
        );
        assert!(
            serde_json::from_str::<Wrapped>("\"060000000000ff7g\"").is_err(),
            "not hex"
        );
    }

    #[test]
    fn verdicts_decode_action_and_data() {
        assert_eq!(Verdict::from_ret(0x0005_0026), Verdict::Errno(38));
        assert_eq!(Verdict::from_ret(0x7ff0_0001), Verdict::Trace(1));
        assert_eq!(Verdict::from_ret(0x8000_0000), Verdict::KillProcess);
        assert_eq!(Verdict::from_ret(0), Verdict::KillThread);
        assert_eq!(Verdict::from_ret(0x0003_0000), Verdict::Trap(0));
        assert_eq!(Verdict::from_ret(0x7fc0_0000), Verdict::Notify);
        assert_eq!(Verdict::from_ret(0x7ffc_0000), Verdict::Log);
        assert_eq!(Verdict::from_ret(0x7fff_0000), Verdict::Allow);
        assert_eq!(
            Verdict::from_ret(0x0001_0000),
            Verdict::Unknown(0x0001_0000)
        );
    }

    #[test]
    fn interprets_loads_jumps_and_returns() {
        // if (nr == 39) return ERRNO(1); if (args[1] low word & 0xff == 0x10) return LOG;
        // return ALLOW
        let program = [
            stmt(CLASS_LD | SIZE_W | MODE_ABS, 0),
            jump(CLASS_JMP | 0x10, 39, 0, 1),
            stmt(CLASS_RET, RET_ERRNO | 1),
            stmt(CLASS_LD | SIZE_W | MODE_ABS, 24),
            stmt(CLASS_ALU | 0x50, 0xff),
            jump(CLASS_JMP | 0x10, 0x10, 0, 1),
            stmt(CLASS_RET, RET_LOG),
            stmt(CLASS_RET, RET_ALLOW),
        ];
        let data = SeccompData::new(AUDIT_ARCH_X86_64, 39);
        assert_eq!(run(&program, &data), Ok(RET_ERRNO | 1));
        let data = SeccompData::new(AUDIT_ARCH_X86_64, 1).with_arg(1, 0x1_0000_0110);
        assert_eq!(run(&program, &data), Ok(RET_LOG));
        let data = SeccompData::new(AUDIT_ARCH_X86_64, 1).with_arg(1, 0x111);
        assert_eq!(run(&program, &data), Ok(RET_ALLOW));
    }

    #[test]
    fn scratch_memory_and_register_moves() {
        let program = [
            stmt(CLASS_LD | MODE_IMM, 7),
            stmt(CLASS_ST, 3),
            stmt(CLASS_LD | MODE_IMM, 0),
            stmt(CLASS_LDX | MODE_MEM, 3),
            stmt(CLASS_MISC | MISC_TXA, 0),
            stmt(CLASS_RET | RVAL_A, 0),
        ];
        assert_eq!(run(&program, &SeccompData::default()), Ok(7));
    }

    #[test]
    fn rejects_bad_programs() {
        let data = SeccompData::default();
        assert_eq!(run(&[], &data), Err(BpfError::RanOffEnd { pc: 0 }));
        assert_eq!(
            run(&[stmt(CLASS_LD | SIZE_W | MODE_ABS, 64)], &data),
            Err(BpfError::BadLoad { pc: 0, offset: 64 })
        );
        assert_eq!(
            run(&[stmt(CLASS_LD | SIZE_W | MODE_ABS, 2)], &data),
            Err(BpfError::BadLoad { pc: 0, offset: 2 })
        );
        assert_eq!(
            run(&[stmt(CLASS_ST, 16)], &data),
            Err(BpfError::BadScratch { pc: 0, slot: 16 })
        );
        assert_eq!(
            run(&[stmt(CLASS_ALU | 0x30, 0)], &data),
            Err(BpfError::DivideByZero { pc: 0 })
        );
        assert_eq!(
            run(&[jump(CLASS_JMP | 0x50, 0, 0, 0)], &data),
            Err(BpfError::UnsupportedOpcode {
                pc: 0,
                code: CLASS_JMP | 0x50
            })
        );
        assert_eq!(
            run(&[jump(CLASS_JMP | 0x10, 0, 5, 5)], &data),
            Err(BpfError::RanOffEnd { pc: 6 })
        );
    }
}

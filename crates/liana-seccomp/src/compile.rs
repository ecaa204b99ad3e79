//! Compiling a profile to BPF with libseccomp, in the runtime's parent process.
//!
//! libseccomp builds the program (per-architecture sections, syscall-number translation for every
//! ABI, 64-bit argument comparisons split into 32-bit halves, x86 `socketcall`/`ipc`
//! multiplexing) and exports it with `seccomp_export_bpf` into a memfd, which is read back. The
//! flags are ours to decide: they are passed to seccomp(2) at install time, not baked into the
//! program, so libseccomp's own flag attributes are not used.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompFilterFlag, LinuxSeccompOperator};

use crate::arch;
use crate::bpf::{SockFilter, INSTRUCTION_SIZE, MAX_INSTRUCTIONS};
use crate::filter::CompiledFilter;
use crate::kernel::{
    self, FLAG_NEW_LISTENER, FLAG_TSYNC, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV,
};
use crate::profile::{Action, Condition, Profile, ProfileError};

/// Rules beyond which libseccomp is asked for a binary-tree program (runc's threshold). Below
/// it, a linear program is as fast; libseccomp <= 2.5.4 also misbehaves on a tree with no rules.
const TREE_THRESHOLD: usize = 32;

/// Compiling a `linux.seccomp` object failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The object is invalid; the message names the field.
    #[error(transparent)]
    Invalid(#[from] ProfileError),
    /// Notify rules or a `listenerPath` need `SECCOMP_FILTER_FLAG_NEW_LISTENER` (Linux 5.0).
    #[error("linux.seccomp needs a notify listener, which this kernel does not support")]
    ListenerUnsupported,
    /// The kernel does not implement an action the profile uses.
    #[error("seccomp action {action:?} is not supported by this kernel")]
    ActionUnsupported {
        /// The action.
        action: Action,
    },
    /// libseccomp could not create a filter with the default action.
    #[error("cannot create a libseccomp filter with default action {action:?}")]
    Context {
        /// The default action.
        action: Action,
        /// libseccomp's error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused an architecture.
    #[error("cannot add architecture {arch} to the seccomp filter")]
    AddArch {
        /// The architecture.
        arch: Arch,
        /// libseccomp's error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused a rule.
    #[error("cannot add seccomp rule {action:?} for syscall {syscall}")]
    AddRule {
        /// The syscall name.
        syscall: String,
        /// The rule's action.
        action: Action,
        /// libseccomp's error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// The memfd the program is exported into could not be created or read.
    #[error("cannot buffer the exported seccomp program")]
    ExportBuffer {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// libseccomp could not generate the program.
    #[error("libseccomp cannot export the seccomp program")]
    Export {
        /// libseccomp's error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// The exported bytes are not a whole number of instructions.
    #[error("exported seccomp program has {bytes} bytes, not a multiple of 8")]
    BadExport {
        /// Their length.
        bytes: usize,
    },
    /// The program is longer than the kernel takes.
    #[error("seccomp program has {instructions} instructions, more than the kernel's 4096")]
    TooLong {
        /// Its length.
        instructions: usize,
    },
}

/// Compiles `seccomp` into a [`CompiledFilter`].
///
/// Run it in the runtime before forking the container's init: it is the expensive part (a few
/// milliseconds for podman's default profile). Syscall names unknown to libseccomp are skipped
/// with a debug log, as runc does; flags the kernel lacks are skipped with a warning.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<CompiledFilter, CompileError> {
    let started = Instant::now();
    let profile = Profile::from_oci(seccomp)?;
    let wants_listener = profile.has_notify || seccomp.listener_path().is_some();
    let supported = kernel::supported_flags();
    if wants_listener && supported & FLAG_NEW_LISTENER == 0 {
        return Err(CompileError::ListenerUnsupported);
    }
    let mut checked = Vec::new();
    for action in
        std::iter::once(profile.default_action).chain(profile.rules.iter().map(|r| r.action))
    {
        let ret_action = action.ret() & 0xffff_0000;
        if !checked.contains(&ret_action) {
            if !kernel::action_available(ret_action) {
                return Err(CompileError::ActionUnsupported { action });
            }
            checked.push(ret_action);
        }
    }
    let flags = resolve_flags(
        seccomp.flags().as_deref().unwrap_or_default(),
        wants_listener,
        supported,
    );

    let mut ctx =
        ScmpFilterContext::new(scmp_action(profile.default_action)).map_err(|source| {
            CompileError::Context {
                action: profile.default_action,
                source,
            }
        })?;
    let (extra, dropped) = arch::partition(seccomp.architectures().as_deref().unwrap_or_default());
    if !dropped.is_empty() {
        tracing::debug!(
            ?dropped,
            "seccomp architectures this kernel cannot run, left out"
        );
    }
    for arch in extra {
        ctx.add_arch(arch::to_scmp(arch))
            .map_err(|source| CompileError::AddArch { arch, source })?;
    }
    if profile.rules.len() > TREE_THRESHOLD {
        if let Err(err) = ctx.set_ctl_optimize(2) {
            tracing::debug!(error = %err, "libseccomp binary tree optimisation unavailable");
        }
    }

    let mut skipped = 0usize;
    for rule in &profile.rules {
        let Ok(syscall) = ScmpSyscall::from_name(&rule.syscall) else {
            tracing::debug!(syscall = %rule.syscall, "unknown seccomp syscall ignored");
            skipped += 1;
            continue;
        };
        let conditions: Vec<ScmpArgCompare> = rule.conditions.iter().map(arg_compare).collect();
        ctx.add_rule_conditional(scmp_action(rule.action), syscall, &conditions)
            .map_err(|source| CompileError::AddRule {
                syscall: rule.syscall.clone(),
                action: rule.action,
                source,
            })?;
    }

    let program = export(&ctx)?;
    tracing::debug!(
        rules = profile.rules.len(),
        skipped,
        instructions = program.len(),
        flags = format_args!("{flags:#x}"),
        elapsed_us = started.elapsed().as_micros() as u64,
        "seccomp filter compiled"
    );
    Ok(CompiledFilter {
        program,
        flags,
        has_notify: profile.has_notify,
    })
}

/// The seccomp(2) flags for the profile's `flags`, given the kernel's `supported` mask.
fn resolve_flags(requested: &[LinuxSeccompFilterFlag], listener: bool, supported: u32) -> u32 {
    let mut flags = 0;
    for &flag in requested {
        let bit = kernel::flag_bit(flag);
        if supported & bit == 0 {
            tracing::warn!(%flag, "seccomp filter flag not supported by this kernel, ignored");
        } else if bit == FLAG_WAIT_KILLABLE_RECV && !listener {
            tracing::warn!(%flag, "seccomp filter flag needs a notify listener, ignored");
        } else {
            flags |= bit;
        }
    }
    if listener {
        flags |= FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with NEW_LISTENER unless told to report TSYNC failures as
        // ESRCH (the return value would be ambiguous otherwise).
        if flags & FLAG_TSYNC != 0 {
            if supported & FLAG_TSYNC_ESRCH != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            } else {
                tracing::warn!(
                    "SECCOMP_FILTER_FLAG_TSYNC cannot be combined with a notify listener on \
                     this kernel, ignored"
                );
                flags &= !FLAG_TSYNC;
            }
        }
    }
    flags
}

fn scmp_action(action: Action) -> ScmpAction {
    match action {
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno(errno) => ScmpAction::Errno(i32::from(errno)),
        Action::Trace(msg) => ScmpAction::Trace(msg),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

fn arg_compare(condition: &Condition) -> ScmpArgCompare {
    let op = match condition.op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // value is the mask and valueTwo the expected masked value, as in runc and crun.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                condition.index,
                ScmpCompareOp::MaskedEqual(condition.value),
                condition.value_two,
            );
        }
    };
    ScmpArgCompare::new(condition.index, op, condition.value)
}

/// Exports the program through a memfd (libseccomp 2.5 can only write to an fd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, CompileError> {
    let fd = rustix::fs::memfd_create("liana-seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|errno| CompileError::ExportBuffer {
            source: errno.into(),
        })?;
    ctx.export_bpf(&fd)
        .map_err(|source| CompileError::Export { source })?;
    let mut file = File::from(fd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|source| CompileError::ExportBuffer { source })?;
    if bytes.len() % INSTRUCTION_SIZE != 0 {
        return Err(CompileError::BadExport { bytes: bytes.len() });
    }
    let program: Vec<SockFilter> = bytes
        .chunks_exact(INSTRUCTION_SIZE)
        .map(|chunk| {
            let mut insn = [0u8; INSTRUCTION_SIZE];
            insn.copy_from_slice(chunk);
            SockFilter::from_bytes(insn)
        })
        .collect();
    if program.len() > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong {
            instructions: program.len(),
        });
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{FLAG_LOG, FLAG_SPEC_ALLOW};

    const ALL: u32 = 0x3f;
    use LinuxSeccompFilterFlag::*;

    #[test]
    fn supported_flags_pass_through() {
        assert_eq!(
            resolve_flags(
                &[SeccompFilterFlagLog, SeccompFilterFlagSpecAllow],
                false,
                ALL
            ),
            FLAG_LOG | FLAG_SPEC_ALLOW
        );
        assert_eq!(
            resolve_flags(&[SeccompFilterFlagTsync], false, ALL),
            FLAG_TSYNC
        );
        assert_eq!(resolve_flags(&[], false, ALL), 0);
    }

    #[test]
    fn unsupported_flags_are_dropped() {
        let supported = ALL & !FLAG_SPEC_ALLOW;
        assert_eq!(
            resolve_flags(
                &[SeccompFilterFlagLog, SeccompFilterFlagSpecAllow],
                false,
                supported
            ),
            FLAG_LOG
        );
    }

    #[test]
    fn listener_adds_new_listener_and_tsync_esrch() {
        assert_eq!(resolve_flags(&[], true, ALL), FLAG_NEW_LISTENER);
        assert_eq!(
            resolve_flags(&[SeccompFilterFlagTsync], true, ALL),
            FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH
        );
        assert_eq!(
            resolve_flags(&[SeccompFilterFlagTsync], true, ALL & !FLAG_TSYNC_ESRCH),
            FLAG_NEW_LISTENER,
            "TSYNC is dropped when the kernel cannot combine it with a listener"
        );
    }

    #[test]
    fn wait_killable_recv_needs_a_listener() {
        assert_eq!(
            resolve_flags(&[SeccompFilterFlagWaitKillableRecv], false, ALL),
            0
        );
        assert_eq!(
            resolve_flags(&[SeccompFilterFlagWaitKillableRecv], true, ALL),
            FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
        );
    }
}

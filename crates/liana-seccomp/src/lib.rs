//! seccomp filters for liana: runtime-spec `linux.seccomp`, compiled to BPF before the fork and
//! installed right before `execve`.
//!
//! # Use
//! ```no_run
//! # fn demo(spec: &oci_spec::runtime::LinuxSeccomp) -> Result<(), Box<dyn std::error::Error>> {
//! // In the runtime, before forking the container's init (the expensive part, ~18 ms for
//! // podman's default profile; a FilterCache hit is ~0.05 ms):
//! let cache = liana_seccomp::FilterCache::new("/run/liana/.seccomp-cache");
//! let filter = cache.compile(spec)?; // or liana_seccomp::compile(spec)?
//! // In the init, after every other set-up step, right before execve:
//! let listener = filter.install()?;
//! // If `listener` is Some, it must reach the agent at linux.seccomp.listenerPath before
//! // execve (it is close-on-exec): see liana_seccomp::listener (take, encode, send).
//! # Ok(()) }
//! ```
//!
//! # Why libseccomp
//! The compiler is libseccomp (2.5, through the `libseccomp` crate), the one runc and crun use.
//! It knows every architecture's syscall table, so a rule for `getcwd` becomes nr 79 in the
//! x86-64 section, 183 in the i386 section and `79 | 0x40000000` in the x32 one, and names that
//! exist only on the 32-bit ABI (`_llseek`, `socketcall`, `stat64`) land where they belong; on
//! i386 it also filters the `socketcall`/`ipc` multiplexers for socket rules. It splits 64-bit
//! argument comparisons into 32-bit BPF halves, builds a binary-tree program for large profiles,
//! and gives exactly the programs runc and crun give, so behaviour matches the runtimes liana
//! replaces. The pure-Rust compiler `seccompiler` has no multi-architecture filters and no
//! `SECCOMP_RET_USER_NOTIF`, and writing our own would mean maintaining syscall tables for every
//! architecture. The cost is a C library: `libseccomp-dev` to build, `libseccomp2` at run time
//! (or `LIBSECCOMP_LINK_TYPE=static` for a static link).
//!
//! libseccomp is used only to build the program. Its output (`seccomp_export_bpf`, read back
//! from a memfd) is a plain [`CompiledFilter`]; [`CompiledFilter::install`] is one seccomp(2)
//! call with the flags decided here (`TSYNC`, `LOG`, `SPEC_ALLOW`, `WAIT_KILLABLE_RECV`,
//! `NEW_LISTENER`), so nothing of libseccomp runs after the fork and flags newer than
//! libseccomp 2.5 (`WAIT_KILLABLE_RECV`) work.
//!
//! # Behaviour (runc's where the spec is silent)
//! - `errnoRet` and `defaultErrnoRet` default to `EPERM`; on another action than ERRNO or TRACE
//!   they are an error naming the field.
//! - Syscall names libseccomp does not know are skipped with a debug log.
//! - Conditions on distinct arguments are ANDed; when two test the same argument, each becomes
//!   a rule of its own (ORed).
//! - Rules with the default action are dropped; NOTIFY is refused as default action, on
//!   `write`, and without a `listenerPath`.
//! - When a syscall has two unconditional rules with different actions, the first one wins
//!   (libseccomp's behaviour, so runc's and crun's).
//! - Flags the kernel lacks are skipped with a warning; `TSYNC` with a listener adds
//!   `TSYNC_ESRCH`; `WAIT_KILLABLE_RECV` without a listener is skipped with a warning.
//! - A listener is created when there are NOTIFY rules or a `listenerPath` (crun's behaviour:
//!   the agent gets a listener fd even when no rule notifies).
//! - Architectures the kernel cannot run (aarch64 on x86-64) are accepted and left out.

mod arch;
pub mod bpf;
mod cache;
mod compile;
mod features;
mod filter;
mod kernel;
pub mod listener;
pub mod notify;
mod profile;

pub use bpf::{SeccompData, SockFilter, Verdict};
pub use cache::FilterCache;
pub use compile::{compile, CompileError};
pub use features::{features, libseccomp_version};
pub use filter::{CompiledFilter, InstallError};
pub use profile::{parse, Action, ProfileError, DEFAULT_ERRNO};

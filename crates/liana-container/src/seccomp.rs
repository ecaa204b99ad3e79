//! The runtime's use of [`liana_seccomp`]: compile before fork (cached under the state
//! root), install right before exec.

use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

/// A compiled filter.
pub type SeccompProgram = liana_seccomp::CompiledFilter;

/// Errors compiling a profile.
pub type SeccompError = liana_seccomp::CompileError;

/// Compiles `linux.seccomp`, using a cache of compiled programs in `cache_dir`.
pub fn compile(spec: &LinuxSeccomp, cache_dir: &Path) -> Result<SeccompProgram, SeccompError> {
    liana_seccomp::FilterCache::new(cache_dir).compile(spec)
}

/// The `ociVersion` sent to seccomp agents. crun sends "0.2.0" and agents written
/// against it (and crun's test-suite) expect it.
pub const AGENT_STATE_VERSION: &str = "0.2.0";

//! An on-disk cache of compiled filters, so a profile used again (podman's default, for every
//! container) costs a file read instead of a libseccomp compilation (~18 ms for podman's default
//! profile with three x86 ABIs, against well under 1 ms for a hit).
//!
//! # On-disk format, version 1
//! One JSON file per entry, named `<16 hex digits>.json` after a 64-bit FNV-1a hash of the key:
//! `{"key": KEY, "filter": CompiledFilter}`, where KEY is the JSON text of
//! `{"format":1,"crate":VERSION,"libseccomp":[MAJ,MIN,MIC],"kernel":RELEASE,"flags":MASK,
//! "arch":NATIVE,"profile":LINUX_SECCOMP}` and the filter's program is one hex string. A file is
//! used only when its KEY equals the current one byte for byte, so a hash collision or a stale
//! entry can only cost a recompilation, never give another profile's filter. Entries are written
//! to a temporary file and renamed into place; beyond `max_entries` the oldest (by mtime) go.
//!
//! The directory must be writable by nobody but us: whoever can write there chooses the filters
//! of our containers. It is created 0700; one owned by another user, or group/world writable,
//! is not used (a warning, then a plain compilation).

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};

use crate::compile::{compile, CompileError};
use crate::filter::CompiledFilter;
use crate::{arch, features, kernel};

const FORMAT: u32 = 1;

/// A directory of compiled filters. See the module documentation for the format and the
/// trust requirement on the directory.
#[derive(Debug, Clone)]
pub struct FilterCache {
    dir: PathBuf,
    max_entries: usize,
}

#[derive(Serialize)]
struct Key<'a> {
    format: u32,
    #[serde(rename = "crate")]
    crate_version: &'static str,
    libseccomp: Option<(u32, u32, u32)>,
    kernel: String,
    flags: u32,
    arch: oci_spec::runtime::Arch,
    profile: &'a LinuxSeccomp,
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    key: std::borrow::Cow<'a, str>,
    filter: CompiledFilter,
}

/// Why the cache could not be used (logged, never returned: the cache is best effort).
#[derive(Debug, thiserror::Error)]
enum CacheError {
    #[error("cannot create or inspect seccomp cache directory {path:?}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("seccomp cache directory {path:?} is writable by others than uid {uid}")]
    Untrusted { path: PathBuf, uid: u32 },
    #[error("cannot write seccomp cache entry {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode seccomp cache entry")]
    Encode {
        #[source]
        source: serde_json::Error,
    },
}

impl FilterCache {
    /// A cache in `dir` (created 0700 if missing) keeping at most 32 entries.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_entries: 32,
        }
    }

    /// Keeps at most `max_entries` entries (at least 1).
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The filter for `seccomp`, from the cache when a valid entry exists, else compiled (and
    /// stored). Cache problems are logged and fall back to [`compile`]; its errors are returned.
    pub fn compile(&self, seccomp: &LinuxSeccomp) -> Result<CompiledFilter, CompileError> {
        let key = match self.key(seccomp) {
            Ok(key) => key,
            Err(err) => {
                tracing::warn!(error = %err, "seccomp cache unusable, compiling");
                return compile(seccomp);
            }
        };
        let path = self
            .dir
            .join(format!("{:016x}.json", fnv1a(key.as_bytes())));
        if let Some(filter) = read_entry(&path, &key) {
            tracing::debug!(path = %path.display(), "seccomp filter from cache");
            return Ok(filter);
        }
        let filter = compile(seccomp)?;
        if let Err(err) = self.store(&path, &key, &filter) {
            tracing::warn!(error = %err, "seccomp filter not cached");
        }
        Ok(filter)
    }

    fn key(&self, seccomp: &LinuxSeccomp) -> Result<String, CacheError> {
        self.check_dir()?;
        let key = Key {
            format: FORMAT,
            crate_version: env!("CARGO_PKG_VERSION"),
            libseccomp: features::libseccomp_version(),
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            flags: kernel::supported_flags(),
            arch: arch::native(),
            profile: seccomp,
        };
        serde_json::to_string(&key).map_err(|source| CacheError::Encode { source })
    }

    fn check_dir(&self) -> Result<(), CacheError> {
        let dir_error = |source| CacheError::Dir {
            path: self.dir.clone(),
            source,
        };
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&self.dir)
        {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(dir_error(err)),
        }
        let meta = std::fs::symlink_metadata(&self.dir).map_err(dir_error)?;
        let uid = rustix::process::geteuid().as_raw();
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
            return Err(CacheError::Untrusted {
                path: self.dir.clone(),
                uid,
            });
        }
        Ok(())
    }

    fn store(&self, path: &Path, key: &str, filter: &CompiledFilter) -> Result<(), CacheError> {
        let entry = Entry {
            key: key.into(),
            filter: filter.clone(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(|source| CacheError::Encode { source })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{nanos}", std::process::id()));
        let write_error = |source| CacheError::Write {
            path: path.to_owned(),
            source,
        };
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| file.write_all(&bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(err) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_error(err));
        }
        self.evict();
        Ok(())
    }

    /// Removes the oldest entries beyond `max_entries`; best effort.
    fn evict(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= self.max_entries {
            return;
        }
        entries.sort();
        let excess = entries.len() - self.max_entries;
        for (_, path) in entries.into_iter().take(excess) {
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %err, "seccomp cache eviction");
            }
        }
    }
}

/// The entry at `path` if it exists, parses, and was stored for exactly `key`.
fn read_entry(path: &Path, key: &str) -> Option<CompiledFilter> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<Entry<'_>>(&bytes) {
        Ok(entry) if entry.key == key => Some(entry.filter),
        Ok(_) => {
            tracing::debug!(path = %path.display(), "seccomp cache entry for another key");
            None
        }
        Err(err) => {
            tracing::debug!(path = %path.display(), error = %err, "seccomp cache entry unreadable");
            None
        }
    }
}

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`. Only names files; the
/// full key is compared on every hit.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> LinuxSeccomp {
        crate::parse(json).unwrap()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn a_hit_returns_the_stored_filter() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path().join("c"));
        let profile = spec(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
        );
        let compiled = cache.compile(&profile).unwrap();
        assert_eq!(compiled, compile(&profile).unwrap());
        let stored = entries(&dir.path().join("c"));
        assert_eq!(stored.len(), 1);

        // Prove the second call reads the file: doctor the stored program and see it come back.
        let text = std::fs::read_to_string(&stored[0]).unwrap();
        let mut entry: serde_json::Value = serde_json::from_str(&text).unwrap();
        entry["filter"]["flags"] = 4.into();
        std::fs::write(&stored[0], entry.to_string()).unwrap();
        assert_eq!(cache.compile(&profile).unwrap().flags(), 4);
    }

    #[test]
    fn an_entry_for_another_key_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        let a = spec(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let b = spec(r#"{"defaultAction":"SCMP_ACT_LOG"}"#);
        let filter_a = cache.compile(&a).unwrap();
        // Put a's entry where b's would be, as a hash collision would.
        let key_b = cache.key(&b).unwrap();
        let path_b = dir
            .path()
            .join(format!("{:016x}.json", fnv1a(key_b.as_bytes())));
        std::fs::copy(&entries(dir.path())[0], &path_b).unwrap();
        let filter_b = cache.compile(&b).unwrap();
        assert_ne!(filter_b, filter_a);
        assert_eq!(filter_b, compile(&b).unwrap());
    }

    #[test]
    fn corrupt_entries_are_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path());
        let profile = spec(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        cache.compile(&profile).unwrap();
        let stored = entries(dir.path());
        std::fs::write(&stored[0], b"{not json").unwrap();
        assert_eq!(cache.compile(&profile).unwrap(), compile(&profile).unwrap());
        assert!(std::fs::read_to_string(&stored[0])
            .unwrap()
            .starts_with("{\"key\""));
    }

    #[test]
    fn an_untrusted_directory_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let cache = FilterCache::new(dir.path());
        let profile = spec(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(cache.compile(&profile).unwrap(), compile(&profile).unwrap());
        assert!(
            entries(dir.path()).is_empty(),
            "nothing written to a 0777 directory"
        );
    }

    #[test]
    fn old_entries_are_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilterCache::new(dir.path()).with_max_entries(2);
        for errno in 1..=4 {
            let profile = spec(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":{errno}}}"#
            ));
            cache.compile(&profile).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(entries(dir.path()).len(), 2);
    }

    #[test]
    fn compile_errors_are_returned() {
        let dir = tempfile::tempdir().unwrap();
        let profile = spec(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":3}"#);
        assert!(FilterCache::new(dir.path()).compile(&profile).is_err());
    }
}

//! Small helpers over cgroupfs files: one `open`+`write`/`read`+`close` each,
//! errors carrying the file and, for resource writes, the runtime-spec key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};

/// Writes `value` and a newline to `path` in a single `write(2)`.
///
/// cgroupfs treats every `write(2)` as one command and strips the newline, so
/// `O_APPEND` changes nothing there; on a plain file (the fake cgroupfs of the
/// tests) it keeps a log of every value written, one per line.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    let mut buf = Vec::with_capacity(value.len() + 1);
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)
}

/// Writes a resource value, naming `key` on failure.
pub(crate) fn set(dir: &Path, file: &str, value: &str, key: &str) -> Result<()> {
    let path = dir.join(file);
    tracing::trace!(path = %path.display(), value, "cgroup write");
    write_raw(&path, value).map_err(|source| Error::SetResource {
        key: key.to_owned(),
        value: value.to_owned(),
        path,
        source,
    })
}

/// Writes a control file (not a resource), e.g. `freezer.state`.
pub(crate) fn write_control(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| Error::WriteFile {
        path,
        value: value.to_owned(),
        source,
    })
}

/// Reads `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| Error::ReadFile { path, source })
}

/// Reads `dir/file`, `None` when it does not exist.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadFile { path, source }),
    }
}

/// The value of a single-value file: its last non-empty line (cgroupfs files
/// have one; a fake cgroupfs file keeps every value written, the last wins).
pub(crate) fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Parses a single cgroup number; `max` is `u64::MAX`, `-1` (v1's unlimited
/// in some files) too.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    match last_line(s) {
        "max" | "-1" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

/// Reads a file holding one number.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(&s).ok_or_else(|| Error::Parse {
        path: dir.join(file),
        reason: format!("expected a number, found {:?}", s.trim()),
    })
}

/// Like [`read_u64`] but `None` when the file does not exist.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(s) => parse_u64(&s).map(Some).ok_or_else(|| Error::Parse {
            path: dir.join(file),
            reason: format!("expected a number, found {:?}", s.trim()),
        }),
    }
}

/// Iterates over a flat keyed file (`key value` per line), skipping lines
/// whose value is not a number.
pub(crate) fn flat_keyed(content: &str) -> impl Iterator<Item = (&str, u64)> {
    content.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?;
        let v = parse_u64(it.next()?)?;
        Some((k, v))
    })
}

/// The value of `key` in a flat keyed file.
pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    flat_keyed(content).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Removes a cgroup directory and every sub-cgroup below it, children first.
/// A missing directory is success. `rmdir` of a cgroup whose last task is
/// still exiting fails with `EBUSY`; that is retried for about a second.
pub(crate) fn remove_cgroup_tree(path: &Path) -> Result<()> {
    // Fast path: a leaf cgroup with no children.
    match fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Remove {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    rmdir_retry(path)
}

fn rmdir_retry(path: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(1);
    let mut tries = 0;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 10 => {
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
                tries += 1;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(source) => {
                return Err(Error::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Lists the sub-directories (child cgroups) of `dir`, recursively, `dir` first.
pub(crate) fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_keys() {
        assert_eq!(parse_u64("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64(" 42\n"), Some(42));
        assert_eq!(parse_u64("x"), None);
        let c = "oom 1\noom_kill 3\nbad line here x\n";
        assert_eq!(keyed_value(c, "oom_kill"), Some(3));
        assert_eq!(keyed_value(c, "nothing"), None);
    }

    #[test]
    fn set_names_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = set(dir.path(), "missing/file", "1", "memory.limit").unwrap_err();
        match err {
            Error::SetResource { key, path, .. } => {
                assert_eq!(key, "memory.limit");
                assert_eq!(path, dir.path().join("missing/file"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn removes_trees_and_tolerates_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("d")).unwrap();
        assert_eq!(cgroup_tree(&root).len(), 4);
        remove_cgroup_tree(&root).unwrap();
        assert!(!root.exists());
        remove_cgroup_tree(&root).unwrap();
    }
}

//! The exit file: how a container ended, written by its monitor once the init is reaped
//! and read by `liana container cleanup`, `wait` and `inspect`.
//!
//! # Format, version 1
//!
//! `RUNROOT/containers/ID/exit`, written atomically (temporary file, then rename):
//!
//! ```json
//! {"version":1,"exitCode":137,"signal":9,"exitedAt":"2024-01-01T00:00:00.000000001Z"}
//! ```
//!
//! `exitCode` is the exit status, or 128 + N when signal N killed the init (then
//! `signal` is N, else it is absent).

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

/// Format version written.
pub const VERSION: u32 = 1;

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit status, or 128 + signal.
    pub code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// When it was reaped.
    pub time: SystemTime,
}

impl Exit {
    /// Decodes a `waitpid` status.
    pub fn from_wait_status(status: libc::c_int, time: SystemTime) -> Self {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            Exit {
                code: 128 + sig,
                signal: Some(sig),
                time,
            }
        } else {
            Exit {
                code: libc::WEXITSTATUS(status),
                signal: None,
                time,
            }
        }
    }

    /// The JSON record.
    pub fn to_json(&self) -> String {
        let signal = match self.signal {
            Some(s) => format!(",\"signal\":{s}"),
            None => String::new(),
        };
        format!(
            "{{\"version\":{VERSION},\"exitCode\":{}{signal},\"exitedAt\":\"{}\"}}\n",
            self.code,
            crate::time::rfc3339_nano(self.time)
        )
    }
}

/// Writes `exit` to `path` atomically (not synced: it lives in the runtime state
/// directory, which a reboot empties anyway).
pub fn write(path: &Path, exit: &Exit) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(exit.to_json().as_bytes())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn encodes() {
        let e = Exit::from_wait_status(9, UNIX_EPOCH);
        assert_eq!(e.code, 137);
        assert_eq!(
            e.to_json(),
            "{\"version\":1,\"exitCode\":137,\"signal\":9,\"exitedAt\":\"1970-01-01T00:00:00.000000000Z\"}\n"
        );
        let e = Exit::from_wait_status(3 << 8, UNIX_EPOCH);
        assert_eq!((e.code, e.signal), (3, None));
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("exit"), &e).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("exit"))
            .unwrap()
            .contains("\"exitCode\":3,"));
    }
}

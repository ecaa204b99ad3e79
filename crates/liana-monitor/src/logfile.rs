//! Container log files, written by the monitor.
//!
//! # Formats, version 1
//!
//! Every chunk the container writes is stored as one record per line, each stamped
//! with the time the monitor read it ([`crate::time::rfc3339_nano`]). A chunk that does
//! not end with a newline is stored as a *partial* record; readers join partial records
//! with the record that follows.
//!
//! * `k8s-file` (podman's default, the CRI format):
//!   `2024-01-01T00:00:00.000000001Z stdout F hello` — time, stream (`stdout` or
//!   `stderr`), `F` for a full line (its newline removed) or `P` for a partial one,
//!   then the bytes as written.
//! * `json-file` (docker's default): `{"log":"hello\n","stream":"stdout",
//!   "time":"2024-01-01T00:00:00.000000001Z"}` — `log` keeps the newline of a full
//!   line and has none for a partial one; invalid UTF-8 becomes U+FFFD.
//! * `none`: nothing is written.
//!
//! With a terminal there is only one stream, `stdout`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

/// Which log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    /// The CRI format podman writes.
    K8sFile,
    /// Docker's JSON lines.
    JsonFile,
    /// No log.
    None,
}

impl LogDriver {
    /// Parses `k8s-file`, `json-file` or `none`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "k8s-file" => Some(LogDriver::K8sFile),
            "json-file" => Some(LogDriver::JsonFile),
            "none" => Some(LogDriver::None),
            _ => None,
        }
    }

    /// The name [`LogDriver::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::K8sFile => "k8s-file",
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }
}

/// An output stream of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and the terminal).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends records to a log file.
#[derive(Debug)]
pub struct LogWriter {
    file: Option<File>,
    driver: LogDriver,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (creating, mode 0640) `path` for appending.
    pub fn open(path: &Path, driver: LogDriver) -> io::Result<Self> {
        let file = match driver {
            LogDriver::None => None,
            _ => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(path)?,
            ),
        };
        Ok(LogWriter {
            file,
            driver,
            buf: Vec::new(),
        })
    }

    /// Records one chunk read from `stream` now.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if data.is_empty() {
            return Ok(());
        }
        let ts = crate::time::rfc3339_nano(SystemTime::now());
        self.buf.clear();
        encode(self.driver, &ts, stream, data, &mut self.buf);
        file.write_all(&self.buf)
    }
}

/// Appends the records of one chunk to `out`.
pub fn encode(driver: LogDriver, ts: &str, stream: Stream, data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.split_inclusive(|&b| b == b'\n') {
        let full = chunk.last() == Some(&b'\n');
        match driver {
            LogDriver::K8sFile => {
                let line = if full {
                    &chunk[..chunk.len() - 1]
                } else {
                    chunk
                };
                out.extend_from_slice(ts.as_bytes());
                out.push(b' ');
                out.extend_from_slice(stream.name().as_bytes());
                out.extend_from_slice(if full { b" F " } else { b" P " });
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            LogDriver::JsonFile => {
                out.extend_from_slice(b"{\"log\":\"");
                escape_json(&String::from_utf8_lossy(chunk), out);
                out.extend_from_slice(b"\",\"stream\":\"");
                out.extend_from_slice(stream.name().as_bytes());
                out.extend_from_slice(b"\",\"time\":\"");
                out.extend_from_slice(ts.as_bytes());
                out.extend_from_slice(b"\"}\n");
            }
            LogDriver::None => {}
        }
    }
}

/// JSON string escaping (without the quotes).
pub fn escape_json(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(d: LogDriver, s: Stream, data: &[u8]) -> String {
        let mut out = Vec::new();
        encode(d, "T", s, data, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn k8s_file() {
        assert_eq!(
            enc(LogDriver::K8sFile, Stream::Stdout, b"a\nbc\nd"),
            "T stdout F a\nT stdout F bc\nT stdout P d\n"
        );
        assert_eq!(
            enc(LogDriver::K8sFile, Stream::Stderr, b"\n"),
            "T stderr F \n"
        );
    }

    #[test]
    fn json_file() {
        assert_eq!(
            enc(LogDriver::JsonFile, Stream::Stdout, b"a\"\x01\nb"),
            "{\"log\":\"a\\\"\\u0001\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n\
             {\"log\":\"b\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
    }

    #[test]
    fn writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p, LogDriver::K8sFile).unwrap();
        w.write(Stream::Stdout, b"hi\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with(" stdout F hi\n"), "{text}");
        let mut none = LogWriter::open(&dir.path().join("x"), LogDriver::None).unwrap();
        none.write(Stream::Stdout, b"x").unwrap();
        assert!(!dir.path().join("x").exists());
    }
}

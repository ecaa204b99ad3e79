//! `logs`: reading the log file the monitor writes (see [`liana_monitor::logfile`] for
//! the formats), with `--tail`, `--timestamps` and `--follow`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::Status;

/// Options of `logs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsOptions {
    /// Keep following until the container stops.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Prefix lines with their time.
    pub timestamps: bool,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Time (RFC 3339).
    pub time: String,
    /// stderr rather than stdout.
    pub stderr: bool,
    /// A complete line (its newline is not in `data`).
    pub full: bool,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Parses one line of either format.
pub fn parse_line(line: &[u8]) -> Option<Record> {
    if line.first() == Some(&b'{') {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        let mut data = v["log"].as_str()?.as_bytes().to_vec();
        let full = data.last() == Some(&b'\n');
        if full {
            data.pop();
        }
        return Some(Record {
            time: v["time"].as_str().unwrap_or("").to_string(),
            stderr: v["stream"] == "stderr",
            full,
            data,
        });
    }
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = String::from_utf8_lossy(parts.next()?).into_owned();
    let stream = parts.next()?;
    let tag = parts.next()?;
    let data = parts.next().unwrap_or(b"").to_vec();
    Some(Record {
        time,
        stderr: stream == b"stderr",
        full: tag != b"P",
        data,
    })
}

/// Turns records into output lines (partial records joined).
#[derive(Debug, Default)]
struct Joiner {
    pending: [Vec<u8>; 2],
    pending_time: [String; 2],
}

impl Joiner {
    /// Writes what is left of partial lines, without a newline.
    fn flush(&mut self, out: &mut dyn Write, err: &mut dyn Write, ts: bool) {
        for i in 0..2 {
            if self.pending[i].is_empty() {
                continue;
            }
            let w: &mut dyn Write = if i == 1 { &mut *err } else { &mut *out };
            if ts {
                let _ = write!(w, "{} ", self.pending_time[i]);
            }
            let _ = w.write_all(&std::mem::take(&mut self.pending[i]));
        }
    }

    /// Returns complete lines: (stderr, time, bytes without newline).
    fn push(&mut self, r: Record) -> Option<(bool, String, Vec<u8>)> {
        let i = usize::from(r.stderr);
        if self.pending[i].is_empty() {
            self.pending_time[i] = r.time;
        }
        self.pending[i].extend_from_slice(&r.data);
        r.full.then(|| {
            (
                r.stderr,
                std::mem::take(&mut self.pending_time[i]),
                std::mem::take(&mut self.pending[i]),
            )
        })
    }
}

fn emit(out: &mut dyn Write, err: &mut dyn Write, line: &(bool, String, Vec<u8>), ts: bool) {
    let w: &mut dyn Write = if line.0 { err } else { out };
    if ts {
        let _ = write!(w, "{} ", line.1);
    }
    let _ = w.write_all(&line.2);
    let _ = w.write_all(b"\n");
}

impl Engine {
    /// Writes the container's log to `out` and `err`.
    pub fn logs(
        &self,
        needle: &str,
        o: LogsOptions,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        let c = self.lookup(needle)?;
        let path = self.paths.log_file(&c.id);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("open log", &path)(e)),
        };
        let mut joiner = Joiner::default();
        let mut buf = Vec::new();
        let mut offset = 0u64;
        if let Some(file) = f.as_mut() {
            file.read_to_end(&mut buf)
                .map_err(Error::io("read log", &path))?;
            offset = buf.len() as u64;
            let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let mut lines = Vec::new();
            for l in buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(r) = parse_line(l) {
                    if let Some(line) = joiner.push(r) {
                        lines.push(line);
                    }
                }
            }
            let skip = o.tail.map_or(0, |n| lines.len().saturating_sub(n));
            for line in &lines[skip..] {
                emit(out, err, line, o.timestamps);
            }
            buf.drain(..end);
            offset -= buf.len() as u64;
        }
        if !o.follow {
            joiner.flush(out, err, o.timestamps);
            let _ = out.flush();
            let _ = err.flush();
            return Ok(());
        }
        let _ = out.flush();
        let _ = err.flush();
        loop {
            let running = match self.db()?.get(&c.id)? {
                Some(now) => now.observe(&self.paths).0 == Status::Running,
                None => false,
            };
            if f.is_none() {
                f = std::fs::File::open(&path).ok();
            }
            let mut got = false;
            if let Some(file) = f.as_mut() {
                file.seek(SeekFrom::Start(offset))
                    .map_err(Error::io("read log", &path))?;
                let mut more = Vec::new();
                file.read_to_end(&mut more)
                    .map_err(Error::io("read log", &path))?;
                offset += more.len() as u64;
                got = !more.is_empty();
                buf.extend_from_slice(&more);
                while let Some(p) = buf.iter().position(|&b| b == b'\n') {
                    let l: Vec<u8> = buf.drain(..=p).collect();
                    if let Some(r) = parse_line(&l[..l.len() - 1]) {
                        if let Some(line) = joiner.push(r) {
                            emit(out, err, &line, o.timestamps);
                        }
                    }
                }
                let _ = out.flush();
                let _ = err.flush();
            }
            if !running && !got {
                joiner.flush(out, err, o.timestamps);
                let _ = out.flush();
                let _ = err.flush();
                return Ok(());
            }
            if !got {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats() {
        let r = parse_line(b"2024-01-01T00:00:00.000000001Z stderr P a b").unwrap();
        assert_eq!(
            (r.stderr, r.full, r.data.as_slice()),
            (true, false, &b"a b"[..])
        );
        let r = parse_line(br#"{"log":"hi\n","stream":"stdout","time":"T"}"#).unwrap();
        assert_eq!(
            (r.stderr, r.full, r.data.as_slice(), r.time.as_str()),
            (false, true, &b"hi"[..], "T")
        );
        let mut j = Joiner::default();
        assert!(j.push(parse_line(b"T stdout P ab").unwrap()).is_none());
        assert_eq!(
            j.push(parse_line(b"T2 stdout F cd").unwrap()).unwrap().2,
            b"abcd"
        );
    }
}

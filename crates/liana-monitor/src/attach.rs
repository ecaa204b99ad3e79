//! The attach protocol between a container's monitor and `liana attach` (or
//! `start -a`) clients.
//!
//! # Protocol, version 1
//!
//! The monitor listens on a unix stream socket, `RUNROOT/containers/ID/attach`. Both
//! directions carry frames: one byte of kind, a 4-byte big-endian payload length, then
//! the payload (at most [`MAX_PAYLOAD`] bytes).
//!
//! | kind | direction        | payload                                         |
//! |------|------------------|-------------------------------------------------|
//! | 0    | client → monitor | bytes for the container's stdin (or terminal)   |
//! | 1    | monitor → client | container stdout (or terminal) bytes            |
//! | 2    | monitor → client | container stderr bytes                          |
//! | 3    | monitor → client | the container exited: exit code, i32 big-endian |
//! | 4    | client → monitor | close the container's stdin                     |
//! | 5    | client → monitor | terminal size: rows, cols as u16 big-endian     |
//!
//! Output produced while no client is attached is only in the log.

/// Bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// Container stdout.
pub const STDOUT: u8 = 1;
/// Container stderr.
pub const STDERR: u8 = 2;
/// The container exited (i32 code).
pub const EXIT: u8 = 3;
/// Close the container's stdin.
pub const CLOSE_STDIN: u8 = 4;
/// Terminal size.
pub const RESIZE: u8 = 5;
/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Appends one frame to `out`.
pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One frame as a new buffer.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 5);
    encode(kind, payload, &mut v);
    v
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

/// A malformed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl Decoder {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, TooLarge> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut d = Decoder::default();
        let mut bytes = frame(STDOUT, b"hello");
        encode(EXIT, &3i32.to_be_bytes(), &mut bytes);
        d.push(&bytes[..3]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&bytes[3..]);
        assert_eq!(d.next_frame(), Ok(Some((STDOUT, b"hello".to_vec()))));
        assert_eq!(d.next_frame(), Ok(Some((EXIT, vec![0, 0, 0, 3]))));
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().is_err());
    }
}

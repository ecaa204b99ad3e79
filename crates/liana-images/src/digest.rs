//! Content digests: validation of `algorithm:hex` strings and streaming hashing.
//!
//! Digests name files in the content store, so a digest is only accepted when its
//! algorithm is one we can verify (sha256, sha512) and its hex part has exactly the
//! right length and alphabet; nothing else can ever reach a path.

use std::io::{self, Read, Write};

pub use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256, Sha512};

use crate::errdefs::{ErrorKind, HasKind};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The string is not a digest we can verify.
    #[error("invalid digest {digest:?}: {reason}")]
    Invalid {
        /// The rejected text.
        digest: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

impl HasKind for DigestError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Parses and validates a digest string (`sha256:<64 hex>` or `sha512:<128 hex>`).
pub fn parse(s: &str) -> Result<Digest, DigestError> {
    let d: Digest = s.parse().map_err(|_| DigestError::Invalid {
        digest: s.to_string(),
        reason: "not of the form algorithm:hex",
    })?;
    validate(&d)?;
    Ok(d)
}

/// Checks that `d` uses a supported algorithm and a well-formed lower-case hex value.
pub fn validate(d: &Digest) -> Result<(), DigestError> {
    let s = d.to_string();
    let (alg, hex) = s.split_once(':').ok_or(DigestError::Invalid {
        digest: s.clone(),
        reason: "missing algorithm",
    })?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(DigestError::Invalid {
                digest: s.clone(),
                reason: "unsupported algorithm (sha256 and sha512 are)",
            })
        }
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::Invalid {
            digest: s.clone(),
            reason: "hex part has the wrong length or characters",
        });
    }
    Ok(())
}

/// The algorithm part of a validated digest.
pub fn algorithm(d: &Digest) -> &str {
    d.as_ref()
        .split_once(':')
        .map(|(a, _)| a)
        .unwrap_or("sha256")
}

/// The hex part of a validated digest.
pub fn hex_part(d: &Digest) -> &str {
    d.as_ref().split_once(':').map(|(_, h)| h).unwrap_or("")
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// A running hash for one algorithm.
#[derive(Clone)]
pub enum Digester {
    /// sha256
    Sha256(Sha256),
    /// sha512
    Sha512(Sha512),
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Digester::Sha256(_) => "Digester(sha256)",
            Digester::Sha512(_) => "Digester(sha512)",
        })
    }
}

impl Default for Digester {
    fn default() -> Self {
        Digester::Sha256(Sha256::new())
    }
}

impl Digester {
    /// A digester for the algorithm of `d` (sha256 for anything unvalidated).
    pub fn for_digest(d: &Digest) -> Self {
        if algorithm(d) == "sha512" {
            Digester::Sha512(Sha512::new())
        } else {
            Digester::default()
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let s = match self {
            Digester::Sha256(h) => format!("sha256:{}", to_hex(&h.finalize())),
            Digester::Sha512(h) => format!("sha512:{}", to_hex(&h.finalize())),
        };
        s.parse().expect("a freshly computed digest is well formed")
    }
}

/// sha256 of a byte slice.
pub fn sha256_of(data: &[u8]) -> Digest {
    let mut d = Digester::default();
    d.update(data);
    d.finish()
}

/// A reader that hashes and counts everything read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    digester: Digester,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with `digester`.
    pub fn new(inner: R, digester: Digester) -> Self {
        HashingReader {
            inner,
            digester,
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads what is left to the end (so the digest covers the whole stream), then
    /// returns the digest, the byte count and the inner reader.
    pub fn finish(mut self) -> io::Result<(Digest, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.digester.finish(), self.count, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, digester: Digester) -> Self {
        HashingWriter {
            inner,
            digester,
            count: 0,
        }
    }

    /// The digest and count so far, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (self.digester.finish(), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_digests() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_of(b"").to_string(), empty);
        assert!(parse(empty).is_ok());
        assert!(
            parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")
                .is_err()
        );
        assert!(parse("sha256:abc").is_err());
        assert!(parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(
            parse("sha256:../../../../etc/passwd0000000000000000000000000000000000000000").is_err()
        );
        assert!(parse("nocolon").is_err());
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let r = HashingReader::new(&b"hello"[..], Digester::default());
        let (d, n, _) = r.finish().unwrap();
        assert_eq!(n, 5);
        assert_eq!(d, sha256_of(b"hello"));
    }
}

//! A step's changes → a layer tar: the overlay upper directory walked in sorted order,
//! overlay whiteouts (0/0 character devices) written as `.wh.NAME` files and opaque
//! directories (`overlay.opaque` = `y`) as `.wh..wh..opq`, hard links kept, numeric
//! owners only, no user or group names, times clamped to `SOURCE_DATE_EPOCH`: the same
//! tree always gives the same bytes. Compressed with gzip or zstd, hashed on the way
//! (diff ID of the tar, digest of the blob).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use liana_images::digest::{Digest, Digester, HashingWriter};
use liana_images::manifest::media;

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip (the default, what every registry and runtime takes).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// Uncompressed.
    None,
}

impl Compression {
    /// Parses `--compression`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "none" | "uncompressed" => Some(Compression::None),
            _ => None,
        }
    }

    /// The OCI media type of a layer so compressed.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
            Compression::None => media::OCI_LAYER,
        }
    }
}

/// Id ranges `(image id, host id, count)`.
pub type IdRanges = Vec<(u32, u32, u32)>;

/// How to write layers.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// Compression.
    pub compression: Compression,
    /// Times later than this are clamped to it (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
    /// Prefix of the overlay xattrs (`trusted.` or `user.`).
    pub xattr_prefix: String,
    /// Diff against this tree (native snapshotter: the step's directory is a full copy
    /// of its parent) instead of reading overlay whiteouts.
    pub parent: Option<PathBuf>,
    /// Host → image uid ranges `(image, host, size)` (rootless: the user is root); ids
    /// outside every range become 65534. Empty: ids as they are.
    pub uid_map: IdRanges,
    /// Same for gids.
    pub gid_map: IdRanges,
    /// Rootless native snapshots: the parent's copy could not keep owners other than the
    /// user's `(uid, gid)`, so an entry owned by the user where the parent's was not is
    /// not a change.
    pub copy_owner: Option<(u32, u32)>,
    /// Owners to record for some paths (relative, no trailing `/`) whatever the disk
    /// says (rootless COPY --chown, which cannot chown).
    pub owners: HashMap<String, (u32, u32)>,
}

fn unmap(map: &[(u32, u32, u32)], id: u32) -> u32 {
    if map.is_empty() {
        return id;
    }
    map.iter()
        .find(|(_, h, n)| id >= *h && id - *h < *n)
        .map(|(c, h, _)| c + (id - h))
        .unwrap_or(65534)
}

/// Whether a diff can skip `new`: the same entry as `old` in the parent tree.
fn unchanged(
    old: &std::fs::Metadata,
    new: &std::fs::Metadata,
    po: &Path,
    pn: &Path,
    copy_owner: Option<(u32, u32)>,
) -> bool {
    let same_owner = |o: u32, n: u32, mine: Option<u32>| o == n || mine == Some(n);
    if old.file_type() != new.file_type()
        || old.mode() != new.mode()
        || !same_owner(old.uid(), new.uid(), copy_owner.map(|c| c.0))
        || !same_owner(old.gid(), new.gid(), copy_owner.map(|c| c.1))
    {
        return false;
    }
    let ft = new.file_type();
    if ft.is_symlink() {
        return std::fs::read_link(po).ok() == std::fs::read_link(pn).ok();
    }
    if ft.is_char_device() || ft.is_block_device() {
        return old.rdev() == new.rdev();
    }
    old.size() == new.size() && old.mtime() == new.mtime() && old.mtime_nsec() == new.mtime_nsec()
}

/// A written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
    /// How many entries the tar has (0: the step changed nothing).
    pub entries: usize,
}

enum Enc<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Write for Enc<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Enc::Gzip(w) => w.write(b),
            Enc::Zstd(w) => w.write(b),
            Enc::Plain(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Enc::Gzip(w) => w.flush(),
            Enc::Zstd(w) => w.flush(),
            Enc::Plain(w) => w.flush(),
        }
    }
}

impl<W: Write> Enc<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Enc::Gzip(w) => w.finish(),
            Enc::Zstd(w) => w.finish(),
            Enc::Plain(w) => Ok(w),
        }
    }
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

struct Walker<'a, W: Write> {
    b: tar::Builder<W>,
    opts: &'a LayerOptions,
    links: HashMap<(u64, u64), String>,
    entries: usize,
}

impl<W: Write> Walker<'_, W> {
    fn header(&self, m: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(unmap(&self.opts.uid_map, m.uid()) as u64);
        h.set_gid(unmap(&self.opts.gid_map, m.gid()) as u64);
        let mtime = m.mtime().max(0) as u64;
        h.set_mtime(match self.opts.source_date_epoch {
            Some(e) => mtime.min(e),
            None => mtime,
        });
        h.set_size(0);
        h
    }

    fn whiteout(&mut self, name: &str) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(self.opts.source_date_epoch.unwrap_or(0));
        self.b.append_data(&mut h, name, io::empty())?;
        self.entries += 1;
        Ok(())
    }

    fn xattrs(&mut self, p: &Path) -> io::Result<()> {
        if let Some(v) = getxattr(p, "security.capability") {
            self.b
                .append_pax_extensions([("SCHILY.xattr.security.capability", v.as_slice())])?;
        }
        Ok(())
    }

    fn owned(&self, rel: &str, mut h: tar::Header) -> tar::Header {
        if let Some((u, g)) = self.opts.owners.get(rel.trim_end_matches('/')) {
            h.set_uid(*u as u64);
            h.set_gid(*g as u64);
        }
        h
    }

    fn walk(&mut self, dir: &Path, prefix: &str, parent: Option<&Path>) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        if let Some(pd) = parent {
            // deletions: names of the parent directory that are gone
            let mut gone: Vec<_> = std::fs::read_dir(pd)?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|n| std::fs::symlink_metadata(dir.join(n)).is_err())
                .collect();
            gone.sort();
            for g in gone {
                self.whiteout(&format!("{prefix}.wh.{}", g.to_string_lossy()))?;
            }
        }
        for n in names {
            let name = n.to_string_lossy().to_string();
            let rel = format!("{prefix}{name}");
            let p = dir.join(&n);
            let m = std::fs::symlink_metadata(&p)?;
            let ft = m.file_type();
            let old = parent.and_then(|pd| {
                let po = pd.join(&n);
                std::fs::symlink_metadata(&po).ok().map(|om| (po, om))
            });
            if let Some((po, om)) = &old {
                let same = unchanged(om, &m, po, &p, self.opts.copy_owner)
                    && !self.opts.owners.contains_key(&rel);
                if ft.is_dir() && om.is_dir() {
                    if !same {
                        let mut h = self.owned(&rel, self.header(&m, tar::EntryType::Directory));
                        self.b.append_data(&mut h, format!("{rel}/"), io::empty())?;
                        self.entries += 1;
                    }
                    self.walk(&p, &format!("{rel}/"), Some(po))?;
                    continue;
                }
                if same {
                    continue;
                }
            }
            if ft.is_char_device() && m.rdev() == 0 {
                self.whiteout(&format!("{prefix}.wh.{name}"))?;
                continue;
            }
            if ft.is_dir() {
                let mut h = self.owned(&rel, self.header(&m, tar::EntryType::Directory));
                self.xattrs(&p)?;
                self.b.append_data(&mut h, format!("{rel}/"), io::empty())?;
                self.entries += 1;
                let opaque = format!("{}overlay.opaque", self.opts.xattr_prefix);
                if getxattr(&p, &opaque).as_deref() == Some(b"y") {
                    self.whiteout(&format!("{rel}/.wh..wh..opq"))?;
                }
                self.walk(&p, &format!("{rel}/"), None)?;
                continue;
            }
            if !ft.is_dir() && m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    let mut h = self.owned(&rel, self.header(&m, tar::EntryType::Link));
                    let first = first.clone();
                    self.b.append_link(&mut h, &rel, first)?;
                    self.entries += 1;
                    continue;
                }
                self.links.insert((m.dev(), m.ino()), rel.clone());
            }
            if ft.is_file() {
                let mut h = self.owned(&rel, self.header(&m, tar::EntryType::Regular));
                h.set_size(m.len());
                self.xattrs(&p)?;
                let f = File::open(&p)?;
                self.b.append_data(&mut h, &rel, f)?;
            } else if ft.is_symlink() {
                let mut h = self.owned(&rel, self.header(&m, tar::EntryType::Symlink));
                let target = std::fs::read_link(&p)?;
                self.b.append_link(&mut h, &rel, target)?;
            } else {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    // sockets are not archived
                    continue;
                };
                let mut h = self.header(&m, kind);
                let dev = m.rdev();
                h.set_device_major(rustix::fs::major(dev))?;
                h.set_device_minor(rustix::fs::minor(dev))?;
                self.b.append_data(&mut h, &rel, io::empty())?;
            }
            self.entries += 1;
        }
        Ok(())
    }
}

/// Writes the layer of the changes in `upper` to the file `out`.
pub fn write(upper: &Path, out: &Path, opts: &LayerOptions) -> io::Result<Written> {
    let f = BufWriter::with_capacity(256 << 10, File::create(out)?);
    let blob = HashingWriter::new(f, Digester::default());
    let enc = match opts.compression {
        Compression::Gzip => Enc::Gzip(flate2::write::GzEncoder::new(
            blob,
            flate2::Compression::new(6),
        )),
        Compression::Zstd => Enc::Zstd(zstd::stream::write::Encoder::new(blob, 3)?),
        Compression::None => Enc::Plain(blob),
    };
    let diff = HashingWriter::new(enc, Digester::default());
    let mut b = tar::Builder::new(diff);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut w = Walker {
        b,
        opts,
        links: HashMap::new(),
        entries: 0,
    };
    w.walk(upper, "", opts.parent.as_deref())?;
    let entries = w.entries;
    let diff = w.b.into_inner()?;
    let (diff_id, _, enc) = diff.finish();
    let blob = enc.finish()?;
    let (digest, size, f) = blob.finish();
    f.into_inner().map_err(|e| e.into_error())?;
    Ok(Written {
        diff_id,
        digest,
        size,
        entries,
    })
}

/// A temporary layer file that is removed unless kept.
#[derive(Debug)]
pub struct TempLayer(pub PathBuf);

impl Drop for TempLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(p: &Path) -> Vec<(String, u64)> {
        let f = File::open(p).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn sorted_reproducible_with_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let up = d.path().join("up");
        std::fs::create_dir_all(up.join("b/c")).unwrap();
        std::fs::write(up.join("b/c/f"), "x").unwrap();
        std::fs::write(up.join("a"), "y").unwrap();
        std::fs::hard_link(up.join("a"), up.join("z")).unwrap();
        std::os::unix::fs::symlink("a", up.join("l")).unwrap();
        let can_mknod = rustix::process::geteuid().is_root();
        if can_mknod {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                up.join("gone"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let o = LayerOptions {
            source_date_epoch: Some(100),
            xattr_prefix: "trusted.".into(),
            ..Default::default()
        };
        let w1 = write(&up, &d.path().join("1.tgz"), &o).unwrap();
        let w2 = write(&up, &d.path().join("2.tgz"), &o).unwrap();
        assert_eq!(w1, w2);
        let names: Vec<String> = entries(&d.path().join("1.tgz"))
            .into_iter()
            .map(|(n, t)| {
                assert!(t <= 100);
                n
            })
            .collect();
        let mut want = vec!["a", "b/", "b/c/", "b/c/f"];
        if can_mknod {
            want.push(".wh.gone");
        }
        want.extend(["l", "z"]);
        assert_eq!(names, want);
    }
}

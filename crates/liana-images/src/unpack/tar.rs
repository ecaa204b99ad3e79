//! The tar applier: one pass over the entries, each written relative to a directory fd
//! resolved beneath the root (see [`super::fs`]).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use super::fs::{self, components, ResolveError};
use super::{ApplyOptions, UnpackError, WhiteoutMode};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of regular file data written.
    pub bytes: u64,
    /// Device nodes skipped for lack of privilege.
    pub skipped_devices: u64,
}

struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Applier<'a> {
    root: OwnedFd,
    layer: &'a str,
    opts: &'a ApplyOptions,
    cache: Option<(String, OwnedFd)>,
    dir_times: Vec<(String, i64)>,
    created: HashSet<String>,
    stats: ApplyStats,
    buf: Vec<u8>,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// Applies the tar stream `r` to the directory `root`.
pub(super) fn apply<R: Read>(
    root: &Path,
    r: R,
    layer: &str,
    opts: &ApplyOptions,
) -> Result<ApplyStats, UnpackError> {
    let root_fd = rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Root {
        path: root.into(),
        source: errno(e),
    })?;
    let mut a = Applier {
        root: root_fd,
        layer,
        opts,
        cache: None,
        dir_times: Vec::new(),
        created: HashSet::new(),
        stats: ApplyStats::default(),
        buf: vec![0u8; 256 << 10],
    };
    let mut archive = tar::Archive::new(r);
    let read_err = |e| UnpackError::Read {
        layer: layer.to_string(),
        source: e,
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        a.stats.entries += 1;
        if a.stats.entries > opts.max_entries {
            return Err(UnpackError::TooLarge {
                layer: layer.into(),
                what: "entries",
                limit: opts.max_entries,
            });
        }
        a.entry(&mut entry)?;
    }
    a.finish_dir_times();
    Ok(a.stats)
}

impl Applier<'_> {
    fn bad(&self, entry: &str, reason: impl Into<String>) -> UnpackError {
        UnpackError::BadEntry {
            layer: self.layer.into(),
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    fn op(&self, entry: &str, op: &'static str) -> impl FnOnce(Errno) -> UnpackError + 'static {
        let layer = self.layer.to_string();
        let entry = entry.to_string();
        move |e| UnpackError::Entry {
            layer,
            entry,
            op,
            source: errno(e),
        }
    }

    fn resolve(&self, entry: &str) -> impl FnOnce(ResolveError) -> UnpackError + 'static {
        let layer = self.layer.to_string();
        let entry = entry.to_string();
        move |e| match e {
            ResolveError::Escapes => UnpackError::Escape { layer, entry },
            ResolveError::Errno(e) => UnpackError::Entry {
                layer,
                entry,
                op: "resolve parent directory",
                source: errno(e),
            },
        }
    }

    /// The parent directory fd for `comps`, cached for consecutive entries.
    fn parent(
        &mut self,
        comps: &[&str],
        entry: &str,
        create: bool,
    ) -> Result<BorrowedFd<'_>, UnpackError> {
        let key = comps.join("/");
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let fd = fs::open_dir_beneath(self.root.as_fd(), comps, create)
                .map_err(self.resolve(entry))?;
            self.cache = Some((key, fd));
        }
        Ok(self.cache.as_ref().expect("just set").1.as_fd())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).map_err(|e| {
            self.bad(
                &String::from_utf8_lossy(e.as_bytes()),
                "file name is not valid UTF-8 (unsupported)",
            )
        })?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = components(&name).map_err(|r| self.bad(&name, r))?;
        let Some((base, parent)) = comps.split_last() else {
            return Ok(()); // the root itself
        };
        let (base, parent) = (*base, parent.to_vec());
        let layer = self.opts.whiteouts != WhiteoutMode::Plain;
        if let Some(rest) = base.strip_prefix(WHITEOUT_PREFIX).filter(|_| layer) {
            self.cache = None;
            if base == OPAQUE {
                return self.opaque(&parent, &name);
            }
            if rest.starts_with(".wh.") {
                return Ok(()); // aufs bookkeeping (.wh..wh.plnk etc.)
            }
            if rest.is_empty() || rest == "." || rest == ".." {
                return Err(self.bad(&name, "whiteout of an invalid name"));
            }
            return self.whiteout(&parent, rest, &name);
        }
        let meta = self.meta(entry, &name)?;
        let track = self.opts.whiteouts == WhiteoutMode::Apply;
        if track {
            self.created.insert(comps.join("/"));
        }
        match kind {
            EntryType::Directory => self.directory(&parent, base, &name, &meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(&parent, base, &name, &meta, entry)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target = String::from_utf8(target)
                    .map_err(|_| self.bad(&name, "symlink target is not valid UTF-8"))?;
                self.symlink(&parent, base, &name, &target, &meta)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target = String::from_utf8(target)
                    .map_err(|_| self.bad(&name, "hardlink target is not valid UTF-8"))?;
                self.hardlink(&parent, base, &name, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.device(&parent, base, &name, ft, rfs::makedev(major, minor), &meta)
            }
            other => Err(self.bad(&name, format!("unsupported entry type {other:?}"))),
        }
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let mut m = Meta {
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
        };
        let pax = entry.pax_extensions().map_err(|e| UnpackError::Read {
            layer: self.layer.into(),
            source: e,
        })?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|e| UnpackError::Read {
                    layer: self.layer.into(),
                    source: e,
                })?;
                let Ok(key) = ext.key() else { continue };
                let val = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(val)
                        .ok()
                        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    "uid" => m.uid = num().ok_or_else(|| self.bad(name, "bad pax uid"))? as u64,
                    "gid" => m.gid = num().ok_or_else(|| self.bad(name, "bad pax gid"))? as u64,
                    "mtime" => m.mtime = num().unwrap_or(m.mtime),
                    k => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            if m.xattrs.len() >= 128 || val.len() > 64 * 1024 {
                                return Err(self.bad(name, "too many or too large xattrs"));
                            }
                            m.xattrs.push((x.to_string(), val.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(m)
    }

    /// Removes whatever is at `base` in the cached parent unless it is a directory and
    /// `keep_dir` is set; returns whether a directory was kept.
    fn clear_slot(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        keep_dir: bool,
    ) -> Result<bool, UnpackError> {
        let dir = self.parent(parent, name, true)?;
        let st = fs::lstat(dir, base).map_err(self.op(name, "stat existing"))?;
        match st {
            None => Ok(false),
            Some(st) if keep_dir && fs::is_dir(&st) => Ok(true),
            Some(st) => {
                let was_dir = fs::is_dir(&st);
                let dir = self.parent(parent, name, true)?;
                fs::remove_all(dir, base).map_err(self.op(name, "remove existing"))?;
                if was_dir {
                    self.cache = None;
                }
                Ok(false)
            }
        }
    }

    fn ids(&self, meta: &Meta, name: &str) -> Result<Option<(Uid, Gid)>, UnpackError> {
        if !self.opts.chown {
            return Ok(None);
        }
        let (u, g) = (u32::try_from(meta.uid).ok(), u32::try_from(meta.gid).ok());
        let uid = u
            .and_then(|u| self.opts.id_mapping.uid(u))
            .ok_or_else(|| self.bad(name, format!("uid {} is not mapped", meta.uid)))?;
        let gid = g
            .and_then(|g| self.opts.id_mapping.gid(g))
            .ok_or_else(|| self.bad(name, format!("gid {} is not mapped", meta.gid)))?;
        Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
    }

    fn set_xattrs(&self, fd: BorrowedFd<'_>, name: &str, meta: &Meta) -> Result<(), UnpackError> {
        for (k, v) in &meta.xattrs {
            // overlay's own xattrs would change how the snapshot is merged: never from a layer
            if k.starts_with("trusted.overlay.") || k.starts_with("user.overlay.") {
                tracing::warn!(layer = self.layer, entry = name, xattr = %k, "ignoring overlay xattr in layer");
                continue;
            }
            match rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty()) {
                Ok(()) => {}
                Err(e @ (Errno::PERM | Errno::NOTSUP | Errno::ACCESS)) => {
                    tracing::warn!(layer = self.layer, entry = name, xattr = %k, error = %e, "xattr not set")
                }
                Err(e) => return Err(self.op(name, "set xattr")(e)),
            }
        }
        Ok(())
    }

    fn times(mtime: i64) -> Timestamps {
        let t = Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }

    fn directory(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let kept = self.clear_slot(parent, base, name, true)?;
        let dir = self.parent(parent, name, true)?;
        if !kept {
            rfs::mkdirat(dir, base, Mode::from_raw_mode(0o700))
                .map_err(self.op(name, "create directory"))?;
        }
        let dir = self.parent(parent, name, true)?;
        let fd = fs::open_dir_rd(dir, base).map_err(self.op(name, "open directory"))?;
        if let Some((u, g)) = self.ids(meta, name)? {
            rfs::fchown(&fd, Some(u), Some(g)).map_err(self.op(name, "chown"))?;
        }
        rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(self.op(name, "chmod"))?;
        self.set_xattrs(fd.as_fd(), name, meta)?;
        let mut key = parent.join("/");
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(base);
        self.dir_times.push((key, meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        meta: &Meta,
        data: &mut R,
    ) -> Result<(), UnpackError> {
        self.clear_slot(parent, base, name, false)?;
        let dir = self.parent(parent, name, true)?;
        let fd = rfs::openat(
            dir,
            base,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(self.op(name, "create file"))?;
        let mut f = File::from(fd);
        loop {
            let n = data.read(&mut self.buf).map_err(|e| UnpackError::Read {
                layer: self.layer.into(),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            f.write_all(&self.buf[..n])
                .map_err(|e| UnpackError::Entry {
                    layer: self.layer.into(),
                    entry: name.into(),
                    op: "write file",
                    source: e,
                })?;
            self.stats.bytes += n as u64;
        }
        if let Some((u, g)) = self.ids(meta, name)? {
            rfs::fchown(&f, Some(u), Some(g)).map_err(self.op(name, "chown"))?;
        }
        // after chown, which clears set-id bits
        rfs::fchmod(&f, Mode::from_raw_mode(meta.mode)).map_err(self.op(name, "chmod"))?;
        self.set_xattrs(f.as_fd(), name, meta)?;
        rfs::futimens(&f, &Self::times(meta.mtime)).map_err(self.op(name, "set times"))?;
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        target: &str,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        if target.is_empty() || target.len() > 4096 || target.contains('\0') {
            return Err(self.bad(name, "invalid symlink target"));
        }
        self.clear_slot(parent, base, name, false)?;
        let ids = self.ids(meta, name)?;
        let dir = self.parent(parent, name, true)?;
        rfs::symlinkat(target, dir, base).map_err(self.op(name, "create symlink"))?;
        let dir = self.parent(parent, name, true)?;
        if let Some((u, g)) = ids {
            rfs::chownat(dir, base, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(self.op(name, "chown symlink"))?;
        }
        let dir = self.parent(parent, name, true)?;
        rfs::utimensat(
            dir,
            base,
            &Self::times(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.op(name, "set times"))?;
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        target: &str,
    ) -> Result<(), UnpackError> {
        let tcomps = components(target)
            .map_err(|r| self.bad(name, format!("hardlink target {target:?}: {r}")))?;
        let Some((tbase, tparent)) = tcomps.split_last() else {
            return Err(self.bad(name, "hardlink to the root"));
        };
        let tdir =
            fs::open_dir_beneath(self.root.as_fd(), tparent, false).map_err(|e| match e {
                ResolveError::Escapes => UnpackError::Escape {
                    layer: self.layer.into(),
                    entry: format!("{name} -> {target}"),
                },
                ResolveError::Errno(e) => self.op(name, "resolve hardlink target")(e),
            })?;
        let tst = fs::lstat(tdir.as_fd(), tbase)
            .map_err(self.op(name, "stat hardlink target"))?
            .ok_or_else(|| self.bad(name, format!("hardlink target {target:?} does not exist")))?;
        if fs::is_dir(&tst) {
            return Err(self.bad(name, format!("hardlink target {target:?} is a directory")));
        }
        let dir = self.parent(parent, name, true)?;
        if let Some(st) = fs::lstat(dir, base).map_err(self.op(name, "stat existing"))? {
            if st.st_ino == tst.st_ino && st.st_dev == tst.st_dev {
                return Ok(());
            }
        }
        self.clear_slot(parent, base, name, false)?;
        let dir = self.parent(parent, name, true)?;
        rfs::linkat(tdir.as_fd(), *tbase, dir, base, AtFlags::empty())
            .map_err(self.op(name, "create hardlink"))?;
        Ok(())
    }

    fn device(
        &mut self,
        parent: &[&str],
        base: &str,
        name: &str,
        ft: FileType,
        dev: rfs::Dev,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.clear_slot(parent, base, name, false)?;
        let ids = self.ids(meta, name)?;
        let dir = self.parent(parent, name, true)?;
        match rfs::mknodat(dir, base, ft, Mode::from_raw_mode(meta.mode), dev) {
            Ok(()) => {}
            Err(Errno::PERM) if self.opts.skip_devices_on_eperm && ft != FileType::Fifo => {
                if self.stats.skipped_devices == 0 {
                    tracing::warn!(
                        layer = self.layer,
                        entry = name,
                        "cannot create device nodes without privilege: skipping them"
                    );
                }
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            Err(e) => return Err(self.op(name, "create device node")(e)),
        }
        let dir = self.parent(parent, name, true)?;
        if let Some((u, g)) = ids {
            rfs::chownat(dir, base, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(self.op(name, "chown"))?;
        }
        let chmod_err = self.op(name, "chmod");
        let dir = self.parent(parent, name, true)?;
        rfs::chmodat(dir, base, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(chmod_err)?;
        let times_err = self.op(name, "set times");
        let dir = self.parent(parent, name, true)?;
        rfs::utimensat(
            dir,
            base,
            &Self::times(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(times_err)?;
        Ok(())
    }

    fn whiteout(&mut self, parent: &[&str], target: &str, name: &str) -> Result<(), UnpackError> {
        match self.opts.whiteouts.clone() {
            WhiteoutMode::Overlay { .. } => {
                self.clear_slot(parent, target, name, false)?;
                let dir = self.parent(parent, name, true)?;
                rfs::mknodat(
                    dir,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )
                .map_err(self.op(name, "create overlay whiteout"))?;
            }
            WhiteoutMode::Apply => {
                let mut path = parent.join("/");
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(target);
                if self.created.contains(&path) {
                    return Ok(()); // whiteouts only hide lower layers
                }
                match fs::open_dir_beneath(self.root.as_fd(), parent, false) {
                    Ok(dir) => fs::remove_all(dir.as_fd(), target)
                        .map_err(self.op(name, "remove whited-out path"))?,
                    Err(ResolveError::Errno(Errno::NOENT))
                    | Err(ResolveError::Errno(Errno::NOTDIR)) => {}
                    Err(e) => return Err(self.resolve(name)(e)),
                }
            }
            WhiteoutMode::Plain => unreachable!("plain archives have no whiteouts"),
        }
        Ok(())
    }

    fn opaque(&mut self, parent: &[&str], name: &str) -> Result<(), UnpackError> {
        let dir =
            fs::open_dir_beneath(self.root.as_fd(), parent, true).map_err(self.resolve(name))?;
        let rd =
            fs::open_dir_rd(dir.as_fd(), ".").map_err(self.op(name, "open opaque directory"))?;
        match self.opts.whiteouts.clone() {
            WhiteoutMode::Overlay { xattr_prefix } => {
                let key = format!("{xattr_prefix}overlay.opaque");
                rfs::fsetxattr(&rd, key.as_str(), b"y", XattrFlags::empty())
                    .map_err(self.op(name, "set opaque xattr"))?;
            }
            WhiteoutMode::Apply => {
                let prefix = parent.join("/");
                self.clear_lower(rd.as_fd(), &prefix)
                    .map_err(self.op(name, "clear opaque directory"))?;
            }
            WhiteoutMode::Plain => unreachable!("plain archives have no whiteouts"),
        }
        Ok(())
    }

    /// Removes from `dir` (path `prefix`) everything not created by this layer.
    fn clear_lower(&self, dir: BorrowedFd<'_>, prefix: &str) -> Result<(), Errno> {
        let child = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}/{n}")
            }
        };
        let mut names = Vec::new();
        for e in rfs::Dir::read_from(dir)? {
            let n = e?.file_name().to_string_lossy().to_string();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        for n in names {
            let p = child(&n);
            if !self.created.contains(&p) {
                fs::remove_all(dir, &n)?;
            } else if fs::lstat(dir, &n)?.is_some_and(|s| fs::is_dir(&s)) {
                let sub = fs::open_dir_rd(dir, &n)?;
                self.clear_lower(sub.as_fd(), &p)?;
            }
        }
        Ok(())
    }

    fn finish_dir_times(&mut self) {
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
        for (p, t) in times {
            let comps: Vec<&str> = p.split('/').collect();
            let Some((base, parent)) = comps.split_last() else {
                continue;
            };
            if let Ok(dir) = fs::open_dir_beneath(self.root.as_fd(), parent, false) {
                let _ = rfs::utimensat(&dir, *base, &Self::times(t), AtFlags::SYMLINK_NOFOLLOW);
            }
        }
    }
}

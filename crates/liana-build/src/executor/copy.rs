//! COPY and ADD: sources from the context (through [`crate::context`]: nothing
//! outside it, nothing `.dockerignore` excludes), from heredocs, or from an earlier
//! stage or an image (`--from`, resolved inside that root file system). Destinations
//! are resolved inside the step's root file system; existing entries are replaced, never
//! followed. The cache key covers the sources' names, modes and content.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use liana_container::resolve::{Create, Root};

use super::state::StageState;
use super::step::Leftovers;
use super::{BuildError, Builder};
use crate::context::Ignore;
use crate::parser::{CopyArgs, Instruction};

/// One resolved source.
#[derive(Debug, Clone)]
enum Source {
    /// A host path; `rel` is its context-relative name (for .dockerignore), if any;
    /// `keep` the path it keeps under the destination (`--parents`).
    Path {
        host: PathBuf,
        rel: Option<String>,
        keep: Option<String>,
    },
    /// Inline content (heredoc).
    Inline { name: String, content: String },
    /// A downloaded file (ADD of a URL), and its name.
    Download { file: PathBuf, name: String },
}

/// Downloads `url` into `dir`; verifies `checksum` (`sha256:…`) when given; returns
/// the file and its digest.
fn download(
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
) -> Result<(PathBuf, liana_images::digest::Digest), BuildError> {
    let fail = |what: String| BuildError::Invalid(format!("ADD {url}: {what}"));
    std::fs::create_dir_all(dir).map_err(BuildError::io("create", dir))?;
    let file = dir.join(
        liana_images::digest::sha256_of(url.as_bytes())
            .to_string()
            .replace(':', "-"),
    );
    let mut resp = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut out = std::fs::File::create(&file).map_err(BuildError::io("create", &file))?;
    let mut w = liana_images::digest::HashingWriter::new(
        &mut out,
        liana_images::digest::Digester::default(),
    );
    std::io::copy(&mut resp.body_mut().as_reader(), &mut w).map_err(|e| fail(e.to_string()))?;
    let (digest, _, _) = w.finish();
    if let Some(want) = checksum {
        if want != digest.to_string() {
            return Err(fail(format!(
                "checksum mismatch: got {digest}, --checksum={want}"
            )));
        }
    }
    Ok((file, digest))
}

/// Ownership and mode of copied files.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
}

pub(crate) fn hash_tree(
    h: &mut liana_images::digest::Digester,
    p: &Path,
    name: &str,
) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(p)?;
    h.update(format!("{name}\0{:o}\0", m.mode()).as_bytes());
    if m.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for n in names {
            hash_tree(h, &p.join(&n), &format!("{name}/{}", n.to_string_lossy()))?;
        }
    } else if m.file_type().is_symlink() {
        h.update(std::fs::read_link(p)?.as_os_str().as_encoded_bytes());
    } else if m.is_file() {
        let mut f = std::fs::File::open(p)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(())
}

fn parse_chmod(s: &str) -> Result<u32, BuildError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Invalid(format!("--chmod={s}: expected an octal mode")))
}

fn parse_chown(s: &str, rootfs: &Path) -> Result<(u32, u32), BuildError> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let passwd = liana_engine::spec::process::read_in_root(rootfs, "/etc/passwd");
    let group = liana_engine::spec::process::read_in_root(rootfs, "/etc/group");
    let user = liana_engine::spec::process::resolve_user(
        &match g {
            Some(g) => format!("{u}:{g}"),
            None => u.to_string(),
        },
        passwd.as_deref(),
        group.as_deref(),
    )
    .map_err(|e| BuildError::Invalid(format!("--chown={s}: {e}")))?;
    let gid = if g.is_none() && u.parse::<u32>().is_ok() {
        user.uid
    } else {
        user.gid
    };
    Ok((user.uid, gid))
}

/// The compression of an archive `ADD` unpacks, from its first bytes; `None` when it is
/// not an archive (copied as a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

fn archive_kind(p: &Path) -> Option<Archive> {
    let mut b = [0u8; 512];
    let mut f = std::fs::File::open(p).ok()?;
    let mut n = 0;
    while n < b.len() {
        match f.read(&mut b[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let b = &b[..n];
    if b.starts_with(&[0x1f, 0x8b]) {
        Some(Archive::Gzip)
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Archive::Zstd)
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Archive::Xz)
    } else if b.starts_with(b"BZh") && b.len() > 3 && (b'1'..=b'9').contains(&b[3]) {
        Some(Archive::Bzip2)
    } else if b.len() >= 262 && &b[257..262] == b"ustar" {
        Some(Archive::Tar)
    } else {
        None
    }
}

/// Unpacks the archive `p` into `dest` (a directory already resolved inside the
/// container's root) through the image unpacker: every entry resolved beneath `dest`
/// (openat2 RESOLVE_IN_ROOT), ownership kept, sizes bounded; `.wh.` names are plain
/// files here, as docker's `ADD` leaves them.
fn unpack(p: &Path, kind: Archive, dest: &Path) -> Result<(), BuildError> {
    let f = std::io::BufReader::with_capacity(
        256 << 10,
        std::fs::File::open(p).map_err(BuildError::io("open", p))?,
    );
    let r: Box<dyn Read> = match kind {
        Archive::Tar => Box::new(f),
        Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Archive::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(BuildError::io("read", p))?)
        }
        Archive::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
        Archive::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
    };
    let opts = liana_images::unpack::ApplyOptions {
        whiteouts: liana_images::unpack::WhiteoutMode::Plain,
        skip_devices_on_eperm: false,
        ..Default::default()
    };
    liana_images::unpack::apply_layer(
        dest,
        r,
        liana_images::manifest::Compression::None,
        None,
        &p.display().to_string(),
        &opts,
    )?;
    Ok(())
}

/// Removes a non-directory entry at `p` (never following it).
fn clear(p: &Path) -> Result<(), BuildError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => std::fs::remove_file(p).map_err(BuildError::io("replace", p)),
        Err(_) => Ok(()),
    }
}

struct Copier<'r> {
    root: &'r Root,
    attrs: Attrs,
    ignore: Option<&'r Ignore>,
    /// `--exclude` patterns, matched against paths relative to the source.
    exclude: Option<&'r Ignore>,
    /// Rootless: no chown; owners to record in the layer instead.
    owners: Option<&'r std::cell::RefCell<std::collections::HashMap<String, (u32, u32)>>>,
}

impl Copier<'_> {
    /// The host path of `rel` in the destination root, its parent resolved inside it.
    fn dest_path(&self, rel: &str) -> Result<PathBuf, BuildError> {
        let p = Path::new(rel);
        let parent = p.parent().unwrap_or(Path::new(""));
        let name = p
            .file_name()
            .ok_or_else(|| BuildError::Invalid(format!("bad destination {rel:?}")))?;
        let pr = self
            .root
            .create_all(parent, Create::Dir)
            .map_err(BuildError::io("create directory", parent))?;
        Ok(self.root.path().join(pr).join(name))
    }

    fn finish(&self, p: &Path, m: &std::fs::Metadata, keep_owner: bool) -> Result<(), BuildError> {
        let (uid, gid) = match self.attrs.owner {
            Some(o) => o,
            None if keep_owner => (m.uid(), m.gid()),
            None => (0, 0),
        };
        match self.owners {
            Some(o) => {
                if let (Some(ow), Ok(rel)) = (self.attrs.owner, p.strip_prefix(self.root.path())) {
                    o.borrow_mut()
                        .insert(rel.to_string_lossy().into_owned(), ow);
                }
            }
            None => std::os::unix::fs::lchown(p, Some(uid), Some(gid))
                .map_err(BuildError::io("chown", p))?,
        }
        if !m.file_type().is_symlink() {
            let mode = self.attrs.chmod.unwrap_or(m.mode() & 0o7777);
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(BuildError::io("chmod", p))?;
        }
        let t = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: m.atime(),
                tv_nsec: m.atime_nsec(),
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec(),
            },
        };
        let _ = rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &t,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
        Ok(())
    }

    /// Copies `src` (any kind, not followed) to the destination `rel`.
    fn copy(
        &self,
        src: &Path,
        rel: &str,
        ctx_rel: Option<&str>,
        keep: bool,
    ) -> Result<(), BuildError> {
        self.copy_in(src, rel, ctx_rel, "", keep)
    }

    /// `src_rel`: the path relative to the top-level source (for `--exclude`).
    fn copy_in(
        &self,
        src: &Path,
        rel: &str,
        ctx_rel: Option<&str>,
        src_rel: &str,
        keep: bool,
    ) -> Result<(), BuildError> {
        if let Some(ex) = self.exclude {
            if !src_rel.is_empty() && ex.excluded(src_rel) {
                return Ok(());
            }
        }
        if let (Some(ig), Some(cr)) = (self.ignore, ctx_rel) {
            if !cr.is_empty() && ig.excluded(cr) && !ig.may_reinclude_under(cr) {
                return Ok(());
            }
        }
        let m = std::fs::symlink_metadata(src).map_err(BuildError::io("stat", src))?;
        let ft = m.file_type();
        if ft.is_dir() {
            let r = self
                .root
                .create_all(Path::new(rel), Create::Dir)
                .map_err(BuildError::io("create directory", rel))?;
            let host = self.root.path().join(&r);
            let mut names: Vec<_> = std::fs::read_dir(src)
                .map_err(BuildError::io("list", src))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .map_err(BuildError::io("list", src))?;
            names.sort();
            for n in names {
                let ns = n.to_string_lossy();
                let child_ctx = ctx_rel.map(|c| {
                    if c.is_empty() {
                        ns.to_string()
                    } else {
                        format!("{c}/{ns}")
                    }
                });
                let child_src = if src_rel.is_empty() {
                    ns.to_string()
                } else {
                    format!("{src_rel}/{ns}")
                };
                self.copy_in(
                    &src.join(&n),
                    &format!("{r}/{ns}"),
                    child_ctx.as_deref(),
                    &child_src,
                    keep,
                )?;
            }
            return self.finish(&host, &m, keep);
        }
        if let (Some(ig), Some(cr)) = (self.ignore, ctx_rel) {
            if !cr.is_empty() && ig.excluded(cr) {
                return Ok(());
            }
        }
        let dst = self.dest_path(rel)?;
        if std::fs::symlink_metadata(&dst).is_ok_and(|d| d.is_dir()) {
            std::fs::remove_dir_all(&dst).map_err(BuildError::io("replace", &dst))?;
        }
        clear(&dst)?;
        if ft.is_symlink() {
            let t = std::fs::read_link(src).map_err(BuildError::io("read link", src))?;
            std::os::unix::fs::symlink(&t, &dst).map_err(BuildError::io("create", &dst))?;
        } else if ft.is_file() {
            let mut i = std::fs::File::open(src).map_err(BuildError::io("open", src))?;
            let mut o = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)
                .map_err(BuildError::io("create", &dst))?;
            std::io::copy(&mut i, &mut o).map_err(BuildError::io("copy to", &dst))?;
        } else {
            // devices, fifos, sockets are not copied
            return Ok(());
        }
        self.finish(&dst, &m, keep)
    }
}

impl Builder<'_> {
    pub(crate) fn copy_step(
        &self,
        _stage: usize,
        st: &mut StageState,
        ins: &Instruction,
        c: &CopyArgs,
        text: &str,
    ) -> Result<(), BuildError> {
        let kw = if c.add { "ADD" } else { "COPY" };
        let dest = self.expand(st, &c.dest)?;
        let chown = c.chown.as_deref().map(|x| self.expand(st, x)).transpose()?;
        let chmod = c.chmod.as_deref().map(parse_chmod).transpose()?;
        let from = c.from.as_deref().map(|x| self.expand(st, x)).transpose()?;
        let mut sources = Vec::new();
        let mut hasher = liana_images::digest::Digester::default();
        let mut globbed = false;
        for raw in &c.srcs {
            if let Some(marker) = raw.strip_prefix("<<") {
                let name = marker.trim_start_matches('-').trim_matches(['"', '\'']);
                let h =
                    c.heredocs.iter().find(|h| h.name == name).ok_or_else(|| {
                        BuildError::Invalid(format!("{kw}: no heredoc named {name}"))
                    })?;
                let content = if h.expand {
                    self.expand(st, &format!("\"{}\"", h.body.replace('"', "\\\"")))?
                } else {
                    h.body.clone()
                };
                hasher.update(format!("inline\0{name}\0{content}\0").as_bytes());
                sources.push(Source::Inline {
                    name: name.to_string(),
                    content,
                });
                continue;
            }
            let s = self.expand(st, raw)?;
            if s.starts_with("http://") || s.starts_with("https://") {
                if !c.add {
                    return Err(BuildError::Invalid(format!(
                        "COPY {s}: COPY takes no URLs (use ADD)"
                    )));
                }
                let dir = self
                    .engine
                    .paths()
                    .runroot
                    .join("build")
                    .join(format!("{}-downloads", self.build_id));
                let checksum = c
                    .checksum
                    .as_deref()
                    .map(|x| self.expand(st, x))
                    .transpose()?;
                let (file, digest) = download(&s, &dir, checksum.as_deref())?;
                hasher.update(format!("url\0{s}\0{digest}\0").as_bytes());
                let name = s
                    .split(['?', '#'])
                    .next()
                    .and_then(|u| u.rsplit('/').next())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("index.html")
                    .to_string();
                sources.push(Source::Download { file, name });
                continue;
            }
            if s.starts_with("git@") {
                return Err(BuildError::Invalid(format!(
                    "{kw} {s}: git sources are not supported"
                )));
            }
            globbed |= crate::context::has_glob(&s);
            // --parents: the path kept under the destination starts after a `/./`.
            let strip = s
                .find("/./")
                .map_or(0, |i| crate::context::clean_segments(&s[..i]).len());
            let keep = |rel: &str| {
                c.parents.then(|| {
                    let segs = crate::context::clean_segments(rel);
                    segs[strip.min(segs.len())..].join("/")
                })
            };
            if from.is_some() {
                hasher.update(format!("from\0{s}\0").as_bytes());
                sources.push(Source::Path {
                    keep: keep(&s),
                    host: PathBuf::from(s),
                    rel: None,
                });
                continue;
            }
            for (host, rel) in self.ctx.sources(&s)? {
                hash_tree(&mut hasher, &host, &rel).map_err(BuildError::io("read", &host))?;
                sources.push(Source::Path {
                    host,
                    keep: keep(&rel),
                    rel: Some(rel),
                });
            }
        }
        let from_stage = match &from {
            None => None,
            Some(f) => match crate::planner::stage_ref(self.df, f, _stage) {
                Some(i) => Some(self.stage_done(i).ok_or_else(|| {
                    BuildError::Invalid(format!("--from={f}: that stage did not run"))
                })?),
                None => {
                    let rec = self.base_image(f)?;
                    Some(StageState::from_image(self.store, &rec)?)
                }
            },
        };
        let key = crate::cache::key(
            &st.key,
            &[
                kw,
                &dest,
                chown.as_deref().unwrap_or(""),
                &format!("{chmod:?}"),
                from_stage.as_ref().map(|s| s.key.as_str()).unwrap_or(""),
                hasher.finish().as_ref(),
                &format!("{:?}", c.exclude),
                if c.parents { "parents" } else { "" },
            ],
        );
        let multiple = sources.len() > 1 || globbed;
        let exclude = (!c.exclude.is_empty()).then(|| Ignore::parse(&c.exclude.join("\n")));
        let add = c.add;
        self.layer_step(st, key, text, &ins.text, |b, st, a, _n| {
            let root = Root::open(&a.rootfs).map_err(BuildError::io("open", &a.rootfs))?;
            let workdir = st
                .config
                .working_dir()
                .clone()
                .unwrap_or_else(|| "/".into());
            let dest_abs = if dest.starts_with('/') {
                dest.clone()
            } else {
                format!("{}/{dest}", workdir.trim_end_matches('/'))
            };
            let owner = chown
                .as_deref()
                .map(|s| parse_chown(s, &a.rootfs))
                .transpose()?;
            let attrs = Attrs { owner, chmod };
            let dest_dir = dest.ends_with('/')
                || multiple
                || root
                    .resolve(Path::new(&dest_abs))
                    .ok()
                    .is_some_and(|r| root.path().join(r).is_dir());
            let view = match &from_stage {
                Some(fs) => Some(b.view(fs)?),
                None => None,
            };
            let src_root = match &view {
                Some(v) => Some(Root::open(&v.rootfs).map_err(BuildError::io("open", &v.rootfs))?),
                None => None,
            };
            let owners = std::cell::RefCell::new(std::collections::HashMap::new());
            let cp = Copier {
                root: &root,
                attrs,
                ignore: if from_stage.is_none() {
                    Some(&b.ctx.ignore)
                } else {
                    None
                },
                exclude: exclude.as_ref(),
                owners: b.engine.rootless().then_some(&owners),
            };
            let base = dest_abs.trim_end_matches('/');
            // A heredoc or a download: one file named `name` (in a directory
            // destination), then its mode (`--chmod`, else `mode`) and owner.
            let single_file = |name: &str| -> Result<PathBuf, BuildError> {
                let rel = if dest_dir {
                    format!("{base}/{name}")
                } else {
                    dest_abs.clone()
                };
                let p = cp.dest_path(&rel)?;
                clear(&p)?;
                Ok(p)
            };
            let finish_single = |p: &Path, mode: u32| -> Result<(), BuildError> {
                let m = std::fs::metadata(p).map_err(BuildError::io("stat", p))?;
                let mut a2 = attrs;
                a2.chmod = Some(chmod.unwrap_or(mode));
                Copier { attrs: a2, ..cp }.finish(p, &m, false)
            };
            for s in &sources {
                match s {
                    Source::Inline { name, content } => {
                        let p = single_file(name)?;
                        std::fs::write(&p, content).map_err(BuildError::io("write", &p))?;
                        finish_single(&p, 0o644)?;
                    }
                    Source::Download { file, name } => {
                        let p = single_file(name)?;
                        std::fs::copy(file, &p).map_err(BuildError::io("write", &p))?;
                        finish_single(&p, 0o600)?;
                    }
                    Source::Path {
                        host,
                        rel,
                        keep: under,
                    } => {
                        let (host, keep) = match &src_root {
                            Some(sr) => {
                                let r = sr.resolve(host).map_err(|_| {
                                    BuildError::Invalid(format!(
                                        "{}: no such file or directory in --from={}",
                                        host.display(),
                                        from.as_deref().unwrap_or("")
                                    ))
                                })?;
                                (sr.path().join(r), true)
                            }
                            None => (host.clone(), false),
                        };
                        let is_dir = host.is_dir();
                        let archive = (add && !is_dir && src_root.is_none())
                            .then(|| archive_kind(&host))
                            .flatten();
                        if let Some(kind) = archive {
                            let r = root
                                .create_all(Path::new(&dest_abs), Create::Dir)
                                .map_err(BuildError::io("create directory", &dest_abs))?;
                            unpack(&host, kind, &root.path().join(r))?;
                            continue;
                        }
                        let target = if let Some(k) = under.as_deref().filter(|k| !k.is_empty()) {
                            format!("{base}/{k}")
                        } else if is_dir || !dest_dir {
                            dest_abs.clone()
                        } else {
                            let name = host
                                .file_name()
                                .map(|n| n.to_string_lossy().to_string())
                                .unwrap_or_default();
                            format!("{base}/{name}")
                        };
                        // top-level sources were resolved (symlinks followed) inside their root
                        cp.copy(&host, &target, rel.as_deref().filter(|_| is_dir), keep)?;
                    }
                }
            }
            drop(view);
            Ok(Leftovers(Vec::new(), owners.into_inner()))
        })
    }
}

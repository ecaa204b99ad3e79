//! OCI image layouts (`image-layout.md`): `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex};

use super::{import_blob, io_err, ArchiveError, TempDir};
use crate::digest;
use crate::manifest::{self, Platform};
use crate::metadata::{now_secs, ImageRecord};
use crate::reference::Reference;
use crate::store::ImageStore;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const IMAGE_NAME: &str = "io.containerd.image.name";

/// Resolves `rel` under `dir` refusing symlinks in any component (archives are
/// untrusted: a symlinked blob could point anywhere on the host).
pub(super) fn safe_path(
    dir: &Path,
    rel: &str,
    archive: &Path,
) -> Result<std::path::PathBuf, ArchiveError> {
    let comps = crate::unpack::components_of(rel).map_err(|r| ArchiveError::UnknownFormat {
        path: archive.into(),
        reason: format!("path {rel:?}: {r}"),
    })?;
    let mut p = dir.to_path_buf();
    for c in comps {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ArchiveError::UnknownFormat {
                    path: archive.into(),
                    reason: format!("{rel:?} is a symlink; refused"),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ArchiveError::Io {
                    op: "open",
                    path: p,
                    source: e,
                })
            }
        }
    }
    Ok(p)
}

fn blob_rel(d: &digest::Digest) -> String {
    format!("blobs/{}/{}", digest::algorithm(d), digest::hex_part(d))
}

fn copy_blob(store: &ImageStore, d: &Descriptor, dest: &Path) -> Result<(), ArchiveError> {
    let src = store
        .content()
        .blob_path(d.digest())
        .map_err(|e| ArchiveError::Blob {
            path: dest.into(),
            what: d.digest().to_string(),
            source: e,
        })?;
    let to = dest.join(blob_rel(d.digest()));
    if to.exists() {
        return Ok(());
    }
    std::fs::copy(&src, &to).map_err(io_err("copy blob to", &to))?;
    Ok(())
}

pub(super) fn save_dir(
    store: &ImageStore,
    recs: &[ImageRecord],
    dest: &Path,
) -> Result<(), ArchiveError> {
    for alg in ["sha256", "sha512"] {
        let d = dest.join("blobs").join(alg);
        std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
    }
    let lay = dest.join("oci-layout");
    std::fs::write(&lay, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err("write", &lay))?;
    let mut entries = Vec::new();
    for r in recs {
        let m = store.manifest(r)?;
        copy_blob(store, &r.manifest, dest)?;
        copy_blob(store, m.config(), dest)?;
        for l in m.layers() {
            copy_blob(store, l, dest)?;
        }
        let mut d = r.manifest.clone();
        let reference = Reference::parse(&r.name).map_err(|e| ArchiveError::Reference {
            path: dest.into(),
            source: e,
        })?;
        let mut ann = HashMap::new();
        ann.insert(IMAGE_NAME.to_string(), r.name.clone());
        if let Some(t) = reference.tag() {
            ann.insert(REF_NAME.to_string(), t.to_string());
        }
        d.set_annotations(Some(ann));
        entries.push(d);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::media::OCI_INDEX,
        "manifests": entries,
    });
    let ip = dest.join("index.json");
    std::fs::write(&ip, serde_json::to_vec(&index).expect("serializes"))
        .map_err(io_err("write", &ip))?;
    Ok(())
}

pub(super) fn save_tar(
    store: &ImageStore,
    recs: &[ImageRecord],
    dest: &Path,
) -> Result<(), ArchiveError> {
    let tmp = TempDir::new(store, "save")?;
    save_dir(store, recs, &tmp.0)?;
    write_tar(&tmp.0, dest)
}

/// Tars the contents of `dir` (sorted, no `./` prefix) into `dest`, atomically.
pub(super) fn write_tar(dir: &Path, dest: &Path) -> Result<(), ArchiveError> {
    let part = dest.with_extension("partial");
    let f = std::fs::File::create(&part).map_err(io_err("create", &part))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .map_err(io_err("list", &d))?
            .filter_map(|e| e.ok())
            .collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            let p = e.path();
            if p.is_dir() {
                b.append_dir(&name, &p).map_err(io_err("write", dest))?;
                stack.push((p, format!("{name}/")));
            } else {
                b.append_path_with_name(&p, &name)
                    .map_err(io_err("write", dest))?;
            }
        }
    }
    let w = b.into_inner().map_err(io_err("write", dest))?;
    let f = w.into_inner().map_err(|e| ArchiveError::Io {
        op: "write",
        path: dest.into(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io_err("sync", dest))?;
    std::fs::rename(&part, dest).map_err(io_err("rename", dest))?;
    Ok(())
}

fn name_for(d: &Descriptor, archive: &Path) -> Result<String, ArchiveError> {
    let ann = d.annotations().clone().unwrap_or_default();
    let refname = |s: &str| {
        Reference::parse(s)
            .map(|r| r.to_string())
            .map_err(|e| ArchiveError::Reference {
                path: archive.into(),
                source: e,
            })
    };
    if let Some(n) = ann.get(IMAGE_NAME) {
        return refname(n);
    }
    let stem = archive
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .filter(|s| crate::reference::ShortName::parse(s).is_ok())
        .unwrap_or_else(|| "loaded".into());
    match ann.get(REF_NAME) {
        Some(r) if r.contains('/') => refname(r),
        Some(tag) => refname(&format!("localhost/{stem}:{tag}")),
        None => refname(&format!(
            "localhost/{stem}:{}",
            &digest::hex_part(d.digest())[..12]
        )),
    }
}

pub(super) fn load_dir(
    store: &ImageStore,
    dir: &Path,
    archive: &Path,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let ip = safe_path(dir, "index.json", archive)?;
    let limit = store.options().max_manifest_size;
    let bytes = read_bounded(&ip, limit)?;
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Json {
        path: archive.into(),
        what: "index.json".into(),
        source: e,
    })?;
    let import = |d: &Descriptor| -> Result<(), ArchiveError> {
        digest::validate(d.digest()).map_err(|e| ArchiveError::Blob {
            path: archive.into(),
            what: d.digest().to_string(),
            source: e.into(),
        })?;
        let p = safe_path(dir, &blob_rel(d.digest()), archive)?;
        import_blob(store, &p, Some(d.digest()), archive)?;
        Ok(())
    };
    let read_json = |d: &Descriptor| -> Result<Vec<u8>, ArchiveError> {
        import(d)?;
        store
            .content()
            .read_blob(d.digest(), limit)
            .map_err(|e| ArchiveError::Blob {
                path: archive.into(),
                what: d.digest().to_string(),
                source: e,
            })
    };
    let mut out = Vec::new();
    for top in index.manifests() {
        let mt = top.media_type().to_string();
        let man_err = |e| ArchiveError::Manifest {
            path: archive.into(),
            source: e,
        };
        let mdesc = if manifest::is_index(&mt) {
            let b = read_json(top)?;
            let idx = manifest::parse_index(&b, top.digest()).map_err(man_err)?;
            manifest::select_platform(&idx, &Platform::host(), &archive.display().to_string())
                .map_err(man_err)?
                .clone()
        } else {
            top.clone()
        };
        let mb = read_json(&mdesc)?;
        let m = manifest::parse_manifest(&mb, mdesc.digest()).map_err(man_err)?;
        import(m.config())?;
        for l in m.layers() {
            manifest::layer_compression(l).map_err(man_err)?;
            import(l)?;
        }
        let now = now_secs();
        out.push(ImageRecord {
            name: name_for(top, archive)?,
            target: strip(top),
            manifest: strip(&mdesc),
            config: m.config().clone(),
            snapshot: None,
            snapshotter: None,
            source: None,
            created_at: now,
            updated_at: now,
        });
    }
    Ok(out)
}

fn strip(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.set_annotations(None);
    d
}

pub(super) fn read_bounded(p: &Path, limit: u64) -> Result<Vec<u8>, ArchiveError> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(io_err("open", p))?;
    let mut v = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut v)
        .map_err(io_err("read", p))?;
    if v.len() as u64 > limit {
        return Err(ArchiveError::UnknownFormat {
            path: p.into(),
            reason: format!("larger than {limit} bytes"),
        });
    }
    Ok(v)
}

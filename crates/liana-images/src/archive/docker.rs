//! docker-archive tars: `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), the
//! config JSON and one tar per layer (written uncompressed, read in any compression).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::oci::{read_bounded, safe_path, write_tar};
use super::{import_blob, io_err, sniff, ArchiveError, TempDir};
use crate::digest;
use crate::manifest::{self, media, Compression};
use crate::metadata::{now_secs, ImageRecord};
use crate::reference::Reference;
use crate::store::ImageStore;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn save(
    store: &ImageStore,
    recs: &[ImageRecord],
    dest: &Path,
) -> Result<(), ArchiveError> {
    let tmp = TempDir::new(store, "save")?;
    let mut entries: Vec<Entry> = Vec::new();
    for r in recs {
        let m = store.manifest(r)?;
        let config = store.config(r)?;
        let cname = format!("{}.json", digest::hex_part(r.config.digest()));
        let cp = tmp.0.join(&cname);
        if !cp.exists() {
            let src =
                store
                    .content()
                    .blob_path(r.config.digest())
                    .map_err(|e| ArchiveError::Blob {
                        path: dest.into(),
                        what: r.config.digest().to_string(),
                        source: e,
                    })?;
            std::fs::copy(&src, &cp).map_err(io_err("copy", &cp))?;
        }
        let mut layers = Vec::new();
        for (l, diff_id) in m.layers().iter().zip(config.rootfs().diff_ids()) {
            let hex = diff_id.split_once(':').map(|(_, h)| h).unwrap_or(diff_id);
            let rel = format!("{hex}/layer.tar");
            let lp = tmp.0.join(&rel);
            if !lp.exists() {
                std::fs::create_dir_all(tmp.0.join(hex)).map_err(io_err("create", &tmp.0))?;
                let blob =
                    store
                        .content()
                        .open_blob(l.digest())
                        .map_err(|e| ArchiveError::Blob {
                            path: dest.into(),
                            what: l.digest().to_string(),
                            source: e,
                        })?;
                let c = manifest::layer_compression(l).map_err(|e| ArchiveError::Manifest {
                    path: dest.into(),
                    source: e,
                })?;
                let mut rd = crate::unpack::decompress(std::io::BufReader::new(blob), c)
                    .map_err(io_err("decompress", &lp))?;
                let mut out = std::fs::File::create(&lp).map_err(io_err("create", &lp))?;
                std::io::copy(&mut rd, &mut out).map_err(io_err("write", &lp))?;
            }
            layers.push(rel);
        }
        let tag = Reference::parse(&r.name)
            .map(|x| x.familiar())
            .unwrap_or_else(|_| r.name.clone());
        match entries.iter_mut().find(|e| e.config == cname) {
            Some(e) => e.repo_tags.get_or_insert_with(Vec::new).push(tag),
            None => entries.push(Entry {
                config: cname,
                repo_tags: Some(vec![tag]),
                layers,
            }),
        }
    }
    let mp = tmp.0.join("manifest.json");
    std::fs::write(&mp, serde_json::to_vec(&entries).expect("serializes"))
        .map_err(io_err("write", &mp))?;
    write_tar(&tmp.0, dest)
}

pub(super) fn load(
    store: &ImageStore,
    dir: &Path,
    archive: &Path,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let limit = store.options().max_manifest_size;
    let mp = safe_path(dir, "manifest.json", archive)?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&read_bounded(&mp, limit)?).map_err(|e| ArchiveError::Json {
            path: archive.into(),
            what: "manifest.json".into(),
            source: e,
        })?;
    let mut out = Vec::new();
    for e in entries {
        let cp = safe_path(dir, &e.config, archive)?;
        let cbytes = read_bounded(&cp, limit)?;
        let (cdigest, csize) = import_blob(store, &cp, None, archive)?;
        manifest::parse_config(&cbytes, &cdigest, e.layers.len()).map_err(|x| {
            ArchiveError::Manifest {
                path: archive.into(),
                source: x,
            }
        })?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let lp = safe_path(dir, l, archive)?;
            let mt = match sniff(&lp)? {
                Compression::None => media::DOCKER_LAYER,
                Compression::Gzip => media::DOCKER_LAYER_GZIP,
                Compression::Zstd => media::OCI_LAYER_ZSTD,
            };
            let (d, size) = import_blob(store, &lp, None, archive)?;
            layers
                .push(serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": size}));
        }
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {"mediaType": media::DOCKER_CONFIG, "digest": cdigest.to_string(), "size": csize},
            "layers": layers,
        });
        let mbytes = serde_json::to_vec(&m).expect("serializes");
        let mdigest = digest::sha256_of(&mbytes);
        store
            .content()
            .write_blob(&mdigest, &mbytes)
            .map_err(|x| ArchiveError::Blob {
                path: archive.into(),
                what: "generated manifest".into(),
                source: x,
            })?;
        let mdesc = oci_spec::image::Descriptor::new(
            media::DOCKER_MANIFEST.into(),
            mbytes.len() as u64,
            mdigest,
        );
        let parsed = manifest::parse_manifest(&mbytes, mdesc.digest()).map_err(|x| {
            ArchiveError::Manifest {
                path: archive.into(),
                source: x,
            }
        })?;
        let tags = e
            .repo_tags
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| {
                vec![format!(
                    "localhost/loaded:{}",
                    &digest::hex_part(&cdigest)[..12]
                )]
            });
        for t in tags {
            let name = Reference::parse(&t).map_err(|x| ArchiveError::Reference {
                path: archive.into(),
                source: x,
            })?;
            let now = now_secs();
            out.push(ImageRecord {
                name: name.to_string(),
                target: mdesc.clone(),
                manifest: mdesc.clone(),
                config: parsed.config().clone(),
                snapshot: None,
                snapshotter: None,
                source: None,
                created_at: now,
                updated_at: now,
            });
        }
    }
    Ok(out)
}

//! The built image: config (with docker's `Healthcheck`, `OnBuild`, `Shell`
//! extensions), OCI manifest, blobs in the content store, and one image record per
//! tag pointing at the committed top snapshot. Records are written only once
//! everything else is in place, so a failed build tags nothing.

use liana_images::manifest::media;
use liana_images::metadata::{now_secs, ImageRecord};
use liana_images::reference::{Reference, ShortName};
use oci_spec::image::{Descriptor, DescriptorBuilder, MediaType};
use serde_json::{json, Value};

use super::state::StageState;
use super::{BuildError, BuildOptions, BuildResult, Builder};

/// RFC 3339 time of `epoch`, or now.
pub(crate) fn timestamp(epoch: Option<u64>) -> String {
    let t = match epoch {
        Some(e) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(e),
        None => std::time::SystemTime::now(),
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The full name a `-t` value designates: short names go to `localhost/`, as podman
/// does.
pub fn tag_name(t: &str) -> Result<String, BuildError> {
    let bad =
        |e: liana_images::reference::ReferenceError| BuildError::Invalid(format!("tag {t:?}: {e}"));
    let s = ShortName::parse(t).map_err(bad)?;
    let r: Reference = if s.is_short() {
        s.qualify("localhost")
    } else {
        Reference::parse(t).map_err(bad)?
    };
    Ok(r.to_string())
}

fn desc(mt: &str, d: liana_images::digest::Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(MediaType::from(mt))
        .digest(d)
        .size(size)
        .build()
        .expect("descriptor fields set")
}

/// The image config JSON of `st`.
pub(crate) fn config_json(st: &StageState, opts: &BuildOptions) -> Value {
    let mut cfg = st.config.clone();
    if !opts.labels.is_empty() {
        let mut l = cfg.labels().clone().unwrap_or_default();
        for (k, v) in &opts.labels {
            l.insert(k.clone(), v.clone());
        }
        cfg.set_labels(Some(l));
    }
    let mut c = serde_json::to_value(&cfg).expect("config serializes");
    let mut author = None;
    if let Some(o) = c.as_object_mut() {
        for (k, v) in &st.extra {
            if k == "__author" {
                author = Some(v.clone());
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    let (arch, os, variant) = &st.platform;
    let mut v = json!({
        "created": timestamp(opts.source_date_epoch),
        "architecture": arch,
        "os": os,
        "config": c,
        "rootfs": { "type": "layers", "diff_ids": st.diff_ids },
        "history": st.history,
    });
    let o = v.as_object_mut().expect("object");
    if let Some(var) = variant {
        o.insert("variant".into(), json!(var));
    }
    if let Some(a) = author {
        o.insert("author".into(), a);
    }
    v
}

/// Writes the config and manifest blobs of `st`.
fn write_blobs(
    b: &Builder<'_>,
    st: &StageState,
    opts: &BuildOptions,
) -> Result<(Descriptor, Descriptor), BuildError> {
    let store = b.store;
    let config = serde_json::to_vec(&config_json(st, opts)).expect("config serializes");
    let config_digest = liana_images::digest::sha256_of(&config);
    let config_desc = desc(
        media::OCI_CONFIG,
        config_digest.clone(),
        config.len() as u64,
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": config_desc,
        "layers": st.layers,
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    let manifest_digest = liana_images::digest::sha256_of(&manifest);
    let manifest_desc = desc(
        media::OCI_MANIFEST,
        manifest_digest.clone(),
        manifest.len() as u64,
    );
    let mut content = vec![config_digest.to_string(), manifest_digest.to_string()];
    content.extend(st.layers.iter().map(|l| l.digest().to_string()));
    b.lease.add(
        store,
        &content,
        &st.chain.iter().cloned().collect::<Vec<_>>(),
    )?;
    store.content().write_blob(&config_digest, &config)?;
    store.content().write_blob(&manifest_digest, &manifest)?;
    Ok((manifest_desc, config_desc))
}

/// Writes the image of the target stage and tags it. A build whose every layer came
/// from the cache gives the image the same inputs gave before (same ID, no new blobs).
pub(crate) fn write_image(
    b: &Builder<'_>,
    st: &StageState,
    opts: &BuildOptions,
) -> Result<BuildResult, BuildError> {
    let store = b.store;
    let image_key = crate::cache::key(
        &st.key,
        &[
            "image",
            &serde_json::to_string(&opts.labels).expect("labels serialize"),
            &format!("{:?}", opts.source_date_epoch),
            &serde_json::to_string(&st.layers).expect("layers serialize"),
        ],
    );
    let reuse = (b.all_cached.load(std::sync::atomic::Ordering::Relaxed) && !opts.no_cache)
        .then(|| b.cache.get_json::<crate::cache::ImageEntry>(&image_key))
        .flatten()
        .filter(|e| {
            store
                .content()
                .contains(e.manifest.digest())
                .unwrap_or(false)
                && store.content().contains(e.config.digest()).unwrap_or(false)
        });
    let (manifest_desc, config_desc) = match reuse {
        Some(e) => (e.manifest, e.config),
        None => {
            let (m, c) = write_blobs(b, st, opts)?;
            b.cache.put_json(
                &image_key,
                &crate::cache::ImageEntry {
                    manifest: m.clone(),
                    config: c.clone(),
                },
            );
            (m, c)
        }
    };
    let config_digest = config_desc.digest().clone();
    let mut names = Vec::new();
    for t in &opts.tags {
        names.push(tag_name(t)?);
    }
    if names.is_empty() {
        // the store keys images by name: an untagged build gets one from its ID
        names.push(format!(
            "localhost/liana-build:{}",
            &liana_images::digest::hex_part(&config_digest)[..12]
        ));
    }
    let now = now_secs();
    let mut records = Vec::new();
    for name in names {
        let rec = ImageRecord {
            name,
            target: manifest_desc.clone(),
            manifest: manifest_desc.clone(),
            config: config_desc.clone(),
            snapshot: st.chain.clone(),
            snapshotter: st
                .chain
                .as_ref()
                .map(|_| store.snapshotter().name().to_string()),
            source: None,
            created_at: now,
            updated_at: now,
        };
        // a rebuild that changed nothing leaves the record alone (no database write)
        let same = store
            .metadata()
            .image(&rec.name)
            .ok()
            .flatten()
            .is_some_and(|old| {
                old.manifest == rec.manifest
                    && old.config == rec.config
                    && old.snapshot == rec.snapshot
            });
        if !same {
            store.metadata().put_image(rec.clone())?;
        }
        records.push(rec);
    }
    Ok(BuildResult {
        id: config_digest.to_string(),
        records,
    })
}

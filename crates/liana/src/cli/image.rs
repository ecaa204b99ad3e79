//! Image verbs: pull, push, images, inspect, rmi, tag, save, load, prune.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use liana_images::archive::{self, Format};
use liana_images::manifest::Platform;
use liana_images::metadata::ImageRecord;
use liana_images::pull::PullOptions;
use liana_images::{ImageStore, Reference};
use serde_json::json;

use super::env::{HostEnv, RemoteArgs};
use crate::progress::{PullBars, PushLines};

/// `liana image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// List images.
    #[command(alias = "list", name = "ls")]
    Ls(ListArgs),
    /// Show details of images as JSON.
    Inspect(InspectArgs),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Add a name to an image.
    Tag(TagArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Remove unused content and snapshots (and, with -a, all images).
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image to pull (short names go through registries.conf).
    pub image: String,
    /// Platform os/arch[/variant] to select from a multi-platform image.
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Local image.
    pub image: String,
    /// Destination reference (default: the image's name).
    pub destination: Option<String>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove every name of an image given by ID.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image.
    pub image: String,
    /// New names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SaveFormat {
    /// docker-archive tar (docker save).
    DockerArchive,
    /// OCI layout in a tar.
    OciArchive,
    /// OCI layout directory.
    OciDir,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Output file or directory.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
    pub format: SaveFormat,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive (docker-archive or OCI tar) or OCI layout directory.
    #[arg(short, long)]
    pub input: PathBuf,
    /// Print only image names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all images, not only unused content.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask (accepted for podman compatibility; liana never prompts).
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(env: &HostEnv, c: ImageCommand) -> anyhow::Result<()> {
    match c {
        ImageCommand::Pull(a) => pull(env, a),
        ImageCommand::Push(a) => push(env, a),
        ImageCommand::Ls(a) => list(env, a),
        ImageCommand::Inspect(a) => inspect(env, a),
        ImageCommand::Rm(a) => remove(env, a),
        ImageCommand::Tag(a) => tag(env, a),
        ImageCommand::Save(a) => save(env, a),
        ImageCommand::Load(a) => load(env, a),
        ImageCommand::Prune(a) => prune(env, a),
    }
}

pub fn pull(env: &HostEnv, a: PullArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let platform = match &a.platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    let opts = PullOptions {
        remote: env.remote(&a.remote)?,
        platform,
        ..Default::default()
    };
    let bars = PullBars::new(a.quiet);
    let rec = liana_images::pull::pull(&store, &a.image, &opts, &bars);
    bars.finish(rec.is_ok());
    let rec = rec?;
    println!("{}", liana_images::digest::hex_part(rec.config.digest()));
    Ok(())
}

pub fn push(env: &HostEnv, a: PushArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let remote = env.remote(&a.remote)?;
    let lines = PushLines { quiet: a.quiet };
    let d = liana_images::push::push(&store, &a.image, a.destination.as_deref(), &remote, &lines)?;
    if a.quiet {
        println!("{d}");
    } else {
        eprintln!("Writing manifest {d}");
    }
    Ok(())
}

fn split_name(name: &str) -> (String, String) {
    match Reference::parse(name) {
        Ok(r) if r.tag().is_some() => (r.name(), r.tag().unwrap_or_default().to_string()),
        Ok(r) => (r.name(), "<none>".into()),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

fn created(store: &ImageStore, rec: &ImageRecord) -> Option<String> {
    store.config(rec).ok().and_then(|c| c.created().clone())
}

fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| humantime::parse_rfc3339_weak(s).ok()) else {
        return "unknown".into();
    };
    let Ok(d) = std::time::SystemTime::now().duration_since(t) else {
        return "in the future".into();
    };
    let s = d.as_secs();
    let (n, unit) = match s {
        0..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86399 => (s / 3600, "hour"),
        86400..=2_591_999 => (s / 86400, "day"),
        2_592_000..=31_535_999 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn human_size(b: u64) -> String {
    let f = b as f64;
    match b {
        0..=999 => format!("{b} B"),
        1000..=999_999 => format!("{:.1} kB", f / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", f / 1e6),
        _ => format!("{:.2} GB", f / 1e9),
    }
}

pub fn list(env: &HostEnv, a: ListArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let mut recs = store.images()?;
    recs.sort_by(|x, y| y.created_at.cmp(&x.created_at).then(x.name.cmp(&y.name)));
    let id_of = |r: &ImageRecord| {
        let hex = liana_images::digest::hex_part(r.config.digest()).to_string();
        if a.no_trunc {
            format!("sha256:{hex}")
        } else {
            hex[..12].to_string()
        }
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &recs {
            if seen.insert(r.id()) {
                println!("{}", id_of(r));
            }
        }
        return Ok(());
    }
    if a.format == ListFormat::Json {
        let v: Vec<_> = recs
            .iter()
            .map(|r| {
                json!({
                    "Id": liana_images::digest::hex_part(r.config.digest()),
                    "Names": [r.name],
                    "Digest": r.manifest.digest().to_string(),
                    "Created": created(&store, r),
                    "Size": store.size(r).unwrap_or(0),
                    "Snapshot": r.snapshot,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<44} {:<16} {:<14} {:<16} SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for r in &recs {
        let (repo, tag) = split_name(&r.name);
        let size = store.size(r).map(human_size).unwrap_or_else(|_| "?".into());
        println!(
            "{:<44} {:<16} {:<14} {:<16} {}",
            repo,
            tag,
            id_of(r),
            ago(created(&store, r).as_deref()),
            size
        );
    }
    Ok(())
}

pub fn inspect(env: &HostEnv, a: InspectArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let mut out = Vec::new();
    for name in &a.images {
        let recs = store.lookup(name)?;
        let rec = &recs[0];
        let all_names: Vec<String> = store
            .images()?
            .into_iter()
            .filter(|r| r.id() == rec.id())
            .map(|r| r.name)
            .collect();
        let config = store.config(rec)?;
        let manifest = store.manifest(rec)?;
        let repo_digests: Vec<String> = all_names
            .iter()
            .filter_map(|n| Reference::parse(n).ok())
            .map(|r| format!("{}@{}", r.name(), rec.manifest.digest()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push(json!({
            "Id": liana_images::digest::hex_part(rec.config.digest()),
            "Digest": rec.manifest.digest().to_string(),
            "RepoTags": all_names,
            "RepoDigests": repo_digests,
            "Created": config.created(),
            "Author": config.author(),
            "Architecture": config.architecture().to_string(),
            "Os": config.os().to_string(),
            "Variant": config.variant(),
            "Config": config.config(),
            "RootFS": {"Type": config.rootfs().typ(), "Layers": config.rootfs().diff_ids()},
            "History": config.history(),
            "Size": store.size(rec)?,
            "ManifestType": rec.manifest.media_type().to_string(),
            "Layers": manifest.layers().iter().map(|l| json!({"Digest": l.digest().to_string(), "Size": l.size(), "MediaType": l.media_type().to_string()})).collect::<Vec<_>>(),
            "Snapshotter": rec.snapshotter,
            "Snapshot": rec.snapshot,
            "Source": rec.source,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn remove(env: &HostEnv, a: RmArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let mut failed = None;
    for name in &a.images {
        match store.remove(name, a.force) {
            Ok(names) => {
                for n in names {
                    println!("Untagged: {n}");
                }
            }
            Err(e) => {
                eprintln!(
                    "Error: {}",
                    anyhow::Error::from(e)
                        .chain()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(": ")
                );
                failed = Some(name.clone());
            }
        }
    }
    if let Some(n) = failed {
        // the exit code follows the last failure's kind
        return Err(store
            .lookup(&n)
            .err()
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("failed to remove {n}")));
    }
    Ok(())
}

pub fn tag(env: &HostEnv, a: TagArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    for n in &a.names {
        store
            .tag(&a.image, n)
            .with_context(|| format!("tag {} as {n}", a.image))?;
    }
    Ok(())
}

pub fn save(env: &HostEnv, a: SaveArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let f = match a.format {
        SaveFormat::DockerArchive => Format::DockerArchive,
        SaveFormat::OciArchive => Format::OciArchive,
        SaveFormat::OciDir => Format::OciDir,
    };
    if f == Format::OciDir
        && a.output.exists()
        && a.output
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{}: output directory exists and is not empty",
            a.output.display()
        );
    }
    archive::save(&store, &a.images, &a.output, f)?;
    Ok(())
}

pub fn load(env: &HostEnv, a: LoadArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let recs = archive::load(&store, &a.input)?;
    for r in recs {
        if a.quiet {
            println!("{}", r.name);
        } else {
            println!("Loaded image: {}", r.name);
        }
    }
    Ok(())
}

pub fn prune(env: &HostEnv, a: PruneArgs) -> anyhow::Result<()> {
    let store = env.store()?;
    let mut removed = 0;
    if a.all {
        for r in store.images()? {
            store.metadata().delete_image(&r.name)?;
            println!("Untagged: {}", r.name);
            removed += 1;
        }
    }
    let stats = liana_images::gc::collect(&store, &[])?;
    println!(
        "Removed {removed} images, {} blobs, {} snapshots; reclaimed {}",
        stats.blobs_removed,
        stats.snapshots_removed,
        human_size(stats.bytes_freed)
    );
    Ok(())
}

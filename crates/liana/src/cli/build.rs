//! `liana build`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use liana_build::layer::Compression;
use liana_build::{BuildOptions, Progress};
use liana_images::archive::{self, Format};
use liana_images::pull::PullOptions;

use super::env::{HostEnv, RemoteArgs};

/// `liana build` flags.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name (and tag) the image; repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// The Dockerfile (default CONTEXT/Dockerfile, else CONTEXT/Containerfile; `-` for
    /// standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument KEY=VALUE (or KEY, taken from the environment); repeatable.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The platform (only the host's is supported).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Do not use the layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images even when they are present.
    #[arg(long)]
    pub pull: bool,
    /// A secret for `RUN --mount=type=secret`: id=ID,src=FILE; repeatable.
    #[arg(long, value_name = "id=ID,src=FILE")]
    pub secret: Vec<String>,
    /// An SSH agent for `RUN --mount=type=ssh`: ID (the agent of $SSH_AUTH_SOCK) or
    /// ID=SOCKET; repeatable.
    #[arg(long, value_name = "ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// A label KEY=VALUE for the image; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Squash the target stage's own layers into one.
    #[arg(long)]
    pub squash: bool,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, default_value = "gzip", value_name = "ALGORITHM")]
    pub compression: String,
    /// Also export the image: type=oci|docker-archive|oci-dir,dest=PATH.
    #[arg(long, value_name = "type=TYPE,dest=PATH")]
    pub output: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The build context directory.
    pub context: PathBuf,
}

fn kv(s: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} {s:?}: expected KEY=VALUE"),
    }
}

fn output_spec(s: &str) -> anyhow::Result<(Format, PathBuf)> {
    let mut kind = None;
    let mut dest = None;
    for part in s.split(',') {
        let (k, v) = kv(part, "--output")?;
        match k.as_str() {
            "type" => kind = Some(v),
            "dest" => dest = Some(PathBuf::from(v)),
            _ => bail!("--output: unknown key {k:?}"),
        }
    }
    let format = match kind.as_deref() {
        Some("oci") | Some("oci-archive") => Format::OciArchive,
        Some("oci-dir") => Format::OciDir,
        Some("docker-archive") | Some("docker") => Format::DockerArchive,
        other => bail!("--output type={other:?}: expected oci, oci-dir or docker-archive"),
    };
    let dest = dest.context("--output: dest=PATH is required")?;
    Ok((format, dest))
}

pub fn build(env: &HostEnv, a: BuildArgs) -> anyhow::Result<i32> {
    let output = a.output.as_deref().map(output_spec).transpose()?;
    let compression = Compression::parse(&a.compression).with_context(|| {
        format!(
            "--compression {}: expected gzip, zstd or none",
            a.compression
        )
    })?;
    if let Some(p) = &a.platform {
        let host = liana_images::manifest::Platform::host();
        let want = format!("{}/{}", host.os, host.architecture);
        if !p.starts_with(&want) {
            bail!("--platform {p}: only the host's platform ({want}) can be built");
        }
    }
    let dockerfile = match &a.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("read the Dockerfile from standard input")?;
            s
        }
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?,
        None => {
            let d = a.context.join("Dockerfile");
            let c = a.context.join("Containerfile");
            let f = if d.exists() || !c.exists() { d } else { c };
            std::fs::read_to_string(&f).with_context(|| format!("read {}", f.display()))?
        }
    };
    let mut build_args = BTreeMap::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(b) {
                    build_args.insert(b.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = kv(l, "--label")?;
        labels.insert(k, v);
    }
    let mut secrets = BTreeMap::new();
    for s in &a.secret {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            let (k, v) = kv(part, "--secret")?;
            match k.as_str() {
                "id" => id = Some(v),
                "src" | "source" => src = Some(PathBuf::from(v)),
                _ => bail!("--secret: unknown key {k:?}"),
            }
        }
        let id = id.context("--secret: id= is required")?;
        let src = src.unwrap_or_else(|| PathBuf::from(&id));
        if !src.is_file() {
            bail!("--secret id={id}: {} is not a file", src.display());
        }
        secrets.insert(id, src);
    }
    let mut ssh = BTreeMap::new();
    for s in &a.ssh {
        let (id, sock) = match s.split_once('=') {
            Some((id, p)) => (id.to_string(), PathBuf::from(p)),
            None => (
                s.clone(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .with_context(|| format!("--ssh {s}: SSH_AUTH_SOCK is not set"))?,
            ),
        };
        if id.is_empty() || id.contains(',') {
            bail!("--ssh {s}: bad id {id:?}");
        }
        if !std::fs::metadata(&sock)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            bail!(
                "--ssh {id}: {} is not a socket (only agent sockets are supported, not key files)",
                sock.display()
            );
        }
        ssh.insert(id, sock);
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v}: not a number"))?,
        ),
        _ => None,
    };
    let opts = BuildOptions {
        context: a.context.clone(),
        dockerfile,
        tags: a.tags.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        labels,
        compression,
        source_date_epoch,
        secrets,
        ssh,
        squash: a.squash,
        pull_options: PullOptions {
            remote: env.remote(&a.remote)?,
            ..Default::default()
        },
    };
    let engine = env.engine()?;
    let progress = Progress::new(Box::new(std::io::stderr()), a.quiet);
    let res = match liana_build::build(&engine, &opts, &progress) {
        Ok(r) => r,
        Err(e) => {
            let code = e.run_exit_code();
            let err = anyhow::Error::new(e);
            match code {
                Some(c) => {
                    eprintln!("Error: {}", super::chain_text(&err));
                    return Ok(c);
                }
                None => return Err(err),
            }
        }
    };
    for r in &res.records {
        if !a.quiet && !r.name.starts_with("localhost/liana-build:") {
            eprintln!("Successfully tagged {}", r.name);
        }
    }
    if let Some((format, dest)) = output {
        let store = engine.store()?;
        archive::save(store, &[res.records[0].name.clone()], &dest, format)
            .with_context(|| format!("--output {}", dest.display()))?;
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &res.id).with_context(|| format!("write {}", f.display()))?;
    }
    println!("{}", res.id);
    Ok(0)
}

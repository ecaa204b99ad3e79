//! Host locations: storage root, registries.conf, credential files, certs.d, chosen
//! like podman chooses them, and turned into library options.

use std::path::PathBuf;

use anyhow::Context;
use liana_images::config::{AuthFiles, CertDirs, Credentials, RegistriesConf};
use liana_images::remote::RemoteConfig;
use liana_images::store::{SnapshotterKind, StoreOptions};
use liana_images::ImageStore;

use super::{Cli, SnapshotterArg};

/// What the command line and the environment say about the host.
#[derive(Debug)]
pub struct HostEnv {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub snapshotter: SnapshotterKind,
    pub registries_conf: Vec<PathBuf>,
    /// The liana config file, and whether it was named explicitly.
    pub config: (PathBuf, bool),
    snapshotter_flag: Option<&'static str>,
    rootless: bool,
    home: PathBuf,
}

fn var(k: &str) -> Option<PathBuf> {
    std::env::var_os(k)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// TLS and credential flags shared by pull, push and login.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Require HTTPS and verify certificates (false: allow plain HTTP and skip
    /// verification).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Credentials file (default $REGISTRY_AUTH_FILE or the podman locations).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Directory of CA certificates (*.crt) and client keys (*.cert, *.key) to use.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials USER:PASSWORD for the registry.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

impl HostEnv {
    pub fn new(cli: &Cli) -> Self {
        let rootless = !rustix::process::geteuid().is_root();
        let home = var("HOME").unwrap_or_else(|| PathBuf::from("/root"));
        let root = cli.root.clone().unwrap_or_else(|| {
            if rootless {
                var("XDG_DATA_HOME")
                    .unwrap_or_else(|| home.join(".local/share"))
                    .join("liana")
            } else {
                PathBuf::from("/var/lib/liana")
            }
        });
        let registries_conf = match cli
            .registries_conf
            .clone()
            .or_else(|| var("CONTAINERS_REGISTRIES_CONF"))
        {
            Some(p) => vec![p],
            None => {
                let user = var("XDG_CONFIG_HOME")
                    .unwrap_or_else(|| home.join(".config"))
                    .join("containers/registries.conf");
                if rootless && user.exists() {
                    vec![user]
                } else {
                    vec![PathBuf::from("/etc/containers/registries.conf")]
                }
            }
        };
        let (snapshotter, snapshotter_flag) = match cli.snapshotter {
            SnapshotterArg::Auto => (SnapshotterKind::Auto, None),
            SnapshotterArg::Overlay => (SnapshotterKind::Overlay, Some("overlay")),
            SnapshotterArg::Native => (SnapshotterKind::Native, Some("native")),
        };
        let runroot = cli
            .runroot
            .clone()
            .unwrap_or_else(|| liana_engine::paths::default_runroot(rootless));
        let config = match cli.config.clone().or_else(|| var("LIANA_CONFIG")) {
            Some(p) => (p, true),
            None => (liana_engine::config::Config::default_path(rootless), false),
        };
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        HostEnv {
            root: absolute(root),
            runroot: absolute(runroot),
            snapshotter,
            registries_conf,
            config: (absolute(config.0), config.1),
            snapshotter_flag,
            rootless,
            home,
        }
    }

    /// The container engine of this instance.
    pub fn engine(&self) -> anyhow::Result<liana_engine::Engine> {
        let config = liana_engine::config::Config::load(&self.config.0, self.config.1)?;
        let exe = std::env::var_os("LIANA_EXE")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("liana"));
        let mut global_args: Vec<std::ffi::OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--runroot".into(),
            self.runroot.clone().into(),
        ];
        if self.config.1 {
            global_args.extend(["--config".into(), self.config.0.clone().into()]);
        }
        if let Some(s) = self.snapshotter_flag {
            global_args.extend(["--snapshotter".into(), s.into()]);
        }
        Ok(liana_engine::Engine::open(liana_engine::EngineOptions {
            root: self.root.clone(),
            runroot: self.runroot.clone(),
            config,
            snapshotter: self.snapshotter,
            exe,
            global_args,
            monitor: None,
        })?)
    }

    pub fn store(&self) -> anyhow::Result<ImageStore> {
        let mut o = StoreOptions::new(&self.root);
        o.snapshotter = self.snapshotter;
        ImageStore::open(o).with_context(|| format!("open storage root {}", self.root.display()))
    }

    /// Credential files in lookup order; the first is where `login` writes.
    pub fn auth_files(&self, explicit: Option<&PathBuf>) -> AuthFiles {
        if let Some(p) = explicit.cloned().or_else(|| var("REGISTRY_AUTH_FILE")) {
            return AuthFiles { paths: vec![p] };
        }
        let uid = rustix::process::geteuid().as_raw();
        let runtime = var("XDG_RUNTIME_DIR")
            .unwrap_or_else(|| PathBuf::from(format!("/run/containers/{uid}")));
        let runtime = if var("XDG_RUNTIME_DIR").is_some() {
            runtime.join("containers")
        } else {
            runtime
        };
        let config = var("XDG_CONFIG_HOME").unwrap_or_else(|| self.home.join(".config"));
        AuthFiles {
            paths: vec![
                runtime.join("auth.json"),
                config.join("containers/auth.json"),
                self.home.join(".docker/config.json"),
            ],
        }
    }

    pub fn cert_dirs(&self, explicit: Option<&PathBuf>) -> CertDirs {
        let mut bases = Vec::new();
        if self.rootless {
            bases.push(self.home.join(".config/containers/certs.d"));
        }
        bases.push(PathBuf::from("/etc/containers/certs.d"));
        bases.push(PathBuf::from("/etc/docker/certs.d"));
        CertDirs {
            bases,
            explicit: explicit.cloned(),
        }
    }

    pub fn registries(&self) -> anyhow::Result<RegistriesConf> {
        Ok(RegistriesConf::load(&self.registries_conf)?)
    }

    pub fn remote(&self, a: &RemoteArgs) -> anyhow::Result<RemoteConfig> {
        let credentials = match &a.creds {
            Some(c) => Some(Credentials::parse_pair(c).context("--creds must be USER:PASSWORD")?),
            None => None,
        };
        Ok(RemoteConfig {
            registries: self.registries()?,
            auth: self.auth_files(a.authfile.as_ref()),
            credentials,
            cert_dirs: self.cert_dirs(a.cert_dir.as_ref()),
            tls_verify: a.tls_verify,
            max_manifest_size: None,
        })
    }
}

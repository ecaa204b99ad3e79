//! `login` and `logout`: check credentials against the registry, then store them in the
//! podman-compatible auth file.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use liana_images::config::{AuthFile, Credentials};

use super::env::{HostEnv, RemoteArgs};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port].
    pub registry: String,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    pub registry: Option<String>,
    /// Remove the credentials of every registry.
    #[arg(short, long)]
    pub all: bool,
    /// Credentials file.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

fn registry_key(r: &str) -> String {
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    r.trim_end_matches('/').to_string()
}

pub fn login(env: &HostEnv, a: LoginArgs) -> anyhow::Result<()> {
    let key = registry_key(&a.registry);
    let Some(username) = a.username.clone() else {
        bail!("--username is required (liana does not prompt)")
    };
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("read password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.password
            .clone()
            .context("--password or --password-stdin is required")?
    };
    let creds = Credentials { username, password };
    let mut remote = env.remote(&a.remote)?;
    remote.credentials = Some(creds.clone());
    let host = key.split('/').next().unwrap_or(&key).to_string();
    let reg = remote.client(&host, "", false)?;
    reg.check_login()
        .with_context(|| format!("log in to {host}"))?;
    let files = env.auth_files(a.remote.authfile.as_ref());
    let path = files.primary()?.to_path_buf();
    let mut f = AuthFile::load(&path)?;
    f.set(&key, &creds);
    f.save()?;
    println!("Login Succeeded!");
    Ok(())
}

pub fn logout(env: &HostEnv, a: LogoutArgs) -> anyhow::Result<()> {
    let files = env.auth_files(a.authfile.as_ref());
    let path = files.primary()?.to_path_buf();
    let mut f = AuthFile::load(&path)?;
    if a.all {
        f.clear();
        f.save()?;
        println!("Removed login credentials for all registries");
        return Ok(());
    }
    let Some(r) = a.registry else {
        bail!("a registry (or --all) is required")
    };
    let key = registry_key(&r);
    if !f.remove(&key) {
        bail!("not logged in to {key}");
    }
    f.save()?;
    println!("Removed login credentials for {key}");
    Ok(())
}

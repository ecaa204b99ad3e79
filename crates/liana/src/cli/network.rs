//! `network create|ls|inspect|rm`.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::env::HostEnv;

/// `liana network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON.
    Inspect(NamesArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Serve the names of a network's containers (started by the engine).
    #[command(hide = true)]
    DnsServe(NamesArgs),
}

/// `network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Subnet (CIDR), e.g. 10.89.1.0/24 (default: a free /24).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first address).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Name of the Linux bridge (default: lianaN).
    #[arg(long)]
    pub interface_name: Option<String>,
    /// Driver (only bridge).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Set a label (KEY=VALUE).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Network name.
    pub name: String,
}

/// `network ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Names only.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Network names.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Networks.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `network rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Also remove the containers that use it.
    #[arg(short, long)]
    pub force: bool,
    /// Networks.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Runs a `network` verb.
pub fn run(env: &HostEnv, c: NetworkCommand) -> anyhow::Result<()> {
    let e = env.engine()?;
    match c {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                anyhow::bail!(
                    "network {}: driver {:?} is not supported (bridge)",
                    a.name,
                    a.driver
                );
            }
            let n = e.create_network(
                &a.name,
                a.subnet.as_deref(),
                a.gateway.as_deref(),
                a.interface_name.as_deref(),
                &a.labels,
            )?;
            println!("{}", n.name);
        }
        NetworkCommand::Ls(a) => {
            let nets = e.networks()?;
            if a.quiet {
                for n in nets {
                    println!("{}", n.name);
                }
            } else {
                println!(
                    "{:<14}{:<24}{:<10}{:<20}BRIDGE",
                    "NETWORK ID", "NAME", "DRIVER", "SUBNET"
                );
                for n in nets {
                    println!(
                        "{:<14}{:<24}{:<10}{:<20}{}",
                        &n.id[..12],
                        n.name,
                        n.driver,
                        n.subnet.to_string(),
                        n.bridge
                    );
                }
            }
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut missing = None;
            for name in &a.names {
                match e.inspect_network(name) {
                    Ok(v) => out.push(v),
                    Err(err) => missing = Some(err),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            if let Some(err) = missing {
                return Err(err.into());
            }
        }
        NetworkCommand::DnsServe(a) => {
            for name in &a.names {
                e.serve_dns(name)?;
            }
        }
        NetworkCommand::Rm(a) => {
            for name in &a.names {
                e.remove_network(name, a.force)
                    .with_context(|| format!("remove network {name}"))?;
                println!("{name}");
            }
        }
    }
    Ok(())
}

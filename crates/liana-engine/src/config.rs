//! The liana config file: engine defaults and the table of OCI runtimes, like docker's
//! `daemon.json` `runtimes` and podman's `containers.conf` `[engine.runtimes]`.
//!
//! # Format, version 1 (TOML)
//!
//! ```toml
//! [engine]
//! runtime = "liana"            # default runtime: the built-in one
//! log_driver = "k8s-file"      # or json-file, none
//! stop_timeout = 10            # seconds `stop` waits before SIGKILL
//! monitor_path = "/usr/libexec/liana/liana-monitor"
//! init_path = "/usr/libexec/liana/liana-init"
//! pids_limit = 2048            # default --pids-limit (0: none)
//!
//! [network]
//! default = "bridge"           # --network when not given (root)
//! default_rootless = "slirp4netns"   # or pasta, none
//! default_network = "liana"    # the network of --network bridge
//! default_bridge = "liana0"
//! default_subnet = "10.87.0.0/16"
//! auto_subnets = "10.86.0.0/16"  # /24s of `network create` without --subnet
//! firewall = "auto"            # nftables, iptables, auto (nftables if installed)
//! dns_forward = ["127.0.0.53"] # where the networks' name servers send other names
//!                              # (IP or IP:PORT); absent: the host's resolv.conf
//!                              # name servers; []: nowhere (REFUSED)
//!
//! [runtimes.runsc]
//! path = "/usr/bin/runsc"
//! args = ["--network=none", "--platform=ptrace"]   # global flags for every call
//! rootless_args = ["--rootless"]                   # added when rootless
//! ```
//!
//! Looked up in `--config FILE`, `$LIANA_CONFIG`, then `/etc/liana/liana.toml` for
//! root or `$XDG_CONFIG_HOME/liana/liana.toml` (`~/.config/liana/liana.toml`) for
//! users. A missing file means the defaults. `runc`, `crun`, `runsc`, `youki` and
//! `liana-runtime` need no entry: they are found in `PATH`; `--runtime` also takes a
//! path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid.
    #[error("parse config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: toml::de::Error,
    },
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Default runtime name.
    pub runtime: String,
    /// Default log driver.
    pub log_driver: String,
    /// Default stop timeout, seconds.
    pub stop_timeout: u64,
    /// The monitor binary.
    pub monitor_path: Option<PathBuf>,
    /// The init binary for `--init`.
    pub init_path: Option<PathBuf>,
    /// Default pids limit (0: none).
    pub pids_limit: i64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            runtime: crate::runtime::BUILTIN.into(),
            log_driver: "k8s-file".into(),
            stop_timeout: 10,
            monitor_path: None,
            init_path: None,
            pids_limit: 2048,
        }
    }
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// `--network` when not given, for root (`bridge`: the default network).
    pub default: String,
    /// `--network` when not given, rootless (`slirp4netns` or `pasta`).
    pub default_rootless: String,
    /// The default bridge network's name.
    pub default_network: String,
    /// Its bridge.
    pub default_bridge: String,
    /// Its subnet.
    pub default_subnet: String,
    /// Where subnets of `network create` without `--subnet` are taken from (/24s).
    pub auto_subnets: String,
    /// NAT rules with `nftables`, `iptables`, or `auto` (nftables when installed).
    pub firewall: String,
    /// Where the networks' name servers forward names that are not the network's;
    /// `None`: the host's /etc/resolv.conf name servers.
    pub dns_forward: Option<Vec<Upstream>>,
}

/// A name server to forward to: `IP` (port 53) or `IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Upstream(pub std::net::SocketAddr);

impl TryFrom<String> for Upstream {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<std::net::IpAddr>() {
            return Ok(Upstream(std::net::SocketAddr::new(ip, 53)));
        }
        s.parse()
            .map(Upstream)
            .map_err(|_| format!("dns_forward: {s:?} is not IP or IP:PORT"))
    }
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            default: "bridge".into(),
            default_rootless: "slirp4netns".into(),
            default_network: "liana".into(),
            default_bridge: "liana0".into(),
            default_subnet: "10.87.0.0/16".into(),
            auto_subnets: "10.86.0.0/16".into(),
            firewall: "auto".into(),
            dns_forward: None,
        }
    }
}

/// `[runtimes.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeEntry {
    /// The binary (default: NAME in PATH).
    pub path: Option<PathBuf>,
    /// Global flags for every invocation.
    pub args: Vec<String>,
    /// Global flags added when running rootless.
    pub rootless_args: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[engine]`.
    pub engine: EngineSection,
    /// `[network]`.
    pub network: NetworkSection,
    /// `[runtimes.*]`.
    pub runtimes: BTreeMap<String, RuntimeEntry>,
}

/// Version of the format this build reads.
pub const FORMAT_VERSION: u32 = 1;

impl Config {
    /// Parses TOML text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Loads `path`; a missing file gives the defaults unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse(path, &t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The default location.
    pub fn default_path(rootless: bool) -> PathBuf {
        if !rootless {
            return PathBuf::from("/etc/liana/liana.toml");
        }
        std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join("liana/liana.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let c = Config::parse(
            Path::new("x"),
            r#"
[engine]
runtime = "runc"
stop_timeout = 3

[runtimes.runsc]
path = "/usr/bin/runsc"
args = ["--network=none", "--platform=ptrace"]
"#,
        )
        .unwrap();
        assert_eq!(c.engine.runtime, "runc");
        assert_eq!(c.engine.stop_timeout, 3);
        assert_eq!(c.engine.log_driver, "k8s-file");
        assert_eq!(c.runtimes["runsc"].args.len(), 2);
        assert!(Config::parse(Path::new("x"), "[engine]\nbogus = 1\n").is_err());
        let d = Config::load(Path::new("/nonexistent/liana.toml"), false).unwrap();
        assert_eq!(d.engine.runtime, "liana");
        assert!(Config::load(Path::new("/nonexistent/liana.toml"), true).is_err());
        let n = Config::parse(
            Path::new("x"),
            "[network]\ndns_forward = [\"10.0.0.1\", \"127.0.0.1:5353\"]\n",
        )
        .unwrap();
        let f: Vec<String> = n
            .network
            .dns_forward
            .unwrap()
            .iter()
            .map(|u| u.0.to_string())
            .collect();
        assert_eq!(f, ["10.0.0.1:53", "127.0.0.1:5353"]);
        let e = Config::parse(Path::new("x"), "[network]\ndns_forward = [\"nope\"]\n").unwrap_err();
        assert!(
            format!("{:?}", e).contains("\\\"nope\\\" is not IP or IP:PORT"),
            "{e:?}"
        );
    }
}

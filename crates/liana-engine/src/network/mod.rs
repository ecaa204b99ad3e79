//! Networks: records, address leases and the `--network` modes.
//!
//! # Schema (tables of `ROOT/metadata.db`, next to the container tables)
//!
//! | table         | key          | value (JSON)                                  |
//! |---------------|--------------|-----------------------------------------------|
//! | `networks`    | network name | [`Network`]                                   |
//! | `network-ips` | `NAME/IP`    | [`Lease`]: the container holding the address  |
//!
//! An address is allocated in the same write transaction that checks the leases of
//! its network, so two concurrent creates never get the same address. A lease lives
//! from `create` to `rm`; everything else of a container's network (namespace, veth,
//! nftables table, helper processes) lives from start to exit (see [`attach`]).

pub mod attach;
mod dns;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use liana_images::metadata::{Db, TableName};
use liana_network::{PortMapping, Subnet};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Networks table.
pub const NETWORKS: TableName = TableName("networks");
/// Leases table.
pub const NETWORK_IPS: TableName = TableName("network-ips");

/// How long an address lease of a container that was never recorded (a create that
/// died half-way) is kept before it is reused.
const ORPHAN_LEASE_SECS: u64 = 600;

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The Linux bridge.
    pub bridge: String,
    /// Subnet.
    pub subnet: Subnet,
    /// Gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An address lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container.
    pub container: String,
    /// When it was taken (seconds since the epoch).
    pub since: u64,
}

/// A container's network settings, as recorded at create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSettings {
    /// `none`, `host`, `bridge`, `slirp4netns`, `pasta` or `container` (empty in
    /// records older than networking: none).
    pub mode: String,
    /// The bridge network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The container's address on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// Its MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Options of slirp4netns or pasta.
    #[serde(default)]
    pub options: Vec<String>,
    /// The container whose namespace is joined (`container:ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `--dns`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--add-host NAME:IP`.
    #[serde(default)]
    pub add_hosts: Vec<(String, String)>,
    /// `--network-alias`: more names on its bridge network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Who installed the NAT rules (`nftables`, `iptables`; empty: nftables).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub firewall: String,
}

/// A parsed `--network` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A private namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
    /// A bridge network, by name.
    Bridge(String),
    /// slirp4netns with options.
    Slirp(Vec<String>),
    /// pasta with options.
    Pasta(Vec<String>),
    /// Another container's namespace.
    Container(String),
}

fn opts(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

impl Mode {
    /// Parses `--network` (`default_bridge` is the network of `bridge`).
    pub fn parse(v: &str, default_bridge: &str) -> Result<Mode> {
        let (head, rest) = match v.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (v, None),
        };
        Ok(match (head, rest) {
            ("none" | "private", None) => Mode::None,
            ("host", None) => Mode::Host,
            ("bridge", None) => Mode::Bridge(default_bridge.into()),
            ("slirp4netns", r) => Mode::Slirp(opts(r)),
            ("pasta", r) => Mode::Pasta(opts(r)),
            ("container", Some(id)) if !id.is_empty() => Mode::Container(id.into()),
            (name, None) if crate::ids::validate_name(name).is_ok() => Mode::Bridge(name.into()),
            _ => {
                return Err(Error::flag(
                    "--network",
                    format!(
                        "{v:?}: expected none, host, bridge, a network name, \
                         slirp4netns[:OPTIONS], pasta[:OPTIONS] or container:ID"
                    ),
                ))
            }
        })
    }

    /// The mode's name as recorded.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Host => "host",
            Mode::Bridge(_) => "bridge",
            Mode::Slirp(_) => "slirp4netns",
            Mode::Pasta(_) => "pasta",
            Mode::Container(_) => "container",
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|source| {
        crate::db::DbError::Decode {
            key: key.into(),
            source,
        }
        .into()
    })
}

fn lease_key(net: &str, ip: Ipv4Addr) -> String {
    format!("{net}/{ip}")
}

fn leases_of(list: Vec<(String, Vec<u8>)>, net: &str) -> Result<Vec<(Ipv4Addr, Lease)>> {
    let prefix = format!("{net}/");
    let mut out = Vec::new();
    for (k, v) in list {
        if let Some(ip) = k.strip_prefix(&prefix) {
            if let Ok(ip) = ip.parse() {
                out.push((ip, decode(&k, &v)?));
            }
        }
    }
    Ok(out)
}

impl Engine {
    fn meta_db(&self) -> Result<Db> {
        Ok(self.store()?.metadata().db().clone())
    }

    /// The network file of a container (its namespace, bound).
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.paths.runroot.join("netns").join(id)
    }

    /// The state directory of a container's network helper (short: socket paths).
    pub fn net_state_dir(&self, id: &str) -> PathBuf {
        self.paths.runroot.join("net").join(&id[..id.len().min(12)])
    }

    /// The default network's record (created in the database on first use).
    pub fn default_network(&self) -> Result<Network> {
        let c = &self.config.network;
        if let Some(n) = self.network(&c.default_network)? {
            return Ok(n);
        }
        let subnet: Subnet =
            c.default_subnet
                .parse()
                .map_err(|e: liana_network::ipam::BadSubnet| {
                    Error::flag("network.default_subnet", e.to_string())
                })?;
        let n = Network {
            name: c.default_network.clone(),
            id: crate::ids::new_id(),
            driver: "bridge".into(),
            bridge: c.default_bridge.clone(),
            subnet,
            gateway: subnet.first_host(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels: BTreeMap::new(),
        };
        match self.insert_network(&n) {
            Ok(()) | Err(Error::NetworkExists(_)) => {}
            Err(e) => return Err(e),
        }
        self.network(&c.default_network)?
            .ok_or_else(|| Error::NoSuchNetwork(c.default_network.clone()))
    }

    /// The network `name`.
    pub fn network(&self, name: &str) -> Result<Option<Network>> {
        self.meta_db()?.read(|tx| {
            tx.get(NETWORKS, name)?
                .map(|v| decode(name, &v))
                .transpose()
        })
    }

    /// Every network (the default one included).
    pub fn networks(&self) -> Result<Vec<Network>> {
        if !self.rootless {
            self.default_network()?;
        }
        self.meta_db()?.read(|tx| {
            tx.list(NETWORKS)?
                .iter()
                .map(|(k, v)| decode(k, v))
                .collect()
        })
    }

    fn insert_network(&self, n: &Network) -> Result<()> {
        // A subnet the host already routes elsewhere (its LAN, a VPN, another
        // engine's bridge) would cut the host off from it.
        let overlap =
            liana_network::bridge::host_route_overlap(n.subnet, &n.bridge).map_err(|source| {
                Error::Net {
                    id: format!("network {}", n.name),
                    source,
                }
            })?;
        if let Some(r) = overlap {
            return Err(Error::NetworkConflict {
                name: n.name.clone(),
                reason: format!(
                    "subnet {} overlaps the host's route to {r}: choose another subnet",
                    n.subnet
                ),
            });
        }
        self.meta_db()?.write(|tx| {
            if tx.get(NETWORKS, &n.name)?.is_some() {
                return Err(Error::NetworkExists(n.name.clone()));
            }
            for (k, v) in tx.list(NETWORKS)? {
                let o: Network = decode(&k, &v)?;
                if o.bridge == n.bridge {
                    return Err(Error::NetworkConflict {
                        name: n.name.clone(),
                        reason: format!("bridge {} is used by network {}", n.bridge, o.name),
                    });
                }
                if o.subnet.overlaps(n.subnet) {
                    return Err(Error::NetworkConflict {
                        name: n.name.clone(),
                        reason: format!(
                            "subnet {} overlaps {} of network {}",
                            n.subnet, o.subnet, o.name
                        ),
                    });
                }
            }
            tx.put_json(NETWORKS, &n.name, n)?;
            Ok(())
        })
    }

    /// `network create`.
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        bridge: Option<&str>,
        labels: &[String],
    ) -> Result<Network> {
        let name = crate::ids::validate_name(name).map_err(|_| {
            Error::flag(
                "network name",
                format!("{name:?}: names match [a-zA-Z0-9][a-zA-Z0-9_.-]*"),
            )
        })?;
        if self.rootless {
            return Err(Error::Rootless(format!(
                "network {name}: bridge networks need root (rootless containers use slirp4netns or pasta)"
            )));
        }
        let existing = self.networks()?;
        if existing.iter().any(|n| n.name == name) {
            return Err(Error::NetworkExists(name));
        }
        let subnet: Subnet = match subnet {
            Some(s) => s.parse().map_err(|e: liana_network::ipam::BadSubnet| {
                Error::flag("--subnet", e.to_string())
            })?,
            None => {
                let pool: Subnet = self.config.network.auto_subnets.parse().map_err(
                    |e: liana_network::ipam::BadSubnet| {
                        Error::flag("network.auto_subnets", e.to_string())
                    },
                )?;
                let base = u32::from(pool.addr);
                let count = 1u32 << (24u8.saturating_sub(pool.prefix));
                (0..count)
                    .map(|i| Subnet {
                        addr: Ipv4Addr::from(base + (i << 8)),
                        prefix: 24,
                    })
                    .find(|s| {
                        !existing.iter().any(|n| n.subnet.overlaps(*s))
                            && liana_network::bridge::host_route_overlap(*s, "")
                                .ok()
                                .flatten()
                                .is_none()
                    })
                    .ok_or_else(|| Error::NetworkConflict {
                        name: name.clone(),
                        reason: format!("no free /24 left in {pool}: give --subnet"),
                    })?
            }
        };
        let gateway = match gateway {
            Some(g) => {
                let g: Ipv4Addr = g.parse().map_err(|_| {
                    Error::flag("--gateway", format!("{g:?} is not an IPv4 address"))
                })?;
                if !subnet.contains(g) || g == subnet.addr || g == subnet.broadcast() {
                    return Err(Error::flag(
                        "--gateway",
                        format!("{g} is not a host address of {subnet}"),
                    ));
                }
                g
            }
            None => subnet.first_host(),
        };
        let bridge = match bridge {
            Some(b) => {
                if !liana_network::bridge::valid_ifname(b) {
                    return Err(Error::flag(
                        "--interface-name",
                        format!("{b:?}: 1 to 15 letters, digits, '-', '_' or '.'"),
                    ));
                }
                b.to_string()
            }
            None => (1..)
                .map(|i| format!("liana{i}"))
                .find(|b| !existing.iter().any(|n| &n.bridge == b))
                .expect("a free bridge name"),
        };
        let mut l = BTreeMap::new();
        for x in labels {
            let (k, v) = x.split_once('=').unwrap_or((x.as_str(), ""));
            l.insert(k.to_string(), v.to_string());
        }
        let n = Network {
            name,
            id: crate::ids::new_id(),
            driver: "bridge".into(),
            bridge,
            subnet,
            gateway,
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels: l,
        };
        self.insert_network(&n)?;
        Ok(n)
    }

    /// `network rm`: refuses while containers use it, unless `force` (then they are
    /// removed first). Deletes the bridge.
    pub fn remove_network(&self, name: &str, force: bool) -> Result<Network> {
        let n = self
            .network(name)?
            .ok_or_else(|| Error::NoSuchNetwork(name.into()))?;
        let users: Vec<_> = self
            .containers()?
            .into_iter()
            .filter(|c| c.settings.net.network.as_deref() == Some(name))
            .collect();
        if !users.is_empty() {
            if !force {
                let names: Vec<&str> = users.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::NetworkConflict {
                    name: name.into(),
                    reason: format!(
                        "in use by container(s) {}: remove them first, or use --force",
                        names.join(", ")
                    ),
                });
            }
            for c in users {
                self.remove(&c.id, true, false)?;
            }
        }
        self.stop_dns(name);
        liana_network::bridge::remove_bridge(&n.bridge).map_err(|source| Error::Net {
            id: format!("network {name}"),
            source,
        })?;
        self.meta_db()?.write(|tx| {
            tx.delete(NETWORKS, name)?;
            for (k, _) in tx.list(NETWORK_IPS)? {
                if k.starts_with(&format!("{name}/")) {
                    tx.delete(NETWORK_IPS, &k)?;
                }
            }
            Ok::<_, Error>(())
        })?;
        Ok(n)
    }

    /// `network inspect`: the record and the containers on it.
    pub fn inspect_network(&self, name: &str) -> Result<serde_json::Value> {
        let n = if name == self.config.network.default_network && !self.rootless {
            self.default_network()?
        } else {
            self.network(name)?
                .ok_or_else(|| Error::NoSuchNetwork(name.into()))?
        };
        let mut containers = serde_json::Map::new();
        for (ip, c) in self.network_members(name)? {
            {
                containers.insert(
                    c.id.clone(),
                    serde_json::json!({"Name": c.name, "IPv4Address": format!("{ip}/{}", n.subnet.prefix),
                        "MacAddress": c.settings.net.mac}),
                );
            }
        }
        Ok(serde_json::json!({
            "Name": n.name,
            "Id": n.id,
            "Driver": n.driver,
            "NetworkInterface": n.bridge,
            "Created": n.created,
            "Subnets": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
            "Labels": n.labels,
            "Containers": containers,
        }))
    }

    /// Takes an address on `net` for container `id`: `want`, or the lowest free one.
    pub(crate) fn allocate_ip(
        &self,
        net: &Network,
        id: &str,
        want: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr> {
        let now = now_secs();
        self.meta_db()?.write(|tx| {
            let mut used = BTreeSet::new();
            for (ip, l) in leases_of(tx.list(NETWORK_IPS)?, &net.name)? {
                let recorded = tx.get(crate::db::CONTAINERS, &l.container)?.is_some();
                if recorded || now.saturating_sub(l.since) < ORPHAN_LEASE_SECS {
                    used.insert(ip);
                }
            }
            let ip = match want {
                Some(ip) => {
                    if !net.subnet.assignable(ip, net.gateway) {
                        return Err(Error::flag(
                            "--ip",
                            format!(
                                "{ip} is not a free host address of network {} ({})",
                                net.name, net.subnet
                            ),
                        ));
                    }
                    if used.contains(&ip) {
                        return Err(Error::flag(
                            "--ip",
                            format!("address {ip} is already in use on network {}", net.name),
                        ));
                    }
                    ip
                }
                None => net.subnet.allocate(net.gateway, &used).ok_or_else(|| {
                    Error::NetworkConflict {
                        name: net.name.clone(),
                        reason: format!("no free address left in {}", net.subnet),
                    }
                })?,
            };
            tx.put_json(
                NETWORK_IPS,
                &lease_key(&net.name, ip),
                &Lease {
                    container: id.into(),
                    since: now,
                },
            )?;
            Ok(ip)
        })
    }

    /// Gives back the address of container `id` on `net`.
    pub(crate) fn release_ip(&self, net: &str, id: &str) -> Result<()> {
        self.meta_db()?.write(|tx| {
            for (ip, l) in leases_of(tx.list(NETWORK_IPS)?, net)? {
                if l.container == id {
                    tx.delete(NETWORK_IPS, &lease_key(net, ip))?;
                }
            }
            Ok(())
        })
    }

    /// The containers leased on `net` with their addresses, in one read.
    pub fn network_members(&self, net: &str) -> Result<Vec<(Ipv4Addr, crate::record::Container)>> {
        self.meta_db()?.read(|tx| {
            let mut out = Vec::new();
            for (ip, l) in leases_of(tx.list(NETWORK_IPS)?, net)? {
                if let Some(v) = tx.get(crate::db::CONTAINERS, &l.container)? {
                    out.push((ip, decode(&l.container, &v)?));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let p = |s| Mode::parse(s, "liana").unwrap();
        assert_eq!(p("none"), Mode::None);
        assert_eq!(p("bridge"), Mode::Bridge("liana".into()));
        assert_eq!(p("mynet"), Mode::Bridge("mynet".into()));
        assert_eq!(p("slirp4netns"), Mode::Slirp(vec![]));
        assert_eq!(
            p("slirp4netns:allow_host_loopback=true,mtu=1500"),
            Mode::Slirp(vec!["allow_host_loopback=true".into(), "mtu=1500".into()])
        );
        assert_eq!(
            p("pasta:-T,8080"),
            Mode::Pasta(vec!["-T".into(), "8080".into()])
        );
        assert_eq!(p("container:abc"), Mode::Container("abc".into()));
        assert!(Mode::parse("container:", "x").is_err());
        assert!(Mode::parse("bad/name", "x").is_err());
    }
}

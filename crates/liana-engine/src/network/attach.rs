//! A container's network over its life: the plan at `create` (mode, address lease,
//! ports, /etc files), set-up at start, teardown at exit, `rm` or after a crash
//! (every step runs and every error is logged), and the `/etc/hosts` of the members
//! of a bridge network, which list each other by name.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use liana_network::{bridge, ipam, netns, usermode, NetError, PortMapping};

use super::{Mode, NetSettings};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::options::RunOptions;
use crate::record::Container;

/// The network namespace the spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsSpec {
    /// A new one, made by the runtime.
    Private,
    /// The host's.
    Host,
    /// Join this one (made by the engine at start, or another container's).
    Path(PathBuf),
}

/// What `create` decided.
#[derive(Debug, Clone)]
pub struct NetPlan {
    /// Recorded settings.
    pub settings: NetSettings,
    /// The spec's namespace.
    pub ns: NsSpec,
    /// The name servers of /etc/resolv.conf (empty: the host's).
    pub resolvers: Vec<String>,
}

fn net_err(id: &str) -> impl FnOnce(NetError) -> Error + '_ {
    move |source| Error::Net {
        id: id.into(),
        source,
    }
}

/// Rewrites a bind-mounted file in place (a rename would not reach the container):
/// left alone when unchanged, else overwritten from the start and then cut to length,
/// so that a process reading it meanwhile (the container that was just started, its
/// peers) never finds it empty, as it would between a truncation and the write.
fn rewrite_in_place(f: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    if std::fs::read(f).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().write(true).open(f)?;
    file.write_all_at(text.as_bytes(), 0)?;
    file.set_len(text.len() as u64)
}

/// A name DNS and /etc/hosts can carry: dot-separated labels of 1-63 letters, digits,
/// '-' and '_', not starting or ending with '-', 253 bytes at most.
fn valid_dns_name(n: &str) -> bool {
    n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn parse_add_host(v: &str) -> Result<(String, String)> {
    let (name, ip) = v
        .split_once(':')
        .or_else(|| v.split_once('='))
        .ok_or_else(|| Error::flag("--add-host", format!("{v:?}: expected NAME:IP")))?;
    if name.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::flag(
            "--add-host",
            format!("{v:?}: expected NAME:IP"),
        ));
    }
    Ok((name.into(), ip.into()))
}

/// The firewall a container's rules were installed with.
fn firewall_of(s: &NetSettings) -> liana_network::Firewall {
    if s.firewall == "iptables" {
        liana_network::Firewall::Iptables
    } else {
        liana_network::Firewall::Nftables
    }
}

impl Engine {
    /// Reads the network flags of `o` for container `id`; takes its address lease
    /// (the caller releases it if the create fails).
    pub(crate) fn plan_network(&self, o: &RunOptions, id: &str) -> Result<NetPlan> {
        let c = &self.config.network;
        let given = o.network.clone().unwrap_or_else(|| {
            if self.rootless {
                c.default_rootless.clone()
            } else {
                c.default.clone()
            }
        });
        let mode = Mode::parse(&given, &c.default_network)?;
        let mut s = NetSettings {
            mode: mode.name().into(),
            ..Default::default()
        };
        for d in &o.dns {
            if d.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::flag("--dns", format!("{d:?} is not an IP address")));
            }
            s.dns.push(d.clone());
        }
        for h in &o.add_hosts {
            s.add_hosts.push(parse_add_host(h)?);
        }
        if !o.network_aliases.is_empty() && !matches!(mode, Mode::Bridge(_)) {
            return Err(Error::flag(
                "--network-alias",
                format!("only for bridge networks, not {given}"),
            ));
        }
        for a in &o.network_aliases {
            if !valid_dns_name(a) {
                return Err(Error::flag(
                    "--network-alias",
                    format!("{a:?} is not a valid host name (letters, digits, '-', '_', '.')"),
                ));
            }
            if !s.aliases.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                s.aliases.push(a.clone());
            }
        }
        let own_ns = matches!(mode, Mode::Bridge(_) | Mode::Slirp(_) | Mode::Pasta(_));
        if !o.publish.is_empty() && !own_ns {
            return Err(Error::flag(
                "-p",
                format!("publishing ports needs --network bridge, a network name, slirp4netns or pasta, not {given}"),
            ));
        }
        if (o.ip.is_some() || o.mac_address.is_some()) && !matches!(mode, Mode::Bridge(_)) {
            return Err(Error::flag(
                if o.ip.is_some() {
                    "--ip"
                } else {
                    "--mac-address"
                },
                format!("only for bridge networks, not {given}"),
            ));
        }
        let mut ports: Vec<PortMapping> = Vec::new();
        for p in &o.publish {
            for mut m in
                liana_network::ports::parse(p).map_err(|e| Error::flag("-p", e.to_string()))?
            {
                if m.host_port == 0 {
                    m.host_port = liana_network::ports::pick_free_port(&m.protocol)
                        .map_err(Error::sys("pick a free host port"))?;
                }
                if ports
                    .iter()
                    .any(|q| q.host_port == m.host_port && q.protocol == m.protocol)
                {
                    return Err(Error::flag(
                        "-p",
                        format!(
                            "host port {}/{} is published twice",
                            m.host_port, m.protocol
                        ),
                    ));
                }
                ports.push(m);
            }
        }
        if !ports.is_empty() {
            // Two containers cannot publish the same host port (the first DNAT rule
            // would win silently).
            for other in self.containers()? {
                for q in &other.settings.net.ports {
                    let clash = ports.iter().find(|p| {
                        p.host_port == q.host_port
                            && p.protocol == q.protocol
                            && (p.host_ip.is_none()
                                || q.host_ip.is_none()
                                || p.host_ip == q.host_ip)
                    });
                    if let Some(p) = clash {
                        return Err(Error::flag(
                            "-p",
                            format!(
                                "host port {}/{} is already published by container {}",
                                p.host_port, p.protocol, other.name
                            ),
                        ));
                    }
                }
            }
        }
        s.ports = ports;
        let mut gateway = None;
        let ns = match mode {
            Mode::None => NsSpec::Private,
            Mode::Host => NsSpec::Host,
            Mode::Bridge(name) => {
                if self.rootless {
                    return Err(Error::Rootless(format!(
                        "--network {given}: bridge networks need root; use slirp4netns or pasta"
                    )));
                }
                let net = if name == c.default_network {
                    self.default_network()?
                } else {
                    self.network(&name)?.ok_or(Error::NoSuchNetwork(name))?
                };
                let want =
                    o.ip.as_deref()
                        .map(|v| {
                            v.parse::<Ipv4Addr>().map_err(|_| {
                                Error::flag("--ip", format!("{v:?} is not an IPv4 address"))
                            })
                        })
                        .transpose()?;
                let mac = match o.mac_address.as_deref() {
                    Some(m) => Some(ipam::parse_mac(m).ok_or_else(|| {
                        Error::flag(
                            "--mac-address",
                            format!("{m:?} is not a unicast MAC address"),
                        )
                    })?),
                    None => None,
                };
                let fw = liana_network::Firewall::choose(&c.firewall).ok_or_else(|| {
                    Error::flag(
                        "network.firewall",
                        format!("{:?}: expected auto, nftables or iptables", c.firewall),
                    )
                })?;
                s.firewall = fw.name().into();
                let ip = self.allocate_ip(&net, id, want)?;
                gateway = Some(net.gateway);
                s.mac = Some(ipam::format_mac(mac.unwrap_or_else(|| ipam::mac_for(ip))));
                s.ip = Some(ip);
                s.network = Some(net.name);
                NsSpec::Path(self.netns_path(id))
            }
            Mode::Slirp(o) | Mode::Pasta(o) => {
                s.options = o;
                if self.rootless {
                    NsSpec::Private
                } else {
                    NsSpec::Path(self.netns_path(id))
                }
            }
            Mode::Container(needle) => {
                let t = self.lookup(&needle)?;
                s.container = Some(t.id.clone());
                NsSpec::Path(PathBuf::from(format!(
                    "/proc/{}/ns/net",
                    t.state.pid.max(1)
                )))
            }
        };
        let mut resolvers = s.dns.clone();
        if s.network.is_some() {
            // The network's own name server first, then the given or host's ones.
            let gw = gateway.map(|g| g.to_string());
            if resolvers.is_empty() {
                let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                resolvers = host
                    .lines()
                    .filter_map(|l| l.strip_prefix("nameserver"))
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.starts_with("127.") && a != "::1")
                    .collect();
            }
            resolvers.retain(|r| Some(r) != gw.as_ref());
            resolvers.splice(0..0, gw);
        }
        Ok(NetPlan {
            settings: s,
            ns,
            resolvers,
        })
    }

    /// Set-up before the runtime creates the container: the bridge attachment, the
    /// namespace file of rootful slirp4netns/pasta, the path of `container:ID`.
    pub(crate) fn net_before_start(&self, c: &Container) -> Result<()> {
        let s = &c.settings.net;
        match s.mode.as_str() {
            "bridge" => {
                let name = s.network.clone().unwrap_or_default();
                let net = self.network(&name)?.ok_or(Error::NoSuchNetwork(name))?;
                let ip = s.ip.ok_or_else(|| Error::NetworkConflict {
                    name: net.name.clone(),
                    reason: format!("container {} has no address", c.id),
                })?;
                let mac = s
                    .mac
                    .as_deref()
                    .and_then(ipam::parse_mac)
                    .unwrap_or_else(|| ipam::mac_for(ip));
                let netns_path = self.netns_path(&c.id);
                bridge::setup(&bridge::Attachment {
                    container_id: &c.id,
                    netns: &netns_path,
                    bridge: &net.bridge,
                    subnet: net.subnet,
                    gateway: net.gateway,
                    ip,
                    mac,
                    ports: &s.ports,
                    firewall: firewall_of(s),
                })
                .map_err(net_err(&c.id))?;
                tracing::debug!(id = %c.id, %ip, "network: bridge attached");
                self.ensure_dns(&net);
            }
            "slirp4netns" | "pasta" if !c.settings.rootless => {
                let p = self.netns_path(&c.id);
                if !netns::exists(&p) {
                    netns::create(&p)
                        .map_err(liana_network::op(format!(
                            "create network namespace {}",
                            p.display()
                        )))
                        .map_err(net_err(&c.id))?;
                }
            }
            "container" => {
                let target = s.container.clone().unwrap_or_default();
                let t = self.lookup(&target)?;
                if t.observe(&self.paths).0 != crate::record::Status::Running {
                    return Err(Error::flag(
                        "--network",
                        format!("container:{target}: that container is not running"),
                    ));
                }
                self.set_spec_netns(c, &format!("/proc/{}/ns/net", t.state.pid))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn set_spec_netns(&self, c: &Container, path: &str) -> Result<()> {
        let f = self.paths.container_dir(&c.id).join("config.json");
        let b = std::fs::read(&f).map_err(Error::io("read", &f))?;
        let mut v: serde_json::Value = serde_json::from_slice(&b)
            .map_err(|e| Error::sys("parse config.json")(std::io::Error::other(e)))?;
        if let Some(ns) = v
            .pointer_mut("/linux/namespaces")
            .and_then(|n| n.as_array_mut())
        {
            for n in ns.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = path.into();
                }
            }
        }
        std::fs::write(&f, serde_json::to_vec_pretty(&v).expect("json"))
            .map_err(Error::io("write", &f))
    }

    /// Set-up once the runtime created the container (its init is `pid`): the
    /// slirp4netns or pasta helper. Returns slirp4netns's exit pipe, to keep open while
    /// the container runs.
    pub(crate) fn net_after_create(&self, c: &Container, pid: i32) -> Result<Option<OwnedFd>> {
        let s = &c.settings.net;
        let netns_path = self.netns_path(&c.id);
        let dir = self.net_state_dir(&c.id);
        let target = if c.settings.rootless {
            usermode::Target::Pid(pid)
        } else {
            usermode::Target::File(&netns_path)
        };
        let h = usermode::Helper {
            state_dir: &dir,
            target,
            options: &s.options,
            ports: &s.ports,
        };
        match s.mode.as_str() {
            "slirp4netns" => {
                let (hp, fd) = usermode::start_slirp(&h).map_err(net_err(&c.id))?;
                tracing::debug!(id = %c.id, pid = hp, "network: slirp4netns started");
                Ok(Some(fd))
            }
            "pasta" => {
                let hp = usermode::start_pasta(&h).map_err(net_err(&c.id))?;
                tracing::debug!(id = %c.id, pid = hp, "network: pasta started");
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Tears down what start set up; every step runs, every failure is logged and
    /// returned.
    pub(crate) fn net_teardown(&self, c: &Container) -> Vec<NetError> {
        let s = &c.settings.net;
        let netns_path = self.netns_path(&c.id);
        let errs = match s.mode.as_str() {
            "bridge" => bridge::teardown(&c.id, &netns_path, firewall_of(s)),
            "slirp4netns" | "pasta" => {
                let mut e = usermode::stop(&self.net_state_dir(&c.id));
                if let Err(x) = netns::remove(&netns_path) {
                    e.push(liana_network::op(format!(
                        "remove {}",
                        netns_path.display()
                    ))(x));
                }
                e
            }
            _ => Vec::new(),
        };
        for e in &errs {
            tracing::warn!("network teardown of {}: {}", c.id, crate::error_chain(e));
        }
        errs
    }

    /// Rewrites (in place: the files are bind-mounted) the /etc/hosts of every
    /// container on network `net`, each listing the others by name; `gone` is left
    /// out.
    pub(crate) fn refresh_hosts(&self, net: &str, gone: Option<&str>) {
        let Ok(members) = self.network_members(net) else {
            return;
        };
        let members: Vec<Container> = members
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| Some(c.id.as_str()) != gone)
            .collect();
        for c in &members {
            let text = self.hosts_text(c, &members);
            let f = self.paths.container_dir(&c.id).join("hosts");
            if f.exists() {
                if let Err(e) = rewrite_in_place(&f, &text) {
                    tracing::warn!("update {}: {e}", f.display());
                }
            }
        }
    }

    /// The /etc/hosts of `c` among `members` of its network.
    pub(crate) fn hosts_text(&self, c: &Container, members: &[Container]) -> String {
        let mut extra = c.settings.net.add_hosts.clone();
        for m in members {
            if m.id != c.id {
                if let Some(ip) = m.settings.net.ip {
                    extra.push((m.name.clone(), ip.to_string()));
                    for a in &m.settings.net.aliases {
                        extra.push((a.clone(), ip.to_string()));
                    }
                }
            }
        }
        crate::etc::hosts(
            &crate::etc::EtcInput {
                hostname: &c.settings.hostname,
                name: &c.name,
                id: &c.id,
                image: &c.image,
                host_network: false,
                rootless: c.settings.rootless,
                ip: c.settings.net.ip,
                extra_hosts: &extra,
                dns: &c.settings.net.dns,
            },
            None,
        )
    }
}

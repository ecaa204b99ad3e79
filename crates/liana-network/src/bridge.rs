//! The bridge driver (rootful): a Linux bridge per network holding the gateway
//! address, and per container a veth pair (`lv<12 hex>` on the bridge, `eth0` in the
//! container's namespace) with its address and default route, plus its nftables
//! table (masquerade, published ports).

use std::net::Ipv4Addr;
use std::path::Path;

use crate::ipam::Subnet;
use crate::netlink::Netlink;
use crate::ports::PortMapping;
use crate::{netns, nft, op, NetError};

/// The host end of a container's veth pair.
pub fn veth_name(container_id: &str) -> String {
    format!("lv{}", &container_id[..container_id.len().min(12)])
}

/// Whether `name` can be a bridge name (what the kernel takes: 1 to 15 bytes, no
/// `/`, `:` or blanks).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn sysctl(path: &str, value: &str) -> Result<(), NetError> {
    let cur = std::fs::read_to_string(path).unwrap_or_default();
    if cur.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(op(format!("write {value} to {path}")))
}

/// Creates the bridge `name` with `gateway/prefix` if missing, and sets it up.
pub fn ensure_bridge(
    nl: &mut Netlink,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
) -> Result<u32, NetError> {
    let idx = match nl
        .link_index(name)
        .map_err(op(format!("look up link {name}")))?
    {
        Some(i) => i,
        None => {
            match nl.add_bridge(name) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                    return Err(op(format!("create bridge {name}"))(e))
                }
                _ => {}
            }
            nl.link_index(name)
                .map_err(op(format!("look up link {name}")))?
                .ok_or_else(|| {
                    op(format!("find the new bridge {name}"))(std::io::ErrorKind::NotFound.into())
                })?
        }
    };
    nl.add_address(idx, gateway, prefix)
        .map_err(op(format!("add {gateway}/{prefix} to bridge {name}")))?;
    nl.set_up(idx)
        .map_err(op(format!("set bridge {name} up")))?;
    // Published ports answer on the host's 127.0.0.1: DNAT from loopback to the
    // bridge needs route_localnet on it.
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "1",
    )?;
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    Ok(idx)
}

/// Deletes a bridge; a missing one is fine.
pub fn remove_bridge(name: &str) -> Result<(), NetError> {
    let mut nl = Netlink::new().map_err(op("open a netlink socket"))?;
    if let Some(i) = nl
        .link_index(name)
        .map_err(op(format!("look up link {name}")))?
    {
        nl.del_link(i)
            .map_err(op(format!("delete bridge {name}")))?;
    }
    Ok(())
}

/// The host route that `subnet` would collide with (another interface's network),
/// leaving out the routes of the bridge `own` (the network's, once it exists; empty:
/// none left out).
pub fn host_route_overlap(subnet: Subnet, own: &str) -> Result<Option<String>, NetError> {
    let mut nl = Netlink::new().map_err(op("open a netlink socket"))?;
    let own_index = if own.is_empty() {
        None
    } else {
        nl.link_index(own)
            .map_err(op(format!("look up link {own}")))?
    };
    let routes = nl.ipv4_routes().map_err(op("list the host's routes"))?;
    Ok(routes
        .into_iter()
        .filter(|(_, _, oif)| own_index.is_none() || *oif != own_index)
        .find(|(d, len, _)| {
            (*len >= 8)
                .then(|| Subnet {
                    addr: Ipv4Addr::from(u32::from(*d) & (u32::MAX << (32 - u32::from(*len)))),
                    prefix: *len,
                })
                .is_some_and(|r| r.overlaps(subnet))
        })
        .map(|(d, len, _)| format!("{d}/{len}")))
}

/// One container's attachment to a bridge network.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The container id.
    pub container_id: &'a str,
    /// Its network namespace file (created here).
    pub netns: &'a Path,
    /// The network's bridge.
    pub bridge: &'a str,
    /// The network's subnet.
    pub subnet: Subnet,
    /// Its gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Published ports.
    pub ports: &'a [PortMapping],
    /// Who installs the NAT rules.
    pub firewall: crate::Firewall,
}

/// Sets up the namespace, veth pair, address, route and NAT; undoes what it did on
/// failure.
pub fn setup(a: &Attachment<'_>) -> Result<(), NetError> {
    let r = setup_inner(a);
    if r.is_err() {
        for e in teardown(a.container_id, a.netns, a.firewall) {
            tracing::warn!("undo network set-up of {}: {e}", a.container_id);
        }
    }
    r
}

fn setup_inner(a: &Attachment<'_>) -> Result<(), NetError> {
    if !netns::exists(a.netns) {
        netns::create(a.netns).map_err(op(format!(
            "create network namespace {}",
            a.netns.display()
        )))?;
    }
    let mut nl = Netlink::new().map_err(op("open a netlink socket"))?;
    let br = ensure_bridge(&mut nl, a.bridge, a.gateway, a.subnet.prefix)?;
    let veth = veth_name(a.container_id);
    if let Some(i) = nl
        .link_index(&veth)
        .map_err(op(format!("look up link {veth}")))?
    {
        // A leftover of a run that was not torn down.
        nl.del_link(i)
            .map_err(op(format!("delete stale link {veth}")))?;
    }
    let ns = netns::open(a.netns).map_err(op(format!("open {}", a.netns.display())))?;
    use std::os::fd::AsRawFd;
    nl.add_veth(&veth, "eth0", ns.as_raw_fd(), Some(a.mac), None)
        .map_err(op(format!("create veth pair {veth}/eth0")))?;
    let vi = nl
        .link_index(&veth)
        .map_err(op(format!("look up link {veth}")))?
        .ok_or_else(|| {
            op(format!("find the new link {veth}"))(std::io::ErrorKind::NotFound.into())
        })?;
    nl.set_master_up(vi, br)
        .map_err(op(format!("attach {veth} to bridge {}", a.bridge)))?;
    // Hairpin: a container reaching its own published port through a host address
    // comes back out of the bridge port it came in by (the NAT rules masquerade it).
    sysctl(&format!("/sys/class/net/{veth}/brport/hairpin_mode"), "1")?;
    let (ip, prefix, gw) = (a.ip, a.subnet.prefix, a.gateway);
    netns::enter(a.netns, || {
        let mut inner = Netlink::new()?;
        if let Some(lo) = inner.link_index("lo")? {
            inner.set_up(lo)?;
        }
        let eth0 = inner
            .link_index("eth0")?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        inner.add_address(eth0, ip, prefix)?;
        inner.set_up(eth0)?;
        inner.add_default_route(gw)
    })
    .map_err(op(format!(
        "configure eth0 ({ip}/{prefix}, default route via {gw}) in {}",
        a.netns.display()
    )))?;
    let nat = nft::ContainerNat {
        table: nft::table_name(a.container_id),
        ip: a.ip,
        subnet: a.subnet,
        ports: a.ports,
    };
    match a.firewall {
        crate::Firewall::Nftables => nft::apply(&nat)?,
        crate::Firewall::Iptables => crate::iptables::apply(a.container_id, &nat)?,
    }
    if crate::forward::apply(a.container_id, a.ip)? {
        std::fs::write(forward_marker(a.netns), "")
            .map_err(op(format!("record forward rules of {}", a.container_id)))?;
    }
    Ok(())
}

/// Next to the namespace file: set-up installed FORWARD accept rules
/// ([`crate::forward`]) that teardown must remove.
fn forward_marker(netns_path: &Path) -> std::path::PathBuf {
    netns_path.with_extension("forward")
}

/// Removes the container's NAT table, veth pair and namespace; every step runs, and
/// every failure is returned.
pub fn teardown(container_id: &str, netns_path: &Path, firewall: crate::Firewall) -> Vec<NetError> {
    let mut errs = Vec::new();
    let veth = veth_name(container_id);
    let mut nl = Netlink::new();
    let veth_index = match &mut nl {
        Ok(nl) => nl.link_index(&veth).ok().flatten(),
        Err(_) => None,
    };
    // Set-up makes the namespace first and the table last, teardown removes the
    // namespace last: without both, there is nothing to tear down (saves an nft run
    // when rm follows the exit's teardown).
    if netns::exists(netns_path) || veth_index.is_some() {
        let r = match firewall {
            crate::Firewall::Nftables => nft::delete(&nft::table_name(container_id)),
            crate::Firewall::Iptables => crate::iptables::delete(container_id),
        };
        if let Err(e) = r {
            errs.push(e.into());
        }
        // Only where set-up installed them: spares the hot path an iptables-save.
        let marker = forward_marker(netns_path);
        if marker.exists() {
            match crate::forward::delete(container_id) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&marker);
                }
                Err(e) => errs.push(e.into()),
            }
        }
    }
    match nl {
        Ok(mut nl) => match nl.link_index(&veth) {
            Ok(Some(i)) => {
                if let Err(e) = nl.del_link(i) {
                    if e.raw_os_error() != Some(libc::ENODEV) {
                        errs.push(op(format!("delete link {veth}"))(e));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => errs.push(op(format!("look up link {veth}"))(e)),
        },
        Err(e) => errs.push(op("open a netlink socket")(e)),
    }
    if let Err(e) = netns::remove(netns_path) {
        errs.push(op(format!(
            "remove network namespace {}",
            netns_path.display()
        ))(e));
    }
    errs
}

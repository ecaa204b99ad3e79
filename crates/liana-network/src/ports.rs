//! `-p [ip:][host:]container[/tcp|udp]` with ranges (`8000-8002:80-82`).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on (all local addresses when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    /// Host port (0 before a free one is picked).
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A `-p` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid port mapping {spec:?}: {reason}")]
pub struct BadPort {
    /// The value.
    pub spec: String,
    /// Why.
    pub reason: String,
}

/// The most ports one `-p` range may publish.
pub const MAX_RANGE: u32 = 1024;

fn range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (a > 0 && b >= a).then_some((a, b))
}

/// Parses one `-p` value; host port 0 means "pick a free one" (see
/// [`pick_free_port`]).
pub fn parse(spec: &str) -> Result<Vec<PortMapping>, BadPort> {
    let bad = |reason: &str| BadPort {
        spec: spec.into(),
        reason: reason.into(),
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(bad("the protocol must be tcp or udp"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => return Err(bad("expected [ip:][host_port:]container_port[/protocol]")),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(a) => Some(
            a.parse::<Ipv4Addr>()
                .map_err(|_| bad("the host address must be an IPv4 address"))?,
        ),
    };
    let (c1, c2) = range(ctr).ok_or_else(|| bad("container port must be 1-65535 or a range"))?;
    let n = u32::from(c2 - c1) + 1;
    if n > MAX_RANGE {
        return Err(bad(&format!(
            "a range may publish at most {MAX_RANGE} ports"
        )));
    }
    let host_start = if host.is_empty() {
        None
    } else {
        let (h1, h2) = range(host).ok_or_else(|| bad("host port must be 1-65535 or a range"))?;
        if u32::from(h2 - h1) + 1 != n {
            return Err(bad("host and container ranges differ in length"));
        }
        Some(h1)
    };
    Ok((0..n as u16)
        .map(|i| PortMapping {
            host_ip,
            host_port: host_start.map_or(0, |h| h + i),
            container_port: c1 + i,
            protocol: proto.into(),
        })
        .collect())
}

/// A host port free right now for `protocol` (the kernel's pick).
pub fn pick_free_port(protocol: &str) -> std::io::Result<u16> {
    if protocol == "udp" {
        Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    } else {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse("8080:80").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].host_port, p[0].container_port), (8080, 80));
        assert_eq!(p[0].protocol, "tcp");
        let p = parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p[0].protocol, "udp");
        let p = parse("8000-8002:80-82").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (8002, 82));
        assert_eq!(parse("80").unwrap()[0].host_port, 0);
        assert_eq!(parse("127.0.0.1::80").unwrap()[0].host_port, 0);
        for b in [
            "",
            "x",
            "80/sctp",
            "1:2:3:4",
            "8000-8001:80",
            "0:80",
            "70000:80",
            "a.b:1:2",
        ] {
            assert!(parse(b).is_err(), "{b}");
        }
    }
}

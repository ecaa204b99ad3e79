//! IPv4 subnets and address allocation. The allocator is pure: the caller passes the
//! addresses in use (kept by the engine in its metadata database, in the same
//! transaction that records the new lease), so no address is handed out twice.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet (`10.89.0.0/24`), stored as its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

/// A subnet text that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid subnet {0:?}: expected an IPv4 network like 10.89.0.0/24 (prefix 8 to 30)")]
pub struct BadSubnet(pub String);

impl Subnet {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two subnets share addresses.
    pub fn overlaps(self, other: Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The first usable address (the default gateway).
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The broadcast address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` may be given to a container: inside, not the network, broadcast
    /// or gateway address.
    pub fn assignable(self, ip: Ipv4Addr, gateway: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast() && ip != gateway
    }

    /// The lowest assignable address not in `used`.
    pub fn allocate(self, gateway: Ipv4Addr, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let (lo, hi) = (u32::from(self.addr) + 1, u32::from(self.broadcast()));
        (lo..hi)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != gateway && !used.contains(ip))
    }
}

impl FromStr for Subnet {
    type Err = BadSubnet;
    fn from_str(s: &str) -> Result<Self, BadSubnet> {
        let bad = || BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let n = Subnet { addr, prefix };
        if u32::from(addr) & !n.mask() != 0 {
            return Err(bad());
        }
        Ok(n)
    }
}

impl TryFrom<String> for Subnet {
    type Error = BadSubnet;
    fn try_from(s: String) -> Result<Self, BadSubnet> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC address for `ip`, locally administered (`02:42:` + the address, like
/// docker), or parsed from `--mac-address`.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Parses `aa:bb:cc:dd:ee:ff` (a unicast address).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    (m[0] & 1 == 0).then_some(m)
}

/// Formats a MAC address.
pub fn format_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s: Subnet = "10.89.3.0/24".parse().unwrap();
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 89, 3, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 3, 255));
        assert!(s.contains(Ipv4Addr::new(10, 89, 3, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 4, 1)));
        assert!(s.overlaps("10.89.0.0/16".parse().unwrap()));
        assert!(!s.overlaps("10.89.4.0/24".parse().unwrap()));
        for bad in [
            "10.89.3.1/24",
            "10.89.3.0",
            "10.89.3.0/31",
            "x/24",
            "10.89.3.0/99",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"10.89.3.0/24\"");
    }

    #[test]
    fn allocation_never_repeats() {
        let s: Subnet = "10.89.3.0/29".parse().unwrap();
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        let mut got = Vec::new();
        while let Some(ip) = s.allocate(gw, &used) {
            assert!(s.assignable(ip, gw));
            used.insert(ip);
            got.push(ip);
        }
        // .0 network, .1 gateway, .7 broadcast: .2 to .6.
        assert_eq!(got.len(), 5);
        used.remove(&Ipv4Addr::new(10, 89, 3, 4));
        assert_eq!(s.allocate(gw, &used), Some(Ipv4Addr::new(10, 89, 3, 4)));
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:0a:59:03:02"),
            Some([2, 0x42, 10, 0x59, 3, 2])
        );
        assert_eq!(parse_mac("01:00:00:00:00:00"), None);
        assert_eq!(parse_mac("zz"), None);
        assert_eq!(
            format_mac(mac_for(Ipv4Addr::new(10, 89, 3, 2))),
            "02:42:0a:59:03:02"
        );
    }
}

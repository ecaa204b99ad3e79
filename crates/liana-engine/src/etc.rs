//! Files the engine writes for each container and bind-mounts into it: `/etc/hostname`,
//! `/etc/hosts`, `/etc/resolv.conf`, and podman's `/run/.containerenv` marker.

use std::path::Path;

/// What the files describe.
#[derive(Debug, Clone)]
pub struct EtcInput<'a> {
    /// Hostname.
    pub hostname: &'a str,
    /// Container name.
    pub name: &'a str,
    /// Container id.
    pub id: &'a str,
    /// Image name.
    pub image: &'a str,
    /// The container shares the host's network namespace.
    pub host_network: bool,
    /// Rootless.
    pub rootless: bool,
    /// The container's address on its bridge network (else its names are on
    /// 127.0.1.1).
    pub ip: Option<std::net::Ipv4Addr>,
    /// More `NAME IP` entries (`--add-host`, the other containers of its network).
    pub extra_hosts: &'a [(String, String)],
    /// `--dns` servers (instead of the host's).
    pub dns: &'a [String],
}

/// `/etc/hosts` content.
pub fn hosts(i: &EtcInput<'_>, host_hosts: Option<&str>) -> String {
    if i.host_network {
        if let Some(h) = host_hosts {
            return h.to_string();
        }
    }
    let mut s = String::from(
        "127.0.0.1\tlocalhost localhost.localdomain\n\
         ::1\tlocalhost localhost.localdomain ip6-localhost ip6-loopback\n",
    );
    let mut names = vec![i.hostname];
    if i.name != i.hostname {
        names.push(i.name);
    }
    let own = i.ip.map_or("127.0.1.1".to_string(), |a| a.to_string());
    s.push_str(&format!("{own}\t{}\n", names.join(" ")));
    for (name, ip) in i.extra_hosts {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

/// `/etc/resolv.conf` content from the host's: with a private network namespace,
/// loopback name servers (a local resolver on the host) are unreachable and dropped.
/// `dns` (`--dns`) replaces the host's name servers.
pub fn resolv_conf(host: &str, host_network: bool, dns: &[String]) -> String {
    if host_network && dns.is_empty() {
        return host.to_string();
    }
    let mut out: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    out.extend(
        host.lines()
            .filter(|l| {
                let mut w = l.split_whitespace();
                !(w.next() == Some("nameserver")
                    && (!dns.is_empty()
                        || w.next()
                            .is_some_and(|a| a.starts_with("127.") || a == "::1")))
            })
            .map(|l| format!("{l}\n")),
    );
    out
}

/// `/run/.containerenv` content (podman's format).
pub fn containerenv(i: &EtcInput<'_>) -> String {
    format!(
        "engine=\"liana-{}\"\nname=\"{}\"\nid=\"{}\"\nimage=\"{}\"\nrootless={}\n",
        env!("CARGO_PKG_VERSION"),
        i.name,
        i.id,
        i.image,
        u8::from(i.rootless)
    )
}

/// Writes the four files into `dir`.
pub fn write_all(dir: &Path, i: &EtcInput<'_>) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{}\n", i.hostname))?;
    let host_hosts = std::fs::read_to_string("/etc/hosts").ok();
    std::fs::write(dir.join("hosts"), hosts(i, host_hosts.as_deref()))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(
        dir.join("resolv.conf"),
        resolv_conf(&host_resolv, i.host_network, i.dns),
    )?;
    std::fs::write(dir.join(".containerenv"), containerenv(i))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(host_network: bool) -> EtcInput<'static> {
        EtcInput {
            hostname: "abc123",
            name: "web",
            id: "abc123def",
            image: "busybox",
            host_network,
            rootless: false,
            ip: None,
            extra_hosts: &[],
            dns: &[],
        }
    }

    #[test]
    fn files() {
        let h = hosts(&input(false), Some("1.2.3.4 host\n"));
        assert!(h.contains("127.0.1.1\tabc123 web\n"), "{h}");
        assert_eq!(
            hosts(&input(true), Some("1.2.3.4 host\n")),
            "1.2.3.4 host\n"
        );
        let r = resolv_conf(
            "search x\nnameserver 127.0.0.53\nnameserver 9.9.9.9\n",
            false,
            &[],
        );
        assert_eq!(r, "search x\nnameserver 9.9.9.9\n");
        let r = resolv_conf(
            "search x\nnameserver 9.9.9.9\n",
            false,
            &["10.1.2.3".into()],
        );
        assert_eq!(r, "nameserver 10.1.2.3\nsearch x\n");
        let extra = [("db".to_string(), "10.89.0.3".to_string())];
        let i = EtcInput {
            ip: Some(std::net::Ipv4Addr::new(10, 89, 0, 2)),
            extra_hosts: &extra,
            ..input(false)
        };
        let h = hosts(&i, None);
        assert!(h.contains("10.89.0.2\tabc123 web\n10.89.0.3\tdb\n"), "{h}");
        assert!(containerenv(&input(false)).contains("name=\"web\""));
    }
}

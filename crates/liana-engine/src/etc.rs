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
    s.push_str(&format!("127.0.1.1\t{}\n", names.join(" ")));
    s
}

/// `/etc/resolv.conf` content from the host's: with a private network namespace,
/// loopback name servers (a local resolver on the host) are unreachable and dropped.
pub fn resolv_conf(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_string();
    }
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
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
        resolv_conf(&host_resolv, i.host_network),
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
        );
        assert_eq!(r, "search x\nnameserver 9.9.9.9\n");
        assert!(containerenv(&input(false)).contains("name=\"web\""));
    }
}

//! The name server of a bridge network: `liana network dns-serve NAME` (hidden),
//! started at the first container start on the network, listening on the gateway's
//! port 53, answering the names (hostnames, aliases) of the containers leased on the
//! network and forwarding other names to `[network] dns_forward`, by default the
//! host's name servers (a stub resolver on 127.0.0.53 too, which the containers
//! could not reach themselves). It exits by itself once the bridge has had no port
//! for a few seconds, and `network rm` stops it.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::Network;
use crate::engine::Engine;
use crate::error::{Error, Result};

impl Engine {
    fn dns_pid_file(&self, name: &str) -> std::path::PathBuf {
        self.paths.runroot.join("dns").join(format!("{name}.pid"))
    }

    /// Starts the network's name server unless one answers already.
    pub(crate) fn ensure_dns(&self, net: &Network) {
        // Free port: nobody serves it yet (a race with a concurrent start is harmless:
        // the second server cannot bind and exits).
        if UdpSocket::bind((net.gateway, 53)).is_err() {
            return;
        }
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.global_args)
            .args(["network", "dns-serve", &net.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid and sigprocmask only, async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(c) => tracing::debug!(network = %net.name, pid = c.id(), "dns server started"),
            Err(e) => tracing::warn!("start the name server of network {}: {e}", net.name),
        }
    }

    /// Stops the network's name server, if it runs.
    pub(crate) fn stop_dns(&self, name: &str) {
        let f = self.dns_pid_file(name);
        let pid: i32 = std::fs::read_to_string(&f)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if pid > 1 && cmdline.contains("dns-serve") && cmdline.contains(name) {
            // SAFETY: kill takes integers; the pid is this network's server.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = std::fs::remove_file(f);
    }

    /// Names on `net` that `q` designates: container names, hostnames, aliases, id
    /// prefixes of 12 digits or more.
    fn dns_lookup(&self, net: &str, q: &str) -> Option<Vec<Ipv4Addr>> {
        let mut out = Vec::new();
        for (ip, c) in self.network_members(net).ok()? {
            if c.name.eq_ignore_ascii_case(q)
                || c.settings.hostname.eq_ignore_ascii_case(q)
                || c.settings
                    .net
                    .aliases
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(q))
                || (q.len() >= 12 && c.id.starts_with(q))
            {
                out.push(ip);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Where names that are not a network's go: `[network] dns_forward`, or the host's
    /// /etc/resolv.conf name servers.
    fn dns_upstreams(&self) -> Vec<std::net::SocketAddr> {
        match &self.config.network.dns_forward {
            Some(list) => list.iter().map(|u| u.0).collect(),
            None => {
                host_name_servers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            }
        }
    }

    /// `network dns-serve NAME`: runs the name server until the bridge stays empty.
    pub fn serve_dns(&self, name: &str) -> Result<()> {
        let net = self
            .network(name)?
            .ok_or_else(|| Error::NoSuchNetwork(name.into()))?;
        let sock = UdpSocket::bind((net.gateway, 53)).map_err(Error::sys(format!(
            "listen on {}:53 for network {name}",
            net.gateway
        )))?;
        let f = self.dns_pid_file(name);
        if let Some(d) = f.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let _ = std::fs::write(&f, std::process::id().to_string());
        let upstreams = self.dns_upstreams();
        let brif = format!("/sys/class/net/{}/brif", net.bridge);
        let mut idle = 0;
        let r = liana_network::dns::serve(
            &sock,
            |q| self.dns_lookup(name, q),
            &upstreams,
            || {
                let empty = std::fs::read_dir(&brif).map_or(true, |d| d.count() == 0);
                idle = if empty { idle + 1 } else { 0 };
                idle < 3
            },
        );
        let _ = std::fs::remove_file(&f);
        r.map_err(Error::sys(format!("serve names of network {name}")))
    }
}

/// The `nameserver` addresses of a resolv.conf, port 53.
fn host_name_servers(resolv_conf: &str) -> Vec<std::net::SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_name_servers() {
        let s = super::host_name_servers(
            "# x\nsearch example\nnameserver 127.0.0.53\nnameserver  10.0.0.1 \nnameserver bogus\nnameserver ::1\n",
        );
        let s: Vec<String> = s.iter().map(|a| a.to_string()).collect();
        assert_eq!(s, ["127.0.0.53:53", "10.0.0.1:53", "[::1]:53"]);
    }
}

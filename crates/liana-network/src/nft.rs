//! NAT with nftables: one table per container (`ip liana_<12 hex of its id>`) with its
//! masquerade for outbound traffic and the DNAT rules of its published ports, so that
//! teardown is one `delete table`. Rules go through the `nft` command's script input
//! (`nft -f -`), one atomic transaction per change.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::ports::PortMapping;

/// nft failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// It could not run.
    #[error("run nft (install the nftables package)")]
    Spawn(#[source] std::io::Error),
    /// It refused the change.
    #[error("nft {what}: {message}")]
    Failed {
        /// What was asked.
        what: String,
        /// Its error output.
        message: String,
    },
}

/// The table of a container.
pub fn table_name(container_id: &str) -> String {
    format!("liana_{}", &container_id[..container_id.len().min(12)])
}

/// What a container's table holds.
#[derive(Debug, Clone)]
pub struct ContainerNat<'a> {
    /// Table name ([`table_name`]).
    pub table: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// Its network.
    pub subnet: Subnet,
    /// Published ports.
    pub ports: &'a [PortMapping],
}

/// The nft script that (re)creates the container's table.
pub fn script(n: &ContainerNat<'_>) -> String {
    let t = &n.table;
    let mut dnat = String::new();
    for p in n.ports {
        let dst = match p.host_ip {
            Some(a) => format!("ip daddr {a}"),
            None => "fib daddr type local".into(),
        };
        dnat.push_str(&format!(
            "\t\t{dst} {proto} dport {hp} dnat to {ip}:{cp}\n",
            proto = p.protocol,
            hp = p.host_port,
            ip = n.ip,
            cp = p.container_port
        ));
    }
    format!(
        "add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority -100; policy accept;\n{dnat}\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n{dnat}\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority 100; policy accept;\n\
         \t\tip saddr {ip} ip daddr != {subnet} masquerade\n\
         \t\tip saddr 127.0.0.0/8 ip daddr {ip} ct status dnat masquerade\n\
         \t\tip saddr {subnet} ip daddr {ip} ct status dnat masquerade\n\t}}\n}}\n",
        ip = n.ip,
        subnet = n.subnet,
    )
}

/// Runs `args` (the command first) with `input` on stdin; its stdout, or an error with
/// its stderr naming `what`. Shared by the nft and iptables back ends.
pub(crate) fn run(args: &[&str], input: Option<&str>, what: &str) -> Result<String, NftError> {
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(NftError::Spawn)?;
    if let (Some(s), Some(mut w)) = (input, child.stdin.take()) {
        let _ = w.write_all(s.as_bytes());
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(NftError::Failed {
        what: what.into(),
        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Installs (or replaces) a container's table.
pub fn apply(n: &ContainerNat<'_>) -> Result<(), NftError> {
    run(
        &["nft", "-f", "-"],
        Some(&script(n)),
        &format!("add table {}", n.table),
    )
    .map(drop)
}

/// Deletes a container's table; a missing one is fine.
pub fn delete(table: &str) -> Result<(), NftError> {
    // "add" first makes the delete succeed when the table is missing, in one
    // transaction.
    run(
        &["nft", "-f", "-"],
        Some(&format!("add table ip {table}\ndelete table ip {table}\n")),
        &format!("delete table {table}"),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_has_the_rules() {
        let ports = crate::ports::parse("127.0.0.1:8080:80").unwrap();
        let s = script(&ContainerNat {
            table: table_name("0123456789abcdef"),
            ip: Ipv4Addr::new(10, 89, 1, 2),
            subnet: "10.89.1.0/24".parse().unwrap(),
            ports: &ports,
        });
        assert!(s.contains("table ip liana_0123456789ab {"), "{s}");
        assert!(
            s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.89.1.2:80"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.89.1.2 ip daddr != 10.89.1.0/24 masquerade"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.89.1.0/24 ip daddr 10.89.1.2 ct status dnat masquerade"),
            "{s}"
        );
    }
}

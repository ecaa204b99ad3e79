//! The same NAT as [`crate::nft`] through iptables, for hosts where only iptables
//! exists: per container, chains `LIANA-<12 hex>` (DNAT, jumped to from PREROUTING and
//! OUTPUT for local destinations) and `LIANA-<12 hex>-P` (masquerade, from
//! POSTROUTING) in the nat table, installed and removed with one `iptables-restore
//! --noflush` each.

use crate::nft::{run, ContainerNat, NftError};

/// The DNAT chain of a container.
pub fn chain_name(container_id: &str) -> String {
    format!("LIANA-{}", &container_id[..container_id.len().min(12)])
}

fn jumps(chain: &str) -> [String; 3] {
    [
        format!("PREROUTING -m addrtype --dst-type LOCAL -j {chain}"),
        format!("OUTPUT -m addrtype --dst-type LOCAL -j {chain}"),
        format!("POSTROUTING -j {chain}-P"),
    ]
}

/// The iptables-restore input that installs a container's chains (`chain` from
/// [`chain_name`]).
pub fn script(chain: &str, n: &ContainerNat<'_>) -> String {
    let mut s = format!("*nat\n:{chain} - [0:0]\n:{chain}-P - [0:0]\n");
    for p in n.ports {
        let dst = p.host_ip.map(|a| format!(" -d {a}/32")).unwrap_or_default();
        s.push_str(&format!(
            "-A {chain}{dst} -p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {ip}:{cp}\n",
            proto = p.protocol,
            hp = p.host_port,
            ip = n.ip,
            cp = p.container_port
        ));
    }
    s.push_str(&format!(
        "-A {chain}-P -s {ip}/32 ! -d {subnet} -j MASQUERADE\n\
         -A {chain}-P -s 127.0.0.0/8 -d {ip}/32 -m conntrack --ctstate DNAT -j MASQUERADE\n\
         -A {chain}-P -s {subnet} -d {ip}/32 -m conntrack --ctstate DNAT -j MASQUERADE\n",
        ip = n.ip,
        subnet = n.subnet
    ));
    for j in jumps(chain) {
        s.push_str(&format!("-A {j}\n"));
    }
    s.push_str("COMMIT\n");
    s
}

/// Installs (or replaces) a container's chains.
pub fn apply(container_id: &str, n: &ContainerNat<'_>) -> Result<(), NftError> {
    let chain = chain_name(container_id);
    delete(container_id)?;
    run(
        &["iptables-restore", "--noflush", "-w"],
        Some(&script(&chain, n)),
        &format!("iptables: add chain {chain}"),
    )
    .map(drop)
}

/// Removes a container's chains and the jumps to them; missing ones are fine.
pub fn delete(container_id: &str) -> Result<(), NftError> {
    let chain = chain_name(container_id);
    remove_chains(
        "nat",
        &jumps(&chain),
        &[chain.clone(), format!("{chain}-P")],
    )
}

/// Removes `chains` of `table` and the rules `jumps` (`CHAIN -j TARGET`) that lead to
/// them, in one `iptables-restore --noflush`; the ones not there are skipped.
pub(crate) fn remove_chains(
    table: &str,
    jumps: &[String],
    chains: &[String],
) -> Result<(), NftError> {
    let rules = run(
        &["iptables-save", "-t", table],
        None,
        &format!("iptables-save -t {table}"),
    )?;
    let mut s = format!("*{table}\n");
    let mut any = false;
    for j in jumps {
        if rules.lines().any(|l| l == format!("-A {j}")) {
            s.push_str(&format!("-D {j}\n"));
            any = true;
        }
    }
    for c in chains {
        if rules.lines().any(|l| l.starts_with(&format!(":{c} "))) {
            s.push_str(&format!("-F {c}\n-X {c}\n"));
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    s.push_str("COMMIT\n");
    run(
        &["iptables-restore", "--noflush", "-w"],
        Some(&s),
        &format!("iptables: delete chains {}", chains.join(", ")),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_has_the_rules() {
        let ports = crate::ports::parse("127.0.0.1:8080:80/udp").unwrap();
        let n = ContainerNat {
            table: String::new(),
            ip: "10.89.1.2".parse().unwrap(),
            subnet: "10.89.1.0/24".parse().unwrap(),
            ports: &ports,
        };
        let s = script("LIANA-0123456789ab", &n);
        assert!(s.contains("-A LIANA-0123456789ab -d 127.0.0.1/32 -p udp -m udp --dport 8080 -j DNAT --to-destination 10.89.1.2:80\n"), "{s}");
        assert!(
            s.contains("-A LIANA-0123456789ab-P -s 10.89.1.2/32 ! -d 10.89.1.0/24 -j MASQUERADE"),
            "{s}"
        );
        assert!(
            s.contains("-A POSTROUTING -j LIANA-0123456789ab-P\n"),
            "{s}"
        );
        assert!(s.ends_with("COMMIT\n"));
    }
}

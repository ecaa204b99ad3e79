//! Hosts whose iptables `filter` FORWARD chain drops by default (docker sets that
//! policy to DROP; so do hardened hosts): a container's routed traffic needs accept
//! rules of its own there, as docker and netavark add. nftables cannot help from a table
//! of ours: a packet must pass every base chain of the hook, and that chain drops it.
//!
//! Per container, chain `LIANA-<12 hex>-F` in the filter table, jumped to first from
//! FORWARD: what leaves the container's address, replies to it, and connections DNAT'd
//! to it (its published ports). Installed only where `iptables` exists and the policy is
//! DROP (set-up leaves a marker next to the namespace file); removed at the teardown of
//! a container with the marker, with one `iptables-restore --noflush` each way.

use std::net::Ipv4Addr;

use crate::nft::run;
use crate::nft::NftError;

/// The forward chain of a container.
pub fn chain_name(container_id: &str) -> String {
    format!("{}-F", crate::iptables::chain_name(container_id))
}

fn jump(chain: &str) -> String {
    format!("FORWARD -j {chain}")
}

/// Whether the filter table's FORWARD chain drops what no rule accepts.
pub fn policy_drops() -> Result<bool, NftError> {
    if !crate::found("iptables") {
        return Ok(false);
    }
    let out = run(
        &["iptables", "-w", "-S", "FORWARD"],
        None,
        "iptables -S FORWARD",
    )?;
    Ok(out.lines().any(|l| l.trim() == "-P FORWARD DROP"))
}

/// The iptables-restore input that installs the chain for the container at `ip`.
pub fn script(chain: &str, ip: Ipv4Addr) -> String {
    format!(
        "*filter\n:{chain} - [0:0]\n\
         -A {chain} -s {ip}/32 -j ACCEPT\n\
         -A {chain} -d {ip}/32 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n\
         -I FORWARD 1 -j {chain}\nCOMMIT\n"
    )
}

/// Installs the container's chain when the FORWARD policy drops; whether it did.
pub fn apply(container_id: &str, ip: Ipv4Addr) -> Result<bool, NftError> {
    if !policy_drops()? {
        return Ok(false);
    }
    let chain = chain_name(container_id);
    delete(container_id)?;
    run(
        &["iptables-restore", "--noflush", "-w"],
        Some(&script(&chain, ip)),
        &format!("iptables: add chain {chain}"),
    )?;
    Ok(true)
}

/// Removes the container's chain and the jump to it, if there (and iptables is).
pub fn delete(container_id: &str) -> Result<(), NftError> {
    if !crate::found("iptables-save") {
        return Ok(());
    }
    let chain = chain_name(container_id);
    crate::iptables::remove_chains("filter", &[jump(&chain)], std::slice::from_ref(&chain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_accepts_the_container_first() {
        let s = script(
            &chain_name("0123456789abcdef"),
            "10.89.1.2".parse().unwrap(),
        );
        assert!(
            s.starts_with("*filter\n:LIANA-0123456789ab-F - [0:0]\n"),
            "{s}"
        );
        assert!(
            s.contains("-A LIANA-0123456789ab-F -s 10.89.1.2/32 -j ACCEPT\n"),
            "{s}"
        );
        assert!(
            s.contains("-d 10.89.1.2/32 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"),
            "{s}"
        );
        assert!(
            s.contains("-I FORWARD 1 -j LIANA-0123456789ab-F\nCOMMIT\n"),
            "{s}"
        );
    }
}

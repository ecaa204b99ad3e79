//! liana's container networking, one module per piece:
//!
//! - [`netlink`]: a small synchronous rtnetlink client (links, addresses, routes);
//! - [`netns`]: named network namespaces (a bind mount on a file);
//! - [`ipam`]: subnets and address allocation;
//! - [`ports`]: `-p` parsing;
//! - [`nft`]: masquerade and published ports with nftables, one table per container;
//! - [`iptables`]: the same with iptables, where nftables is missing;
//! - [`bridge`]: the rootful bridge driver (bridge, veth pair, address, route, NAT);
//! - [`usermode`]: the rootless drivers, slirp4netns and pasta;
//! - [`dns`]: the name server of a bridge network.
//!
//! The engine keeps networks and address leases in its metadata database and calls
//! these drivers at start (set-up) and at exit, `rm` or after a crash (teardown).

pub mod bridge;
pub mod dns;
pub mod forward;
pub mod ipam;
pub mod iptables;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod usermode;

pub use ipam::Subnet;
pub use ports::PortMapping;

/// A networking operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A system or netlink operation.
    #[error("{op}")]
    Op {
        /// What was done, naming the link, address or file.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// nftables.
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    /// A helper (slirp4netns, pasta) failed.
    #[error("{helper}: {message}")]
    Helper {
        /// Its name.
        helper: &'static str,
        /// What went wrong (with its log).
        message: String,
    },
}

/// Which tool installs the NAT rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    /// `nft` (one table per container).
    Nftables,
    /// `iptables-restore` (two chains per container).
    Iptables,
}

impl Firewall {
    /// The name as configured and recorded.
    pub fn name(self) -> &'static str {
        match self {
            Firewall::Nftables => "nftables",
            Firewall::Iptables => "iptables",
        }
    }

    /// `nftables`, `iptables`, or `auto`/empty: nftables when `nft` is installed, else
    /// iptables when it is, else nftables (whose error then names the package).
    pub fn choose(pref: &str) -> Option<Firewall> {
        match pref {
            "nftables" => Some(Firewall::Nftables),
            "iptables" => Some(Firewall::Iptables),
            "auto" | "" => Some(if !found("nft") && found("iptables-restore") {
                Firewall::Iptables
            } else {
                Firewall::Nftables
            }),
            _ => None,
        }
    }
}

/// Whether the command `b` is installed (in PATH, /usr/sbin or /sbin).
pub(crate) fn found(b: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(b).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(b).is_file())
}

/// A closure turning an io::Error into [`NetError::Op`].
pub fn op(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let op = what.into();
    move |source| NetError::Op { op, source }
}

//! `linux.sysctl`: which keys a container may set, and setting them.
//!
//! Only namespaced sysctls are allowed, as runc does: IPC ones need a private IPC
//! namespace, `net.*` a private network namespace, `kernel.domainname` a private UTS
//! namespace. `kernel.hostname` is refused in favour of the `hostname` field. Anything
//! else would change the host and is refused.

use oci_spec::runtime::LinuxNamespaceType;

use crate::config::NamespaceSet;

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Returns why `key` may not be set with these namespaces, if it may not.
pub fn check_allowed(key: &str, ns: &NamespaceSet) -> Result<(), String> {
    let key = key.replace('/', ".");
    if IPC_KEYS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        if ns.is_private(LinuxNamespaceType::Ipc) {
            return Ok(());
        }
        return Err("IPC sysctls need a private ipc namespace".into());
    }
    if key.starts_with("net.") {
        if ns.is_private(LinuxNamespaceType::Network) {
            return Ok(());
        }
        return Err("net sysctls need a private network namespace".into());
    }
    if key == "kernel.hostname" {
        return Err("kernel.hostname is not allowed: use the hostname field".into());
    }
    if key == "kernel.domainname" {
        if ns.is_private(LinuxNamespaceType::Uts) {
            return Ok(());
        }
        return Err("kernel.domainname needs a private uts namespace".into());
    }
    Err("not in a kernel namespace the container owns: refused".into())
}

/// The path of `key` below `/proc/sys`.
pub fn proc_path(key: &str) -> String {
    if key.contains('/') {
        key.trim_start_matches('/').to_owned()
    } else {
        key.replace('.', "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;

    fn ns(types: &[&str]) -> NamespaceSet {
        let list: Vec<_> = types
            .iter()
            .map(|t| serde_json::json!({"type": t}))
            .collect();
        let v = serde_json::json!({"ociVersion":"1.2.0","linux":{"namespaces":list}});
        let spec: Spec = serde_json::from_value(v).unwrap();
        NamespaceSet::from_spec(&spec)
    }

    #[test]
    fn rules() {
        assert!(check_allowed("kernel.msgmax", &ns(&["ipc"])).is_ok());
        assert!(check_allowed("kernel.msgmax", &ns(&["uts"])).is_err());
        assert!(check_allowed("fs.mqueue.queues_max", &ns(&[])).is_err());
        assert!(check_allowed("net.ipv4.ping_group_range", &ns(&["network"])).is_ok());
        assert!(check_allowed("net.ipv4.ping_group_range", &ns(&["ipc"])).is_err());
        assert!(check_allowed("kernel.hostname", &ns(&["uts"])).is_err());
        assert!(check_allowed("kernel.domainname", &ns(&["uts"])).is_ok());
        assert!(check_allowed("kernel.domainname", &ns(&[])).is_err());
        assert!(check_allowed("vm.swappiness", &ns(&["uts", "ipc", "network"])).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(proc_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.1/forwarding"),
            "net/ipv4/conf/eth0.1/forwarding"
        );
    }
}

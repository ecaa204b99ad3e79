//! The `rootless` step: what changes when an unprivileged user runs the container.
//!
//! With the built-in runtime the spec gets a user namespace mapping the caller to root
//! and its subordinate ids above (see [`crate::rootless`]); an external runtime runs
//! inside such a namespace itself and gets none. Either way: no cgroup limits on a
//! cgroup v1 host (nothing is delegated), no `gid=5` on /dev/pts unless gid 5 is
//! mapped, and the host's /proc or /sys bind-mounted where a new instance cannot be
//! mounted (`--pid host`, `--network host`).

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::json;

use super::{mount, SpecError, SpecInput};

fn maps(m: &[crate::rootless::IdMap]) -> serde_json::Value {
    json!(m
        .iter()
        .map(|r| json!({"containerID": r.container, "hostID": r.host, "size": r.size}))
        .collect::<Vec<_>>())
}

/// The step.
pub fn apply(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let Some(m) = i.rootless else {
        return Ok(());
    };
    let has_ns = |spec: &Spec, t: LinuxNamespaceType| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
    };
    let host_pid = !has_ns(spec, LinuxNamespaceType::Pid);
    let host_net = !has_ns(spec, LinuxNamespaceType::Network);
    let gid5 = !i.user_namespace || m.has_gid(5);
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    if i.user_namespace {
        let ns = linux.namespaces_mut().get_or_insert_with(Vec::new);
        ns.push(serde_json::from_value(json!({"type": "user"})).map_err(SpecError::Template)?);
        linux.set_uid_mappings(serde_json::from_value(maps(&m.uids)).ok());
        linux.set_gid_mappings(serde_json::from_value(maps(&m.gids)).ok());
    }
    if i.cgroups_path.is_none() {
        linux.set_resources(None);
        linux.set_cgroups_path(None);
    }
    let mounts = spec.mounts_mut().get_or_insert_with(Vec::new);
    mounts.retain(|x| x.destination().to_str() != Some("/sys/fs/cgroup"));
    for x in mounts.iter_mut() {
        let dest = x.destination().to_str().unwrap_or("").to_string();
        if dest == "/dev/pts" && !gid5 {
            let o: Vec<String> = x
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| o != "gid=5")
                .collect();
            x.set_options(Some(o));
        }
        if dest == "/proc" && host_pid {
            *x = mount(
                "/proc",
                "bind",
                "/proc",
                &["rbind", "nosuid", "noexec", "nodev"],
            );
        }
        if dest == "/sys" && host_net {
            *x = mount(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
        }
    }
    Ok(())
}

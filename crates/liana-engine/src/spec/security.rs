//! The `security` step: capabilities (podman's default set, `--cap-add`, `--cap-drop`),
//! the seccomp profile (see [`crate::seccomp`]), no-new-privileges, and `--privileged`
//! (every capability, no seccomp, no masked or read-only paths, writable /sys, the
//! host's devices).

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{LinuxCapabilities, Spec};
use serde_json::json;

use super::{SpecError, SpecInput};

/// podman's default capabilities (containers.conf `default_capabilities`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability by number.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this process may hand out: the ones the kernel knows that are in
/// our bounding set (a sandbox without CAP_SYS_RESOURCE cannot grant it).
pub fn kernel_caps() -> Vec<&'static str> {
    let last = liana_container::capabilities::last_cap() as usize;
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// `sys_admin`, `CAP_SYS_ADMIN`, `SYS_ADMIN` → `CAP_SYS_ADMIN`; `all` → `ALL`.
pub fn normalize_cap(name: &str) -> Result<String, SpecError> {
    let up = name.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::Flag {
            flag: "--cap-add/--cap-drop",
            reason: format!("unknown capability {name:?}"),
        })
    }
}

/// The capability set from the defaults and the flags.
pub fn capability_set(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    let all = kernel_caps();
    let mut set: Vec<String> = if privileged {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for d in drop {
        match normalize_cap(d)?.as_str() {
            "ALL" => set.clear(),
            c => set.retain(|x| x != c),
        }
    }
    for a in add {
        match normalize_cap(a)?.as_str() {
            "ALL" => set = all.iter().map(|s| s.to_string()).collect(),
            c if !set.iter().any(|x| x == c) => set.push(c.to_string()),
            _ => {}
        }
    }
    set.sort();
    Ok(set)
}

/// What `--security-opt` asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `seccomp=FILE`.
    pub seccomp_file: Option<String>,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
}

/// Parses `--security-opt` values.
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut s = SecurityOpts::default();
    for o in opts {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("seccomp", "unconfined") => s.seccomp_unconfined = true,
            ("seccomp", f) if !f.is_empty() => s.seccomp_file = Some(f.into()),
            ("no-new-privileges", "" | "true") => s.no_new_privileges = true,
            ("no-new-privileges", "false") => s.no_new_privileges = false,
            // No SELinux or AppArmor here: accepted and ignored, as podman does on hosts
            // without them.
            ("label", _) | ("apparmor", _) => {}
            _ => {
                return Err(SpecError::Flag {
                    flag: "--security-opt",
                    reason: format!(
                        "{o:?}: expected seccomp=unconfined|FILE, no-new-privileges, label=… or apparmor=…"
                    ),
                })
            }
        }
    }
    Ok(s)
}

fn host_devices() -> Vec<serde_json::Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/dev") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["console", "ptmx", "tty", "pts", "shm", "mqueue"].contains(&name.as_str()) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let ft = m.file_type();
        let typ = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = m.rdev();
        out.push(json!({
            "path": format!("/dev/{name}"), "type": typ,
            "major": libc::major(rdev), "minor": libc::minor(rdev),
            "fileMode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid()
        }));
    }
    out
}

/// The step.
pub fn apply(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let o = i.opts;
    let sec = parse_security_opts(&o.security_opt)?;
    let caps = capability_set(&o.cap_add, &o.cap_drop, o.privileged)?;
    let p = spec.process_mut().get_or_insert_with(Default::default);
    let root = p.user().uid() == 0;
    let set = json!(caps);
    let none = json!([]);
    let c: LinuxCapabilities = serde_json::from_value(json!({
        "bounding": set,
        "effective": if root { &set } else { &none },
        "permitted": if root { &set } else { &none },
    }))
    .map_err(SpecError::Template)?;
    p.set_capabilities(Some(c));
    if sec.no_new_privileges {
        p.set_no_new_privileges(Some(true));
    }
    let seccomp = if o.privileged || sec.seccomp_unconfined {
        None
    } else {
        let caps: HashSet<String> = caps.into_iter().collect();
        Some(crate::seccomp::load(
            sec.seccomp_file.as_deref().map(Path::new),
            &caps,
        )?)
    };
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    linux.set_seccomp(seccomp);
    if o.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        let devs = host_devices();
        if !devs.is_empty() {
            linux.set_devices(serde_json::from_value(json!(devs)).ok());
        }
        let mut r = serde_json::to_value(linux.resources().clone().unwrap_or_default())
            .expect("resources serialize");
        r["devices"] = json!([{"allow": true, "access": "rwm"}]);
        linux.set_resources(serde_json::from_value(r).ok());
        for m in spec.mounts_mut().iter_mut().flatten() {
            if ["/sys", "/sys/fs/cgroup"].contains(&m.destination().to_str().unwrap_or("")) {
                let opts: Vec<String> = m
                    .options()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|x| if x == "ro" { "rw".into() } else { x })
                    .collect();
                m.set_options(Some(opts));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        let s = capability_set(
            &["sys_admin".into()],
            &["CAP_CHOWN".into(), "kill".into()],
            false,
        )
        .unwrap();
        assert!(s.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!s.contains(&"CAP_CHOWN".to_string()) && !s.contains(&"CAP_KILL".to_string()));
        assert_eq!(s.len(), DEFAULT_CAPS.len() - 1);
        assert!(capability_set(&[], &["all".into()], false)
            .unwrap()
            .is_empty());
        assert!(capability_set(&["bogus".into()], &[], false).is_err());
        assert!(capability_set(&[], &[], true).unwrap().len() > 30);
    }

    #[test]
    fn security_opts() {
        let s = parse_security_opts(&["seccomp=unconfined".into(), "no-new-privileges".into()])
            .unwrap();
        assert!(s.seccomp_unconfined && s.no_new_privileges);
        assert_eq!(
            parse_security_opts(&["seccomp=/p.json".into()])
                .unwrap()
                .seccomp_file
                .as_deref(),
            Some("/p.json")
        );
        assert!(parse_security_opts(&["bogus".into()]).is_err());
    }
}

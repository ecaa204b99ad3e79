//! The seccomp profile of a container: podman's default profile (Debian's
//! `/usr/share/containers/seccomp.json`, package golang-github-containers-common), or a
//! `--security-opt seccomp=FILE`, resolved for this host's architecture and kernel and
//! for the container's capabilities into the OCI `linux.seccomp` object.
//!
//! The docker/podman profile format adds to the OCI one an `archMap` (architecture and
//! sub-architectures) and, per rule, `includes`/`excludes` on capabilities (all
//! included ones needed, none of the excluded ones), architectures (Go names) and a
//! minimum kernel. A profile already in OCI form passes through unchanged.
//!
//! When the system profile is missing, our copy of it in OCI form (resolved for x86-64
//! with the default capabilities) is used.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

/// Where podman's default profile is installed.
pub const SYSTEM_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Our copy, for x86-64 and the default capabilities.
const BUILTIN_X86_64: &str = include_str!("seccomp-default-x86_64.json");

/// A profile that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The file cannot be read.
    #[error("read seccomp profile {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not a profile.
    #[error("seccomp profile {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Go's name of this host's architecture (`includes.arches` uses them).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// libseccomp's name of this host's architecture.
pub fn scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn kernel_version() -> (u32, u32) {
    let r = rustix::system::uname();
    let release = r.release().to_string_lossy().into_owned();
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Resolves a docker/podman-format profile for this host and `caps` (names like
/// `CAP_SYS_ADMIN`) into an OCI seccomp object (as JSON).
pub fn resolve(profile: &Value, caps: &HashSet<String>) -> Value {
    if profile.get("archMap").is_none() && profile.get("architectures").is_some() {
        return profile.clone();
    }
    let arch = go_arch();
    let kernel = kernel_version();
    let mut architectures: Vec<Value> = Vec::new();
    if let Some(map) = profile["archMap"].as_array() {
        if let Some(e) = map.iter().find(|e| e["architecture"] == scmp_arch()) {
            architectures.push(e["architecture"].clone());
            architectures.extend(
                e["subArchitectures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
    let mut rules = Vec::new();
    for call in profile["syscalls"].as_array().into_iter().flatten() {
        let (inc, exc) = (&call["includes"], &call["excludes"]);
        let arches = list(&inc["arches"]);
        if !arches.is_empty() && !arches.contains(&arch) {
            continue;
        }
        if list(&exc["arches"]).contains(&arch) {
            continue;
        }
        if !list(&inc["caps"]).iter().all(|c| caps.contains(*c)) {
            continue;
        }
        if list(&exc["caps"]).iter().any(|c| caps.contains(*c)) {
            continue;
        }
        if let Some(min) = inc["minKernel"].as_str() {
            let mut it = min.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
            let want = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            if kernel < want {
                continue;
            }
        }
        let names: Vec<Value> = match call.get("names") {
            Some(Value::Array(n)) if !n.is_empty() => n.clone(),
            _ => match call.get("name") {
                Some(n @ Value::String(_)) => vec![n.clone()],
                _ => continue,
            },
        };
        let mut rule = json!({"names": names, "action": call["action"]});
        if let Some(e) = call.get("errnoRet").filter(|v| !v.is_null()) {
            rule["errnoRet"] = e.clone();
        }
        if let Some(a) = call["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = Value::Array(a.clone());
        }
        rules.push(rule);
    }
    let mut out = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": rules,
    });
    if let Some(e) = profile.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    if let Some(f) = profile.get("flags").filter(|v| v.is_array()) {
        out["flags"] = f.clone();
    }
    out
}

/// The profile to use: `explicit` (a file) or the default one, resolved for `caps`.
pub fn load(explicit: Option<&Path>, caps: &HashSet<String>) -> Result<LinuxSeccomp, SeccompError> {
    let (name, text) = match explicit {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|source| SeccompError::Read {
                path: p.into(),
                source,
            })?,
        ),
        None => match std::fs::read_to_string(SYSTEM_PROFILE) {
            Ok(t) => (SYSTEM_PROFILE.to_string(), t),
            Err(_) if std::env::consts::ARCH == "x86_64" => {
                ("built-in profile".to_string(), BUILTIN_X86_64.to_string())
            }
            Err(source) => {
                return Err(SeccompError::Read {
                    path: SYSTEM_PROFILE.into(),
                    source,
                })
            }
        },
    };
    let invalid = |reason: String| SeccompError::Invalid {
        path: name.clone(),
        reason,
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if v.get("defaultAction").is_none() {
        return Err(invalid("no defaultAction".into()));
    }
    serde_json::from_value(resolve(&v, caps)).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(c: &[&str]) -> HashSet<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolves_capability_rules() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [{"architecture": scmp_arch(), "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
                {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["nope"]}},
                {"names": ["y"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "999.0"}}
            ]
        });
        let r = resolve(&p, &caps(&["CAP_SYS_CHROOT"]));
        let names: Vec<&str> = r["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"][0].as_str().unwrap())
            .collect();
        assert_eq!(names, ["read"]);
        assert_eq!(r["architectures"].as_array().unwrap().len(), 2);
        assert_eq!(r["defaultErrnoRet"], 38);
        let r = resolve(&p, &caps(&["CAP_SYS_ADMIN"]));
        assert_eq!(r["syscalls"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn loads_default() {
        let s = load(None, &caps(&["CAP_CHOWN"])).unwrap();
        assert!(s.syscalls().as_ref().is_some_and(|v| v.len() > 5));
    }
}

//! Loading and validating a bundle's `config.json` (runtime-spec config.md).
//!
//! Everything that can be checked without touching the system is checked here, before
//! any state directory, cgroup, mount or process exists, so a bad config leaves nothing
//! behind. Errors name the offending field with its JSON path (`process.cwd`,
//! `linux.namespaces[2].type`, `mounts[4].destination`).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

use crate::sysctl;

/// Errors while reading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read config {path}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("config {path} is not valid JSON")]
    Json {
        /// The config file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A field has the wrong type or an unknown value.
    #[error("config {path}: field `{field}`: {message}")]
    Field {
        /// The config file.
        path: PathBuf,
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("config: `{field}`: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The root filesystem is missing.
    #[error("config: `root.path`: rootfs {path} does not exist or is not a directory")]
    Rootfs {
        /// Resolved rootfs path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A validated container id: letters, digits, `_`, `+`, `-`, `.`; not starting with
/// `.` (names the state root keeps for itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, ConfigError> {
        let ok = !id.is_empty()
            && !id.starts_with('.')
            && id.len() <= 1024
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(invalid(
                "id",
                format!("invalid container id {id:?}: use letters, digits, '_', '+', '-', '.'"),
            ))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A loaded, validated configuration with its absolute locations.
#[derive(Debug, Clone)]
pub struct Config {
    /// The parsed spec (unknown capabilities already dropped).
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
}

/// Reads `config` (default `BUNDLE/config.json`; a relative `config` is relative to the
/// bundle, as crun's `--config`), then validates it.
pub fn load(bundle: &Path, config: Option<&Path>) -> Result<Config, ConfigError> {
    load_with(bundle, config, |_| Ok(()))
}

/// Like [`load`], running `precheck` on the raw JSON before typed parsing (for checks
/// that must win over type errors, such as flag/config conflicts).
pub fn load_with(
    bundle: &Path,
    config: Option<&Path>,
    precheck: impl FnOnce(&Value) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    let bundle = absolute(bundle).map_err(|source| ConfigError::Read {
        path: bundle.to_owned(),
        source,
    })?;
    let path = match config {
        Some(c) if c.is_absolute() => c.to_owned(),
        Some(c) => bundle.join(c),
        None => bundle.join("config.json"),
    };
    let bytes = std::fs::read(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let spec = parse_checked(&path, &bytes, precheck)?;
    let in_file = |e: ConfigError| match e {
        ConfigError::Invalid { field, reason } => ConfigError::Field {
            path: path.clone(),
            field,
            message: reason,
        },
        other => other,
    };
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing: the container needs a root filesystem"))
        .map_err(in_file)?;
    if root.path().as_os_str().is_empty() {
        return Err(in_file(invalid("root.path", "empty")));
    }
    let rootfs = bundle.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .and_then(|p| {
            if p.is_dir() {
                Ok(p)
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
            }
        })
        .map_err(|source| ConfigError::Rootfs {
            path: rootfs.clone(),
            source,
        })?;
    validate(&spec).map_err(in_file)?;
    Ok(Config {
        spec,
        bundle,
        rootfs,
    })
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// Parses config bytes. Unknown capability names are dropped with a warning (as runc
/// and crun do); every other type error names its field.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec, ConfigError> {
    parse_checked(path, bytes, |_| Ok(()))
}

fn parse_checked(
    path: &Path,
    bytes: &[u8],
    precheck: impl FnOnce(&Value) -> Result<(), ConfigError>,
) -> Result<Spec, ConfigError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|source| ConfigError::Json {
        path: path.to_owned(),
        source,
    })?;
    precheck(&value)?;
    drop_unknown_capabilities(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Field {
        path: path.to_owned(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Parses a process JSON (`exec --process`), with the same leniency for unknown
/// capabilities as the config.
pub fn parse_process(path: &Path, bytes: &[u8]) -> Result<oci_spec::runtime::Process, ConfigError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|source| ConfigError::Json {
        path: path.to_owned(),
        source,
    })?;
    let mut wrapped = serde_json::json!({ "process": value });
    drop_unknown_capabilities(&mut wrapped);
    serde_path_to_error::deserialize(wrapped["process"].take()).map_err(|e| ConfigError::Field {
        path: path.to_owned(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn drop_unknown_capabilities(value: &mut Value) {
    let Some(caps) = value
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        if let Some(list) = list.as_array_mut() {
            list.retain(|c| {
                let known = c
                    .as_str()
                    .is_some_and(|s| crate::capabilities::by_name(s).is_some());
                if !known {
                    tracing::warn!("unknown capability {c} in process.capabilities.{set}: ignored");
                }
                known
            });
        }
    }
}

/// True when `..` components climb above `/` (lexically).
fn escapes_root(p: &Path) -> bool {
    let mut depth: i32 = 0;
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// Namespace bookkeeping used by validation and by process creation.
#[derive(Debug, Default, Clone, Copy)]
pub struct NamespaceSet {
    new: u32,
    joined: u32,
}

impl NamespaceSet {
    /// Builds the set from `linux.namespaces`.
    pub fn from_spec(spec: &Spec) -> Self {
        let mut set = Self::default();
        if let Some(nss) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) {
            for ns in nss {
                let bit = ns.typ() as u32;
                if ns.path().is_some() {
                    set.joined |= bit;
                } else {
                    set.new |= bit;
                }
            }
        }
        set
    }

    /// Records a namespace joined by path.
    pub fn mark_joined(&mut self, t: LinuxNamespaceType) {
        self.joined |= t as u32;
    }

    /// True when the container gets a new namespace of this type.
    pub fn is_new(&self, t: LinuxNamespaceType) -> bool {
        self.new & t as u32 != 0
    }

    /// True when the container joins an existing namespace of this type.
    pub fn is_joined(&self, t: LinuxNamespaceType) -> bool {
        self.joined & t as u32 != 0
    }

    /// True when the container does not share this namespace with the runtime.
    pub fn is_private(&self, t: LinuxNamespaceType) -> bool {
        self.is_new(t) || self.is_joined(t)
    }
}

/// Checks everything that can be checked statically.
pub fn validate(spec: &Spec) -> Result<(), ConfigError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing: nothing to run"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must contain at least one element"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    let linux = spec.linux().as_ref();
    let ns = NamespaceSet::from_spec(spec);
    if let Some(nss) = linux.and_then(|l| l.namespaces().as_ref()) {
        let mut seen = HashSet::new();
        for (i, n) in nss.iter().enumerate() {
            if !seen.insert(n.typ() as u32) {
                return Err(invalid(
                    format!("linux.namespaces[{i}]"),
                    format!("namespace {} listed twice", n.typ()),
                ));
            }
            if let Some(p) = n.path() {
                if !p.is_absolute() {
                    return Err(invalid(
                        format!("linux.namespaces[{i}].path"),
                        format!("{p:?} is not an absolute path"),
                    ));
                }
            }
        }
    }
    let has_maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    if ns.is_new(LinuxNamespaceType::User) {
        let l = linux.expect("namespaces imply linux");
        if l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs uidMappings",
            ));
        }
        if l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "linux.gidMappings",
                "a new user namespace needs gidMappings",
            ));
        }
    } else if has_maps && !ns.is_joined(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !ns.is_private(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting the hostname needs a private uts namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !ns.is_private(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "setting the domainname needs a private uts namespace",
        ));
    }
    if !ns.is_private(LinuxNamespaceType::Mount) {
        if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(invalid(
                "mounts",
                "mounts need a mount namespace in linux.namespaces",
            ));
        }
        let masks = linux.is_some_and(|l| {
            l.masked_paths().as_ref().is_some_and(|m| !m.is_empty())
                || l.readonly_paths().as_ref().is_some_and(|m| !m.is_empty())
        });
        if masks {
            return Err(invalid(
                "linux.maskedPaths",
                "masked and readonly paths need a mount namespace",
            ));
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{:?} is not an absolute path", m.destination()),
                ));
            }
            if escapes_root(m.destination()) {
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{:?} escapes the container's root", m.destination()),
                ));
            }
            crate::mounts::MountOptions::parse(m.options().as_deref().unwrap_or_default())
                .map_err(|reason| invalid(format!("mounts[{i}].options"), reason))?;
        }
    }
    if let Some(l) = linux {
        if let Some(devs) = l.devices() {
            for (i, d) in devs.iter().enumerate() {
                if !d.path().is_absolute() {
                    return Err(invalid(
                        format!("linux.devices[{i}].path"),
                        format!("{:?} is not an absolute path", d.path()),
                    ));
                }
            }
        }
        if let Some(sysctls) = l.sysctl() {
            for key in sysctls.keys() {
                sysctl::check_allowed(key, &ns)
                    .map_err(|reason| invalid(format!("linux.sysctl.{key}"), reason))?;
            }
        }
        if l.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
            && !ns.is_new(LinuxNamespaceType::Time)
        {
            return Err(invalid(
                "linux.timeOffsets",
                "time offsets need a new time namespace",
            ));
        }
        if let Some(prop) = l.rootfs_propagation() {
            if !prop.is_empty() && crate::mounts::propagation_flag(prop).is_none() {
                return Err(invalid(
                    "linux.rootfsPropagation",
                    format!("unknown propagation {prop:?}"),
                ));
            }
        }
    }
    if let Some(rl) = process.rlimits() {
        for (i, r) in rl.iter().enumerate() {
            if r.soft() > r.hard() {
                return Err(invalid(
                    format!("process.rlimits[{i}]"),
                    format!("soft limit {} exceeds hard limit {}", r.soft(), r.hard()),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},
        "args":["/bin/true"],"cwd":"/"},"root":{"path":"rootfs"},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    fn with(f: impl FnOnce(&mut Value)) -> Result<Spec, ConfigError> {
        let mut v: Value = serde_json::from_str(MIN).unwrap();
        f(&mut v);
        let bytes = serde_json::to_vec(&v).unwrap();
        let spec = parse(Path::new("config.json"), &bytes)?;
        validate(&spec)?;
        Ok(spec)
    }

    fn field_of(e: ConfigError) -> String {
        match e {
            ConfigError::Field { field, .. } | ConfigError::Invalid { field, .. } => field,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn minimal_config_is_valid() {
        with(|_| {}).unwrap();
    }

    #[test]
    fn not_json_is_reported() {
        let e = parse(Path::new("c.json"), b"{nope").unwrap_err();
        assert!(matches!(e, ConfigError::Json { .. }), "{e:?}");
    }

    #[test]
    fn wrong_type_names_field() {
        let e = with(|v| v["process"]["user"]["uid"] = "zero".into()).unwrap_err();
        assert_eq!(field_of(e), "process.user.uid");
    }

    #[test]
    fn unknown_namespace_names_field() {
        let e = with(|v| v["linux"]["namespaces"][1]["type"] = "bogus".into()).unwrap_err();
        assert_eq!(field_of(e), "linux.namespaces[1].type");
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let e = with(|v| v["linux"]["namespaces"][1]["type"] = "mount".into()).unwrap_err();
        assert_eq!(field_of(e), "linux.namespaces[1]");
    }

    #[test]
    fn relative_cwd_rejected() {
        let e = with(|v| v["process"]["cwd"] = "tmp".into()).unwrap_err();
        assert_eq!(field_of(e), "process.cwd");
    }

    #[test]
    fn relative_mount_destination_rejected() {
        let e = with(|v| {
            v["mounts"] = serde_json::json!([{"destination":"proc","type":"proc","source":"proc"}])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "mounts[0].destination");
    }

    #[test]
    fn escaping_mount_destination_rejected() {
        let e = with(|v| {
            v["mounts"] =
                serde_json::json!([{"destination":"/../../etc","type":"tmpfs","source":"t"}])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "mounts[0].destination");
        with(|v| {
            v["mounts"] = serde_json::json!([{"destination":"/a/../b","type":"tmpfs","source":"t"}])
        })
        .unwrap();
    }

    #[test]
    fn relative_namespace_path_rejected() {
        let e = with(|v| v["linux"]["namespaces"][1]["path"] = "proc/1/ns/pid".into()).unwrap_err();
        assert_eq!(field_of(e), "linux.namespaces[1].path");
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let spec = with(|v| {
            v["process"]["capabilities"] =
                serde_json::json!({"bounding":["CAP_KILL","CAP_UNKNOWN"],"effective":["NOPE"]})
        })
        .unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.effective().as_ref().unwrap().is_empty());
    }

    #[test]
    fn userns_needs_mappings() {
        let e = with(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type":"user"}))
        })
        .unwrap_err();
        assert_eq!(field_of(e), "linux.uidMappings");
    }

    #[test]
    fn hostname_needs_uts() {
        let e = with(|v| v["hostname"] = "h".into()).unwrap_err();
        assert_eq!(field_of(e), "hostname");
    }

    #[test]
    fn net_sysctl_needs_netns() {
        let e = with(|v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward":"1"}))
            .unwrap_err();
        assert_eq!(field_of(e), "linux.sysctl.net.ipv4.ip_forward");
    }

    #[test]
    fn soft_over_hard_rlimit_rejected() {
        let e = with(|v| {
            v["process"]["rlimits"] =
                serde_json::json!([{"type":"RLIMIT_NOFILE","soft":10,"hard":5}])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "process.rlimits[0]");
    }

    #[test]
    fn bad_mount_option_rejected() {
        let e = with(|v| {
            v["mounts"] = serde_json::json!([{"destination":"/x","type":"bind","source":"/tmp",
                "options":["bind","idmap=uids=zz"]}])
        })
        .unwrap_err();
        assert_eq!(field_of(e), "mounts[0].options");
    }

    #[test]
    fn container_ids() {
        assert!(ContainerId::new("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x", ".seccomp-cache"] {
            assert!(ContainerId::new(bad).is_err(), "{bad}");
        }
    }
}

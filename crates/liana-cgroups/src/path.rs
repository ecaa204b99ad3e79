//! `linux.cgroupsPath` semantics, as runc implements them.
//!
//! * cgroupfs driver
//!   * absolute (`/a/b`): relative to the root of every hierarchy;
//!   * relative (`a/b`): relative to the runtime's own cgroup in each v1
//!     hierarchy, and to the *parent* of its own cgroup on the unified one
//!     (its own cgroup usually holds processes, so no controller could be
//!     enabled below it);
//!   * empty: the container id, taken as a relative path;
//!   * `slice:prefix:name`: rejected, that is the systemd driver's form.
//! * systemd driver: `slice:prefix:name` (empty means `system.slice` —
//!   `user.slice` when rootless — `liana`, and the container id); the unit is
//!   `prefix-name.scope` placed in the expanded slice, e.g.
//!   `/system.slice/liana-abc.scope`.
//!
//! Paths are cleaned lexically so that `..` can never leave the hierarchy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of `linux.cgroupsPath` parsing.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The cgroupfs driver was given the systemd `slice:prefix:name` form.
    #[error(
        "cgroupsPath {path:?} is in the systemd \"slice:prefix:name\" form; \
         use --systemd-cgroup (--cgroup-manager systemd) or give a filesystem path"
    )]
    SystemdFormWithCgroupfs {
        /// The path given.
        path: String,
    },
    /// The systemd driver was given something other than `slice:prefix:name`.
    #[error(
        "cgroupsPath {path:?} must be of the form \"slice:prefix:name\" with the systemd driver"
    )]
    NotSystemdForm {
        /// The path given.
        path: String,
    },
    /// The slice name is not a valid systemd slice.
    #[error("invalid systemd slice {slice:?}: {reason}")]
    BadSlice {
        /// The slice.
        slice: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The path designates the root of the hierarchy (or is empty after cleaning).
    #[error("cgroupsPath {path:?} designates the root cgroup, which cannot hold a container")]
    RootCgroup {
        /// The path given.
        path: String,
    },
    /// The path contains a NUL byte.
    #[error("cgroupsPath {path:?} contains a NUL byte")]
    Nul {
        /// The path given.
        path: String,
    },
    /// An unknown `--cgroup-manager` value.
    #[error("unknown cgroup manager {0:?} (expected cgroupfs, systemd or disabled)")]
    UnknownDriver(String),
}

/// Which cgroup driver (`--cgroup-manager`) manages the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Write cgroupfs directly (runc's default).
    #[default]
    Cgroupfs,
    /// Ask systemd for a transient scope unit.
    Systemd,
    /// Do not use cgroups at all.
    Disabled,
}

impl FromStr for Driver {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        match s {
            "cgroupfs" => Ok(Driver::Cgroupfs),
            "systemd" => Ok(Driver::Systemd),
            "disabled" => Ok(Driver::Disabled),
            other => Err(PathError::UnknownDriver(other.into())),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Cgroupfs => "cgroupfs",
            Driver::Systemd => "systemd",
            Driver::Disabled => "disabled",
        })
    }
}

/// A parsed `linux.cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupsPath {
    /// Relative to each hierarchy's root; cleaned, starts with `/`.
    Absolute(String),
    /// Relative to the runtime's own cgroup; cleaned, no leading `/`.
    Relative(String),
    /// A systemd unit in a slice.
    Systemd(SystemdUnit),
}

/// The systemd form `slice:prefix:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdUnit {
    /// The parent slice, e.g. `system.slice` or `machine-a.slice`.
    pub slice: String,
    /// The unit prefix, e.g. `docker`.
    pub prefix: String,
    /// The unit name, e.g. the container id.
    pub name: String,
}

impl SystemdUnit {
    /// The unit's name: `prefix-name.scope`, or `name` when it is itself a slice.
    pub fn unit_name(&self) -> String {
        if self.name.ends_with(".slice") {
            self.name.clone()
        } else if self.prefix.is_empty() {
            format!("{}.scope", self.name)
        } else {
            format!("{}-{}.scope", self.prefix, self.name)
        }
    }

    /// The cgroup path systemd gives the unit, e.g. `/system.slice/liana-x.scope`.
    pub fn cgroup_path(&self) -> Result<String, PathError> {
        let slice = expand_slice(&self.slice)?;
        Ok(format!(
            "{}/{}",
            slice.trim_end_matches('/'),
            self.unit_name()
        ))
    }
}

/// Expands a systemd slice name into its cgroup path:
/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`, `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Result<String, PathError> {
    let bad = |reason| PathError::BadSlice {
        slice: slice.into(),
        reason,
    };
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(bad("does not end in .slice"));
    };
    if base == "-" {
        return Ok("/".into());
    }
    if base.is_empty() {
        return Err(bad("is empty"));
    }
    if base.contains('/') {
        return Err(bad("contains a slash"));
    }
    if base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(bad("has a leading, trailing or doubled dash"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(component);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// Parses `linux.cgroupsPath` (`None` or empty means "use the default") for
/// the container `id` and the given driver.
pub fn parse_cgroups_path(
    raw: Option<&str>,
    id: &str,
    driver: Driver,
    rootless: bool,
) -> Result<CgroupsPath, PathError> {
    let raw = raw.unwrap_or("");
    if raw.contains('\0') {
        return Err(PathError::Nul { path: raw.into() });
    }
    match driver {
        Driver::Systemd => {
            let (slice, prefix, name) = if raw.is_empty() {
                let slice = if rootless {
                    "user.slice"
                } else {
                    "system.slice"
                };
                (slice.to_string(), "liana".to_string(), id.to_string())
            } else {
                let parts: Vec<&str> = raw.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    return Err(PathError::NotSystemdForm { path: raw.into() });
                };
                let slice = if slice.is_empty() {
                    "system.slice"
                } else {
                    slice
                };
                (slice.to_string(), prefix.to_string(), name.to_string())
            };
            if name.is_empty() || name.contains('/') {
                return Err(PathError::NotSystemdForm { path: raw.into() });
            }
            let unit = SystemdUnit {
                slice,
                prefix,
                name,
            };
            // Validate the slice now rather than at create time.
            unit.cgroup_path()?;
            Ok(CgroupsPath::Systemd(unit))
        }
        Driver::Cgroupfs | Driver::Disabled => {
            if raw.is_empty() {
                let cleaned = clean_relative(id);
                if cleaned.is_empty() {
                    return Err(PathError::RootCgroup { path: id.into() });
                }
                return Ok(CgroupsPath::Relative(cleaned));
            }
            if !raw.starts_with('/') && raw.matches(':').count() == 2 {
                return Err(PathError::SystemdFormWithCgroupfs { path: raw.into() });
            }
            if raw.starts_with('/') {
                let cleaned = clean_relative(raw);
                if cleaned.is_empty() {
                    return Err(PathError::RootCgroup { path: raw.into() });
                }
                Ok(CgroupsPath::Absolute(format!("/{cleaned}")))
            } else {
                let cleaned = clean_relative(raw);
                if cleaned.is_empty() {
                    return Err(PathError::RootCgroup { path: raw.into() });
                }
                Ok(CgroupsPath::Relative(cleaned))
            }
        }
    }
}

/// Lexically cleans `p` as if rooted at `/` (so `..` stops at the root) and
/// returns it without a leading slash.
pub(crate) fn clean_relative(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The parent of a cgroup path as found in `/proc/self/cgroup` (`/` stays `/`).
pub(crate) fn parent_cgroup(p: &str) -> &str {
    let trimmed = p.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &trimmed[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_path(raw: &str) -> Result<CgroupsPath, PathError> {
        parse_cgroups_path(Some(raw), "ctr", Driver::Cgroupfs, false)
    }

    #[test]
    fn cgroupfs_paths() {
        assert_eq!(
            parse_cgroups_path(None, "ctr", Driver::Cgroupfs, false).unwrap(),
            CgroupsPath::Relative("ctr".into())
        );
        assert_eq!(
            fs_path("/a/../b/./c/").unwrap(),
            CgroupsPath::Absolute("/b/c".into())
        );
        assert_eq!(
            fs_path("/../../etc").unwrap(),
            CgroupsPath::Absolute("/etc".into())
        );
        assert_eq!(
            fs_path("../x/y").unwrap(),
            CgroupsPath::Relative("x/y".into())
        );
        assert!(matches!(fs_path("/"), Err(PathError::RootCgroup { .. })));
        assert!(matches!(
            fs_path("/a/.."),
            Err(PathError::RootCgroup { .. })
        ));
        assert!(matches!(
            fs_path("system.slice:docker:abc"),
            Err(PathError::SystemdFormWithCgroupfs { .. })
        ));
        assert!(matches!(fs_path("a\0b"), Err(PathError::Nul { .. })));
        // An absolute path with colons is a plain directory name.
        assert_eq!(
            fs_path("/a:b:c").unwrap(),
            CgroupsPath::Absolute("/a:b:c".into())
        );
    }

    #[test]
    fn systemd_paths() {
        let p = parse_cgroups_path(
            Some("machine-a.slice:docker:abc"),
            "x",
            Driver::Systemd,
            false,
        )
        .unwrap();
        let CgroupsPath::Systemd(unit) = p else {
            panic!("not systemd")
        };
        assert_eq!(unit.unit_name(), "docker-abc.scope");
        assert_eq!(
            unit.cgroup_path().unwrap(),
            "/machine.slice/machine-a.slice/docker-abc.scope"
        );

        let CgroupsPath::Systemd(def) =
            parse_cgroups_path(None, "abc", Driver::Systemd, false).unwrap()
        else {
            panic!("not systemd")
        };
        assert_eq!(def.cgroup_path().unwrap(), "/system.slice/liana-abc.scope");
        let CgroupsPath::Systemd(user) =
            parse_cgroups_path(None, "abc", Driver::Systemd, true).unwrap()
        else {
            panic!("not systemd")
        };
        assert_eq!(user.slice, "user.slice");

        assert!(matches!(
            parse_cgroups_path(Some("/abs/path"), "x", Driver::Systemd, false),
            Err(PathError::NotSystemdForm { .. })
        ));
        assert!(matches!(
            parse_cgroups_path(Some("bad:p:n"), "x", Driver::Systemd, false),
            Err(PathError::BadSlice { .. })
        ));
    }

    #[test]
    fn slice_expansion() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("-a.slice").is_err());
        assert!(expand_slice("a.scope").is_err());
        assert!(expand_slice("a/b.slice").is_err());
    }

    #[test]
    fn parents() {
        assert_eq!(parent_cgroup("/"), "/");
        assert_eq!(parent_cgroup("/a"), "/");
        assert_eq!(parent_cgroup("/a/b"), "/a");
        assert_eq!(parent_cgroup("/a/b/"), "/a");
    }

    #[test]
    fn drivers_parse() {
        assert_eq!("systemd".parse::<Driver>().unwrap(), Driver::Systemd);
        assert_eq!(Driver::Disabled.to_string(), "disabled");
        assert!("foo".parse::<Driver>().is_err());
    }
}

//! Device access rules (`linux.resources.devices`) and their cgroup v1
//! semantics, shared by the v1 `devices.allow`/`devices.deny` writer and the
//! v2 eBPF program generator.
//!
//! Rules are applied in order, as the kernel's v1 devices controller would:
//! a rule of type `a` resets the whole set to "allow all" or "deny all"; any
//! other rule adds an exception to the default or removes one. Removing part
//! of a wildcard exception (e.g. denying `c 1:3` while `c *:*` is allowed) is
//! refused, because cgroup v1 silently ignores it — better an error than a
//! container that can open what its config denies.

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Errors of device rule validation.
#[derive(Debug, thiserror::Error)]
pub enum DeviceRuleError {
    /// The type is not `a`, `b` or `c`.
    #[error("devices[{index}]: type {typ:?} cannot be used in a cgroup rule (expected a, b or c)")]
    Type {
        /// Position in the list.
        index: usize,
        /// The type.
        typ: String,
    },
    /// The access string is empty or has letters other than `r`, `w`, `m`.
    #[error("devices[{index}]: access {access:?} must be a non-empty combination of r, w and m")]
    Access {
        /// Position in the list.
        index: usize,
        /// The access string.
        access: String,
    },
    /// A major or minor number is out of range.
    #[error("devices[{index}]: {which} number {value} is out of range")]
    Number {
        /// Position in the list.
        index: usize,
        /// `major` or `minor`.
        which: &'static str,
        /// The value.
        value: i64,
    },
    /// The rule would punch a hole in a wildcard exception.
    #[error("devices[{index}]: {rule} cannot be applied: it removes part of the wildcard rule {wildcard}, which cgroup v1 ignores")]
    Hole {
        /// Position in the list.
        index: usize,
        /// The rule.
        rule: String,
        /// The wildcard exception it would split.
        wildcard: String,
    },
}

/// Device class in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// Block devices (`b`).
    Block,
    /// Character devices (`c`).
    Char,
}

impl DeviceKind {
    fn letter(self) -> char {
        match self {
            DeviceKind::Block => 'b',
            DeviceKind::Char => 'c',
        }
    }
}

/// Access bits, as in the v1 files and the eBPF context (`BPF_DEVCG_ACC_*`).
pub mod access {
    /// `m`: mknod.
    pub const MKNOD: u8 = 1;
    /// `r`: read.
    pub const READ: u8 = 2;
    /// `w`: write.
    pub const WRITE: u8 = 4;
    /// `rwm`.
    pub const ALL: u8 = 7;
}

/// Formats access bits as `rwm` letters.
pub(crate) fn access_string(bits: u8) -> String {
    let mut s = String::new();
    if bits & access::READ != 0 {
        s.push('r');
    }
    if bits & access::WRITE != 0 {
        s.push('w');
    }
    if bits & access::MKNOD != 0 {
        s.push('m');
    }
    s
}

fn parse_access(s: &str) -> Option<u8> {
    if s.is_empty() {
        return None;
    }
    s.chars().try_fold(0u8, |acc, c| match c {
        'r' => Some(acc | access::READ),
        'w' => Some(acc | access::WRITE),
        'm' => Some(acc | access::MKNOD),
        _ => None,
    })
}

/// Which devices an exception matches; `None` numbers are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceMatch {
    /// Block or char.
    pub kind: DeviceKind,
    /// Major number, `None` for `*`.
    pub major: Option<u32>,
    /// Minor number, `None` for `*`.
    pub minor: Option<u32>,
}

impl fmt::Display for DeviceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {}:{}",
            self.kind.letter(),
            n(self.major),
            n(self.minor)
        )
    }
}

/// One validated rule from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (`true`) or deny.
    pub allow: bool,
    /// `None` is type `a`: every device.
    pub target: Option<DeviceMatch>,
    /// Access bits.
    pub access: u8,
}

impl DeviceRule {
    /// The line written to `devices.allow` / `devices.deny`.
    pub fn v1_line(&self) -> String {
        match self.target {
            None => "a *:* rwm".to_string(),
            Some(m) => format!("{} {}", m, access_string(self.access)),
        }
    }
}

/// Validates the config's rules.
pub fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, DeviceRuleError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => None,
                LinuxDeviceType::B => Some(DeviceKind::Block),
                LinuxDeviceType::C => Some(DeviceKind::Char),
                other => {
                    return Err(DeviceRuleError::Type {
                        index,
                        typ: other.as_str().into(),
                    })
                }
            };
            let access_str = r.access().clone().unwrap_or_default();
            let access = parse_access(&access_str).ok_or(DeviceRuleError::Access {
                index,
                access: access_str,
            })?;
            let num = |v: Option<i64>, which| match v {
                None => Ok(None),
                Some(v) if v < 0 => Ok(None),
                // The eBPF program compares with sign-extended 32-bit immediates.
                Some(v) if v <= i64::from(i32::MAX) => Ok(Some(v as u32)),
                Some(value) => Err(DeviceRuleError::Number {
                    index,
                    which,
                    value,
                }),
            };
            let major = num(r.major(), "major")?;
            let minor = num(r.minor(), "minor")?;
            Ok(DeviceRule {
                allow: r.allow(),
                target: kind.map(|kind| DeviceMatch { kind, major, minor }),
                access: if kind.is_none() { access::ALL } else { access },
            })
        })
        .collect()
}

/// The state of a devices cgroup: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRuleSet {
    /// Whether devices not matched by an exception are allowed.
    pub default_allow: bool,
    /// Exceptions to the default and their access bits.
    pub exceptions: BTreeMap<DeviceMatch, u8>,
}

impl Default for DeviceRuleSet {
    /// A new cgroup allows everything.
    fn default() -> Self {
        DeviceRuleSet {
            default_allow: true,
            exceptions: BTreeMap::new(),
        }
    }
}

impl DeviceRuleSet {
    /// Applies rules in order to a fresh (allow-all) set.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<Self, DeviceRuleError> {
        let mut set = DeviceRuleSet::default();
        for (index, r) in rules.iter().enumerate() {
            set.apply(index, r)?;
        }
        Ok(set)
    }

    fn apply(&mut self, index: usize, rule: &DeviceRule) -> Result<(), DeviceRuleError> {
        let Some(target) = rule.target else {
            *self = DeviceRuleSet {
                default_allow: rule.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        };
        if rule.allow != self.default_allow {
            // Adds an exception.
            *self.exceptions.entry(target).or_insert(0) |= rule.access;
            return Ok(());
        }
        // Removes (part of) an exception; refuse to split a wildcard one.
        let wildcards = [
            DeviceMatch {
                major: None,
                ..target
            },
            DeviceMatch {
                minor: None,
                ..target
            },
            DeviceMatch {
                major: None,
                minor: None,
                ..target
            },
        ];
        for w in wildcards {
            if w == target {
                continue;
            }
            if let Some(bits) = self.exceptions.get(&w) {
                if bits & rule.access != 0 {
                    return Err(DeviceRuleError::Hole {
                        index,
                        rule: rule.v1_line(),
                        wildcard: format!("{} {}", w, access_string(*bits)),
                    });
                }
            }
        }
        if let Some(bits) = self.exceptions.get_mut(&target) {
            *bits &= !rule.access;
            if *bits == 0 {
                self.exceptions.remove(&target);
            }
        }
        Ok(())
    }

    /// Parses a v1 `devices.list`. It lists allowed devices only: a set in
    /// blacklist mode shows as `a *:* rwm` and its deny exceptions are
    /// invisible, which [`DeviceRuleSet::transition`] accounts for.
    pub fn from_v1_list(list: &str) -> Option<Self> {
        let mut set = DeviceRuleSet {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let (typ, nums, acc) = (f.next()?, f.next()?, f.next()?);
            let (maj, min) = nums.split_once(':')?;
            let n = |s: &str| -> Option<Option<u32>> {
                if s == "*" {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let kind = match typ {
                "a" => {
                    set.default_allow = true;
                    set.exceptions.clear();
                    continue;
                }
                "b" => DeviceKind::Block,
                "c" => DeviceKind::Char,
                _ => return None,
            };
            let m = DeviceMatch {
                kind,
                major: n(maj)?,
                minor: n(min)?,
            };
            *set.exceptions.entry(m).or_insert(0) |= parse_access(acc)?;
        }
        Some(set)
    }

    /// The v1 writes (`(allow, line)`) that move a cgroup in state `self` to
    /// `target` with the least disruption: a reset (`a`) only when the default
    /// changes or `self` is a blacklist whose exceptions cannot be read back.
    pub fn transition(&self, target: &DeviceRuleSet) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push((target.default_allow, "a *:* rwm".to_string()));
            BTreeMap::new()
        } else {
            self.exceptions.clone()
        };
        for (m, bits) in &old {
            let dropped = bits & !target.exceptions.get(m).copied().unwrap_or(0);
            if dropped != 0 {
                out.push((
                    target.default_allow,
                    format!("{m} {}", access_string(dropped)),
                ));
            }
        }
        for (m, bits) in &target.exceptions {
            let gained = bits & !old.get(m).copied().unwrap_or(0);
            if gained != 0 {
                out.push((
                    !target.default_allow,
                    format!("{m} {}", access_string(gained)),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        maj: Option<i64>,
        min: Option<i64>,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(acc);
        if let Some(m) = maj {
            b = b.major(m);
        }
        if let Some(m) = min {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn typical_container_rules() {
        let rules = parse_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, Some(136), None, "rw"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "r"),
        ])
        .unwrap();
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert_eq!(rules[2].v1_line(), "c 136:* rw");
        let set = DeviceRuleSet::from_rules(&rules).unwrap();
        assert!(!set.default_allow);
        assert_eq!(set.exceptions.len(), 2);
        let null = DeviceMatch {
            kind: DeviceKind::Char,
            major: Some(1),
            minor: Some(3),
        };
        assert_eq!(set.exceptions[&null], access::ALL);
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(matches!(
            parse_rules(&[rule(true, LinuxDeviceType::P, None, None, "rwm")]),
            Err(DeviceRuleError::Type { index: 0, .. })
        ));
        assert!(matches!(
            parse_rules(&[rule(true, LinuxDeviceType::C, None, None, "rx")]),
            Err(DeviceRuleError::Access { .. })
        ));
        assert!(matches!(
            parse_rules(&[rule(true, LinuxDeviceType::C, None, None, "")]),
            Err(DeviceRuleError::Access { .. })
        ));
        assert!(matches!(
            parse_rules(&[rule(true, LinuxDeviceType::C, Some(1 << 40), None, "r")]),
            Err(DeviceRuleError::Number { .. })
        ));
        let holes = parse_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, None, None, "rw"),
            rule(false, LinuxDeviceType::C, Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert!(matches!(
            DeviceRuleSet::from_rules(&holes),
            Err(DeviceRuleError::Hole { index: 2, .. })
        ));
    }

    #[test]
    fn removes_exceptions_partially() {
        let rules = parse_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(false, LinuxDeviceType::C, Some(1), Some(3), "w"),
            rule(true, LinuxDeviceType::B, Some(8), Some(0), "r"),
            rule(false, LinuxDeviceType::B, Some(8), Some(0), "r"),
        ])
        .unwrap();
        let set = DeviceRuleSet::from_rules(&rules).unwrap();
        assert_eq!(set.exceptions.len(), 1);
        assert_eq!(
            set.exceptions.values().next(),
            Some(&(access::READ | access::MKNOD))
        );
    }

    #[test]
    fn v1_list_and_transition() {
        let cur = DeviceRuleSet::from_v1_list("c 1:3 rwm\nc 136:* rw\n").unwrap();
        assert!(!cur.default_allow);
        let target = DeviceRuleSet::from_rules(
            &parse_rules(&[
                rule(false, LinuxDeviceType::A, None, None, "rwm"),
                rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
                rule(true, LinuxDeviceType::C, Some(1), Some(5), "rwm"),
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            cur.transition(&target),
            vec![
                (false, "c 1:3 m".to_string()),
                (false, "c 136:* rw".to_string()),
                (true, "c 1:5 rwm".to_string()),
            ]
        );
        let all = DeviceRuleSet::from_v1_list("a *:* rwm\n").unwrap();
        assert!(all.default_allow);
        let t = all.transition(&target);
        assert_eq!(t[0], (false, "a *:* rwm".to_string()));
        assert_eq!(t.len(), 3);
        assert!(DeviceRuleSet::from_v1_list("x 1:2 r\n").is_none());
    }
}

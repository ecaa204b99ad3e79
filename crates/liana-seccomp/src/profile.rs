//! Validation of a runtime-spec `linux.seccomp` object into the list of rules that gets compiled.
//!
//! Everything here is pure: no kernel, no libseccomp. The semantics follow runc where the spec is
//! silent, so that liana is a drop-in:
//! - `errnoRet`/`defaultErrnoRet` default to `EPERM`, and are an error on an action other than
//!   `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE`;
//! - a rule whose action equals the default action is dropped (it could not change anything);
//! - conditions of one rule are ANDed, except when two of them test the same argument index: then
//!   every condition becomes a rule of its own (ORed), as runc and crun do;
//! - `SCMP_ACT_NOTIFY` is refused as the default action and on `write`, as runc does, because the
//!   container's init needs `write` to hand the listener to its parent.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

/// The errno returned by `SCMP_ACT_ERRNO` (and the message of `SCMP_ACT_TRACE`) when the profile
/// gives none.
pub const DEFAULT_ERRNO: u16 = libc::EPERM as u16;

/// Syscalls take at most six arguments.
pub const MAX_ARGS: usize = 6;

/// A seccomp action with its data resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SCMP_ACT_KILL` and `SCMP_ACT_KILL_THREAD`.
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`.
    KillProcess,
    /// `SCMP_ACT_TRAP`.
    Trap,
    /// `SCMP_ACT_ERRNO` with its errno.
    Errno(u16),
    /// `SCMP_ACT_TRACE` with its message for the tracer.
    Trace(u16),
    /// `SCMP_ACT_ALLOW`.
    Allow,
    /// `SCMP_ACT_LOG`.
    Log,
    /// `SCMP_ACT_NOTIFY`.
    Notify,
}

impl Action {
    /// The kernel's `SECCOMP_RET_*` value for this action, data included.
    pub fn ret(self) -> u32 {
        match self {
            Self::KillThread => 0x0000_0000,
            Self::KillProcess => 0x8000_0000,
            Self::Trap => 0x0003_0000,
            Self::Errno(errno) => 0x0005_0000 | u32::from(errno),
            Self::Trace(msg) => 0x7ff0_0000 | u32::from(msg),
            Self::Allow => 0x7fff_0000,
            Self::Log => 0x7ffc_0000,
            Self::Notify => 0x7fc0_0000,
        }
    }

    /// Resolves an OCI action and its optional `errnoRet`; `field` names where they came from.
    pub fn from_oci(
        action: LinuxSeccompAction,
        errno_ret: Option<u32>,
        field: &str,
    ) -> Result<Self, ProfileError> {
        let errno = |errno_ret: Option<u32>| match errno_ret {
            None => Ok(DEFAULT_ERRNO),
            Some(value) => u16::try_from(value).map_err(|_| ProfileError::ErrnoOutOfRange {
                field: field.to_owned(),
                value,
            }),
        };
        let resolved = match action {
            LinuxSeccompAction::ScmpActErrno => return Ok(Self::Errno(errno(errno_ret)?)),
            LinuxSeccompAction::ScmpActTrace => return Ok(Self::Trace(errno(errno_ret)?)),
            LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                Self::KillThread
            }
            LinuxSeccompAction::ScmpActKillProcess => Self::KillProcess,
            LinuxSeccompAction::ScmpActTrap => Self::Trap,
            LinuxSeccompAction::ScmpActAllow => Self::Allow,
            LinuxSeccompAction::ScmpActLog => Self::Log,
            LinuxSeccompAction::ScmpActNotify => Self::Notify,
        };
        if errno_ret.is_some() {
            return Err(ProfileError::ErrnoNotSupported {
                field: field.to_owned(),
                action,
            });
        }
        Ok(resolved)
    }
}

/// One argument comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// Argument index, below [`MAX_ARGS`].
    pub index: u32,
    /// The comparison.
    pub op: LinuxSeccompOperator,
    /// `value`: the operand, or the mask for `SCMP_CMP_MASKED_EQ`.
    pub value: u64,
    /// `valueTwo`: the expected masked value for `SCMP_CMP_MASKED_EQ`, unused otherwise.
    pub value_two: u64,
}

/// One rule for one syscall name: the action applies when every condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The syscall name as written in the profile.
    pub syscall: String,
    /// What happens when it matches.
    pub action: Action,
    /// ANDed conditions; empty for an unconditional rule.
    pub conditions: Vec<Condition>,
}

/// A validated profile, ready for the compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The action for syscalls no rule matches.
    pub default_action: Action,
    /// The rules, in profile order, expanded per syscall name.
    pub rules: Vec<Rule>,
    /// Whether some rule notifies a supervisor.
    pub has_notify: bool,
}

/// A `linux.seccomp` object that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The JSON text of a seccomp object does not parse (an unknown action, architecture,
    /// operator or flag lands here, with the path of the offending field).
    #[error("invalid seccomp profile: {path}")]
    Parse {
        /// Path of the offending field, e.g. `syscalls[2].action`.
        path: String,
        /// What serde found there.
        #[source]
        source: serde_json::Error,
    },
    /// `errnoRet` or `defaultErrnoRet` given with an action that returns no errno.
    #[error("{field}: an errno return is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")]
    ErrnoNotSupported {
        /// The offending field, e.g. `linux.seccomp.syscalls[3].errnoRet`.
        field: String,
        /// The action it was given with.
        action: LinuxSeccompAction,
    },
    /// An errno return that does not fit the 16 data bits of a seccomp return value.
    #[error("{field}: errno return {value} is larger than 65535")]
    ErrnoOutOfRange {
        /// The offending field.
        field: String,
        /// The value given.
        value: u32,
    },
    /// `SCMP_ACT_NOTIFY` as `defaultAction`.
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    /// `SCMP_ACT_NOTIFY` on `write`.
    #[error("{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite {
        /// The offending rule.
        field: String,
    },
    /// An empty string among a rule's `names`.
    #[error("{field}: empty string is not a valid syscall name")]
    EmptySyscallName {
        /// The offending name.
        field: String,
    },
    /// An argument index of 6 or more.
    #[error("{field}: argument index {index} is out of range (syscalls have 6 arguments)")]
    ArgIndex {
        /// The offending condition.
        field: String,
        /// The index given.
        index: usize,
    },
    /// `SCMP_ACT_NOTIFY` rules with no `listenerPath` to send the listener to (runc refuses
    /// this too; the notified syscalls could never be answered).
    #[error("linux.seccomp.listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY")]
    NotifyWithoutListener,
    /// `listenerMetadata` without `listenerPath`, which the spec forbids.
    #[error("linux.seccomp.listenerMetadata: set without linux.seccomp.listenerPath")]
    MetadataWithoutListener,
}

/// Parses the JSON text of a `linux.seccomp` object, naming the offending field on error.
///
/// The runtime normally gets the object already typed from `config.json`; this is for profiles
/// read on their own (tests, tools, `--seccomp` options of an engine).
pub fn parse(json: &str) -> Result<LinuxSeccomp, ProfileError> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|err| ProfileError::Parse {
        path: err.path().to_string(),
        source: err.into_inner(),
    })
}

impl Profile {
    /// Validates `seccomp` and expands its rules.
    pub fn from_oci(seccomp: &LinuxSeccomp) -> Result<Self, ProfileError> {
        if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
            return Err(ProfileError::NotifyDefault);
        }
        if seccomp.listener_metadata().is_some() && seccomp.listener_path().is_none() {
            return Err(ProfileError::MetadataWithoutListener);
        }
        let default_action = Action::from_oci(
            seccomp.default_action(),
            seccomp.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?;

        let mut rules = Vec::new();
        let mut has_notify = false;
        for (i, syscall) in seccomp.syscalls().iter().flatten().enumerate() {
            let field = format!("linux.seccomp.syscalls[{i}]");
            let action = Action::from_oci(
                syscall.action(),
                syscall.errno_ret(),
                &format!("{field}.errnoRet"),
            )?;
            if action == Action::Notify && syscall.names().iter().any(|name| name == "write") {
                return Err(ProfileError::NotifyWrite { field });
            }
            let args = syscall.args().as_deref().unwrap_or_default();
            let mut conditions = Vec::with_capacity(args.len());
            let mut per_index = [0usize; MAX_ARGS];
            for (j, arg) in args.iter().enumerate() {
                let count =
                    per_index
                        .get_mut(arg.index())
                        .ok_or_else(|| ProfileError::ArgIndex {
                            field: format!("{field}.args[{j}].index"),
                            index: arg.index(),
                        })?;
                *count += 1;
                conditions.push(Condition {
                    index: arg.index() as u32,
                    op: arg.op(),
                    value: arg.value(),
                    value_two: arg.value_two().unwrap_or(0),
                });
            }
            for (j, name) in syscall.names().iter().enumerate() {
                if name.is_empty() {
                    return Err(ProfileError::EmptySyscallName {
                        field: format!("{field}.names[{j}]"),
                    });
                }
            }
            if action == default_action {
                tracing::debug!(rule = %field, "seccomp rule has the default action, skipped");
                continue;
            }
            has_notify |= action == Action::Notify;
            // Two conditions on one argument index cannot both hold in libseccomp's model, so
            // runc and crun turn each condition into a rule of its own; so do we.
            let split = per_index.iter().any(|&count| count > 1);
            for name in syscall.names() {
                if split {
                    rules.extend(conditions.iter().map(|condition| Rule {
                        syscall: name.clone(),
                        action,
                        conditions: vec![*condition],
                    }));
                } else {
                    rules.push(Rule {
                        syscall: name.clone(),
                        action,
                        conditions: conditions.clone(),
                    });
                }
            }
        }
        if has_notify && seccomp.listener_path().is_none() {
            return Err(ProfileError::NotifyWithoutListener);
        }
        Ok(Self {
            default_action,
            rules,
            has_notify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> Result<Profile, ProfileError> {
        Profile::from_oci(&parse(json).expect("test profile parses"))
    }

    #[test]
    fn every_action_resolves() {
        let cases = [
            ("SCMP_ACT_KILL", Action::KillThread),
            ("SCMP_ACT_KILL_THREAD", Action::KillThread),
            ("SCMP_ACT_KILL_PROCESS", Action::KillProcess),
            ("SCMP_ACT_TRAP", Action::Trap),
            ("SCMP_ACT_ERRNO", Action::Errno(libc::EPERM as u16)),
            ("SCMP_ACT_TRACE", Action::Trace(libc::EPERM as u16)),
            ("SCMP_ACT_ALLOW", Action::Allow),
            ("SCMP_ACT_LOG", Action::Log),
            ("SCMP_ACT_NOTIFY", Action::Notify),
        ];
        for (name, expected) in cases {
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x",
                     "syscalls":[{{"names":["getcwd"],"action":"{name}"}}]}}"#
            );
            let p = profile(&json).unwrap();
            if expected == Action::Allow {
                assert!(
                    p.rules.is_empty(),
                    "{name}: rule equal to the default is dropped"
                );
            } else {
                assert_eq!(p.rules.len(), 1, "{name}");
                assert_eq!(p.rules[0].action, expected, "{name}");
                assert_eq!(p.has_notify, expected == Action::Notify, "{name}");
            }
        }
    }

    #[test]
    fn errno_ret_applies_to_errno_and_trace() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                {"names":["ptrace"],"action":"SCMP_ACT_TRACE","errnoRet":7},
                {"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, Action::Errno(38));
        assert_eq!(p.rules[0].action, Action::Errno(13));
        assert_eq!(p.rules[1].action, Action::Trace(7));
        assert_eq!(p.rules[2].action, Action::Allow);
    }

    #[test]
    fn errno_ret_on_other_actions_is_an_error_naming_the_field() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_ERRNO"},
                {"names":["mkdir"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ProfileError::ErrnoNotSupported { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[1].errnoRet: an errno return is only valid with \
             SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL"
        );
        let err = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.seccomp.defaultErrnoRet:"),
            "{err}"
        );
    }

    #[test]
    fn errno_ret_out_of_range() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":65536}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ProfileError::ErrnoOutOfRange { value: 65536, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rules_equal_to_the_default_are_dropped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["a"],"action":"SCMP_ACT_ERRNO"},
                {"names":["b"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["c"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}"#,
        )
        .unwrap();
        let names: Vec<_> = p.rules.iter().map(|r| r.syscall.as_str()).collect();
        assert_eq!(
            names,
            ["c"],
            "ERRNO(EPERM) and ERRNO(1) equal the default ERRNO(EPERM)"
        );
    }

    #[test]
    fn every_operator_and_values_are_kept() {
        let ops = [
            ("SCMP_CMP_NE", LinuxSeccompOperator::ScmpCmpNe),
            ("SCMP_CMP_LT", LinuxSeccompOperator::ScmpCmpLt),
            ("SCMP_CMP_LE", LinuxSeccompOperator::ScmpCmpLe),
            ("SCMP_CMP_EQ", LinuxSeccompOperator::ScmpCmpEq),
            ("SCMP_CMP_GE", LinuxSeccompOperator::ScmpCmpGe),
            ("SCMP_CMP_GT", LinuxSeccompOperator::ScmpCmpGt),
            ("SCMP_CMP_MASKED_EQ", LinuxSeccompOperator::ScmpCmpMaskedEq),
        ];
        for (name, op) in ops {
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["personality"],
                     "action":"SCMP_ACT_ERRNO","args":[{{"index":0,"value":255,"valueTwo":8,
                     "op":"{name}"}}]}}]}}"#
            );
            let p = profile(&json).unwrap();
            assert_eq!(
                p.rules[0].conditions,
                [Condition {
                    index: 0,
                    op,
                    value: 255,
                    value_two: 8
                }],
                "{name}"
            );
        }
    }

    #[test]
    fn distinct_indices_are_anded_in_one_rule() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket","socketpair"],
                "action":"SCMP_ACT_ERRNO","args":[
                {"index":0,"value":16,"op":"SCMP_CMP_EQ"},
                {"index":2,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2, "one rule per name");
        assert!(p.rules.iter().all(|r| r.conditions.len() == 2));
    }

    #[test]
    fn repeated_index_splits_into_ored_rules() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
                "action":"SCMP_ACT_ERRNO","args":[
                {"index":0,"value":8,"op":"SCMP_CMP_EQ"},
                {"index":1,"value":1,"op":"SCMP_CMP_EQ"},
                {"index":0,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let conds: Vec<_> = p
            .rules
            .iter()
            .map(|r| (r.conditions.len(), r.conditions[0].value))
            .collect();
        assert_eq!(conds, [(1, 8), (1, 1), (1, 9)]);
    }

    #[test]
    fn bad_argument_index_names_the_field() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
                "action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[0].args[0].index: argument index 6 is out of range \
             (syscalls have 6 arguments)"
        );
    }

    #[test]
    fn notify_restrictions() {
        let err = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap_err();
        assert!(matches!(err, ProfileError::NotifyDefault), "{err:?}");
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/s","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, ProfileError::NotifyWrite { .. }), "{err:?}");
    }

    #[test]
    fn notify_needs_a_listener_path() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ProfileError::NotifyWithoutListener),
            "{err:?}"
        );
    }

    #[test]
    fn metadata_needs_a_listener_path() {
        let err =
            profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"m"}"#).unwrap_err();
        assert!(
            matches!(err, ProfileError::MetadataWithoutListener),
            "{err:?}"
        );
    }

    #[test]
    fn empty_syscall_name_is_an_error() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read",""],
                "action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[0].names[1]: empty string is not a valid syscall name"
        );
    }

    #[test]
    fn unknown_names_in_json_name_the_field() {
        let err = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
                "action":"SCMP_ACT_ERRNO"},{"names":["x"],"action":"SCMP_ACT_BOGUS"}]}"#,
        )
        .unwrap_err();
        let ProfileError::Parse { path, source } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, "syscalls[1].action");
        assert!(source.to_string().contains("SCMP_ACT_BOGUS"), "{source}");

        let err = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#)
            .unwrap_err();
        let ProfileError::Parse { path, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, "architectures[0]");

        let err = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_X"]}"#)
            .unwrap_err();
        let ProfileError::Parse { path, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, "flags[0]");

        let err = parse(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        let ProfileError::Parse { path, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, "defaultAction");
    }
}

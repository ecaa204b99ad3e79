//! The `namespaces`, `resources` and `rlimits` steps.

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, PosixRlimit, Spec};
use serde_json::{json, Map, Value};

use super::{mount, SpecError, SpecInput};
use crate::network::attach::NsSpec;

fn flag(flag: &'static str, reason: impl Into<String>) -> SpecError {
    SpecError::Flag {
        flag,
        reason: reason.into(),
    }
}

/// Reads a `--pid/--ipc/--uts` value: private (default) or host.
fn host_or_private(name: &'static str, v: Option<&str>) -> Result<bool, SpecError> {
    match v {
        None | Some("") | Some("private") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => Err(flag(
            name,
            format!("{other:?}: only host and private are supported"),
        )),
    }
}

fn drop_ns(spec: &mut Spec, t: LinuxNamespaceType) {
    if let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        ns.retain(|n| n.typ() != t);
    }
}

/// The `namespaces` step.
pub fn namespaces(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let o = i.opts;
    if host_or_private("--pid", o.pid.as_deref())? {
        drop_ns(spec, LinuxNamespaceType::Pid);
    }
    if host_or_private("--ipc", o.ipc.as_deref())? {
        drop_ns(spec, LinuxNamespaceType::Ipc);
        // The host's message queues and shared memory.
        super::mounts::put(
            spec,
            mount(
                "/dev/mqueue",
                "bind",
                "/dev/mqueue",
                &["rbind", "nosuid", "noexec", "nodev"],
            ),
        );
        super::mounts::put(
            spec,
            mount(
                "/dev/shm",
                "bind",
                "/dev/shm",
                &["rbind", "nosuid", "noexec", "nodev"],
            ),
        );
    }
    if host_or_private("--uts", o.uts.as_deref())? {
        if o.hostname.is_some() {
            return Err(flag("--hostname", "cannot be set with --uts host"));
        }
        drop_ns(spec, LinuxNamespaceType::Uts);
        spec.set_hostname(None);
    }
    match i.network {
        NsSpec::Private => {}
        NsSpec::Host => drop_ns(spec, LinuxNamespaceType::Network),
        NsSpec::Path(p) => {
            let linux = spec.linux_mut().get_or_insert_with(Default::default);
            let ns = linux.namespaces_mut().get_or_insert_with(Vec::new);
            match ns
                .iter_mut()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
            {
                Some(n) => {
                    n.set_path(Some(p.clone()));
                }
                None => ns.push(
                    serde_json::from_value(json!({"type": "network", "path": p}))
                        .expect("namespace JSON"),
                ),
            }
        }
    }
    if i.cgroup2 {
        let linux = spec.linux_mut().get_or_insert_with(Default::default);
        let ns = linux.namespaces_mut().get_or_insert_with(Vec::new);
        ns.push(serde_json::from_value(json!({"type": "cgroup"})).expect("namespace JSON"));
    }
    Ok(())
}

/// Parses a size flag (`128m`, `1g`, bytes); `-1` is unlimited.
pub fn size(name: &'static str, v: &str) -> Result<i64, SpecError> {
    liana_container::container::parse_size(v)
        .filter(|n| *n == -1 || *n > 0)
        .ok_or_else(|| flag(name, format!("{v:?} is not a size (e.g. 128m, 1g)")))
}

/// Checks a cpuset list (`0-3,5`).
pub fn cpuset(v: &str) -> Result<(), SpecError> {
    let ok = !v.is_empty()
        && v.split(',').all(|r| {
            let mut it = r.splitn(2, '-');
            let a = it.next().and_then(|x| x.parse::<u32>().ok());
            match (a, it.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
                _ => false,
            }
        });
    if ok {
        Ok(())
    } else {
        Err(flag(
            "--cpuset-cpus",
            format!("{v:?} is not a CPU list (e.g. 0-2,4)"),
        ))
    }
}

/// The `resources` step.
pub fn resources(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let o = i.opts;
    let mut mem = Map::new();
    let memory = o
        .memory
        .as_deref()
        .map(|m| size("--memory", m))
        .transpose()?;
    if let Some(m) = memory {
        if m > 0 && m < 6 * 1024 * 1024 {
            return Err(flag("--memory", "the minimum is 6 MiB"));
        }
        mem.insert("limit".into(), json!(m));
    }
    if let Some(s) = &o.memory_swap {
        let swap = size("--memory-swap", s)?;
        match memory {
            None if swap != -1 => return Err(flag("--memory-swap", "needs --memory")),
            Some(m) if swap != -1 && swap < m => {
                return Err(flag(
                    "--memory-swap",
                    "must be at least --memory (it counts memory plus swap)",
                ))
            }
            _ => {}
        }
        mem.insert("swap".into(), json!(swap));
    }
    let mut cpu = Map::new();
    if let Some(c) = o.cpus {
        if c.is_nan() || c <= 0.0 {
            return Err(flag("--cpus", "must be more than 0"));
        }
        let period = 100_000u64;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!((c * period as f64) as i64));
    }
    if let Some(s) = o.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = &o.cpuset_cpus {
        cpuset(c)?;
        cpu.insert("cpus".into(), json!(c));
    }
    let pids = match o.pids_limit {
        Some(n) if n > 0 => Some(n),
        Some(_) => None,
        None if i.pids_limit > 0 => Some(i.pids_limit),
        None => None,
    };
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut r = serde_json::to_value(linux.resources().clone().unwrap_or_default())
        .expect("resources serialize");
    if !mem.is_empty() {
        r["memory"] = Value::Object(mem);
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = pids {
        r["pids"] = json!({"limit": p});
    }
    let res: LinuxResources = serde_json::from_value(r).map_err(SpecError::Template)?;
    linux.set_resources(Some(res));
    linux.set_cgroups_path(i.cgroups_path.as_ref().map(Into::into));
    Ok(())
}

const RLIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// Parses `--ulimit NAME=SOFT[:HARD]` (-1 or `unlimited` for no limit).
pub fn parse_ulimit(v: &str) -> Result<PosixRlimit, SpecError> {
    let bad = |why: &str| flag("--ulimit", format!("{v:?}: {why}"));
    let (name, vals) = v
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
    let typ = RLIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| bad("unknown limit name"))?;
    let num = |s: &str| -> Result<u64, SpecError> {
        match s {
            "-1" | "unlimited" => Ok(u64::MAX),
            _ => s.parse().map_err(|_| bad("not a number")),
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard one"));
    }
    serde_json::from_value(json!({"type": typ, "soft": soft, "hard": hard}))
        .map_err(SpecError::Template)
}

fn hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    // SAFETY: getrlimit fills a valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(res, &mut r) != 0 {
            return u64::MAX;
        }
        r.rlim_max
    }
}

/// The `rlimits` step: podman's nofile (1048576) and nproc (4194304) defaults, clamped
/// to what this process may set, then `--ulimit`.
pub fn rlimits(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let nofile = 1_048_576u64.min(hard_limit(libc::RLIMIT_NOFILE));
    let nproc = 4_194_304u64.min(hard_limit(libc::RLIMIT_NPROC));
    let mut limits = vec![
        parse_ulimit(&format!("nofile={nofile}:{nofile}"))?,
        parse_ulimit(&format!("nproc={nproc}:{nproc}"))?,
    ];
    for u in &i.opts.ulimits {
        let l = parse_ulimit(u)?;
        limits.retain(|x| x.typ() != l.typ());
        limits.push(l);
    }
    let p = spec.process_mut().get_or_insert_with(Default::default);
    p.set_rlimits(Some(limits));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(size("-m", "128M").unwrap(), 128 << 20);
        assert!(size("-m", "lots").is_err());
        assert!(cpuset("0-2,4").is_ok());
        assert!(cpuset("2-1").is_err() && cpuset("").is_err() && cpuset("a").is_err());
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft(), u.hard()), (1024, 2048));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard(), u64::MAX);
        assert!(parse_ulimit("nofile=5:1").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
    }
}

//! Parsing of runtime-spec mount options into mount(2) flags, propagation changes,
//! recursive attributes (mount_setattr), fs-specific data and liana/crun extensions.

use crate::sys::attr;

/// One id-mapping range of an idmapped mount, as written to the helper user namespace's
/// uid_map/gid_map: `inner outer size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// Id as stored on disk.
    pub inner: u32,
    /// Id it is presented as (before the container's own user namespace).
    pub outer: u32,
    /// Number of ids.
    pub size: u32,
    /// `outer` is an id of the container's user namespace and must be translated to the
    /// host through the container's mapping (crun's `@` prefix).
    pub outer_in_container: bool,
}

/// An idmapped-mount request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Idmap {
    /// Apply to every mount of the tree (`ridmap`).
    pub recursive: bool,
    /// Explicit uid ranges (empty: use the container's user namespace).
    pub uids: Vec<IdRange>,
    /// Explicit gid ranges.
    pub gids: Vec<IdRange>,
}

/// Parsed mount options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set.
    pub flags: libc::c_ulong,
    /// `MS_*` flags explicitly cleared (`rw`, `suid`, `dev`, `exec`, ...).
    pub cleared: libc::c_ulong,
    /// Propagation changes, applied in order (`MS_PRIVATE | MS_REC`, ...).
    pub propagation: Vec<libc::c_ulong>,
    /// Recursive attributes to set (`rro`, `rnosuid`, ...).
    pub rec_set: u64,
    /// Recursive attributes to clear (`rrw`, `rsuid`, ...).
    pub rec_clr: u64,
    /// A bind mount (`bind` or `rbind`).
    pub bind: bool,
    /// Recursive bind.
    pub recursive: bool,
    /// fs-specific data, comma-joined when mounting (`mode=755`, `size=64k`).
    pub data: Vec<String>,
    /// Idmapped mount.
    pub idmap: Option<Idmap>,
    /// Copy the directory's existing content into a new tmpfs (runc's `tmpcopyup`).
    pub tmpcopyup: bool,
}

/// `MS_*` propagation flag of a `rootfsPropagation` or propagation option value.
pub fn propagation_flag(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// (option, set?, flag)
const FLAGS: &[(&str, bool, libc::c_ulong)] = &[
    ("async", false, libc::MS_SYNCHRONOUS),
    ("atime", false, libc::MS_NOATIME),
    ("defaults", false, 0),
    ("dev", false, libc::MS_NODEV),
    ("diratime", false, libc::MS_NODIRATIME),
    ("dirsync", true, libc::MS_DIRSYNC),
    ("exec", false, libc::MS_NOEXEC),
    ("iversion", true, libc::MS_I_VERSION),
    ("lazytime", true, libc::MS_LAZYTIME),
    ("loud", false, libc::MS_SILENT),
    ("mand", true, libc::MS_MANDLOCK),
    ("noatime", true, libc::MS_NOATIME),
    ("nodev", true, libc::MS_NODEV),
    ("nodiratime", true, libc::MS_NODIRATIME),
    ("noexec", true, libc::MS_NOEXEC),
    ("noiversion", false, libc::MS_I_VERSION),
    ("nolazytime", false, libc::MS_LAZYTIME),
    ("nomand", false, libc::MS_MANDLOCK),
    ("norelatime", false, libc::MS_RELATIME),
    ("nostrictatime", false, libc::MS_STRICTATIME),
    ("nosuid", true, libc::MS_NOSUID),
    ("nosymfollow", true, libc::MS_NOSYMFOLLOW),
    ("relatime", true, libc::MS_RELATIME),
    ("remount", true, libc::MS_REMOUNT),
    ("ro", true, libc::MS_RDONLY),
    ("rw", false, libc::MS_RDONLY),
    ("silent", true, libc::MS_SILENT),
    ("strictatime", true, libc::MS_STRICTATIME),
    ("suid", false, libc::MS_NOSUID),
    ("symfollow", false, libc::MS_NOSYMFOLLOW),
    ("sync", true, libc::MS_SYNCHRONOUS),
];

/// (option, set?, MOUNT_ATTR_*)
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", true, attr::RDONLY),
    ("rrw", false, attr::RDONLY),
    ("rnosuid", true, attr::NOSUID),
    ("rsuid", false, attr::NOSUID),
    ("rnodev", true, attr::NODEV),
    ("rdev", false, attr::NODEV),
    ("rnoexec", true, attr::NOEXEC),
    ("rexec", false, attr::NOEXEC),
    ("rnodiratime", true, attr::NODIRATIME),
    ("rdiratime", false, attr::NODIRATIME),
    ("rnosymfollow", true, attr::NOSYMFOLLOW),
    ("rsymfollow", false, attr::NOSYMFOLLOW),
];

impl MountOptions {
    /// Parses a mount's option list; the error says which option is malformed.
    pub fn parse(options: &[String]) -> Result<Self, String> {
        let mut o = Self::default();
        for opt in options {
            let opt = opt.as_str();
            if let Some(&(_, set, flag)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
                if set {
                    o.flags |= flag;
                    o.cleared &= !flag;
                } else {
                    o.flags &= !flag;
                    o.cleared |= flag;
                }
            } else if let Some(&(_, set, a)) = REC_ATTRS.iter().find(|(n, _, _)| *n == opt) {
                if set {
                    o.rec_set |= a;
                    o.rec_clr &= !a;
                } else {
                    o.rec_clr |= a;
                    o.rec_set &= !a;
                }
            } else if let Some(atime) = rec_atime(opt) {
                o.rec_clr |= attr::ATIME_MASK;
                o.rec_set = (o.rec_set & !attr::ATIME_MASK) | atime;
            } else if let Some(p) = propagation_flag(opt) {
                o.propagation.push(p);
            } else if opt == "bind" {
                o.bind = true;
            } else if opt == "rbind" {
                o.bind = true;
                o.recursive = true;
            } else if opt == "tmpcopyup" {
                o.tmpcopyup = true;
            } else if opt == "idmap" || opt == "ridmap" {
                let rec = opt == "ridmap";
                o.idmap.get_or_insert_with(Idmap::default).recursive |= rec;
            } else if let Some(spec) = opt.strip_prefix("idmap=") {
                o.idmap = Some(parse_idmap(spec)?);
            } else if opt.starts_with("x-") {
                // Userspace-only options (x-systemd.*, ...): not for the kernel.
            } else {
                o.data.push(opt.to_owned());
            }
        }
        Ok(o)
    }

    /// The data string for mount(2), if any.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// True when a bind mount needs a remount to apply flags.
    pub fn needs_remount(&self) -> bool {
        let relevant = self.flags & !(libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC);
        relevant != 0 || self.cleared != 0
    }
}

fn rec_atime(opt: &str) -> Option<u64> {
    Some(match opt {
        "rrelatime" => attr::RELATIME,
        "rnoatime" => attr::NOATIME,
        "rstrictatime" => attr::STRICTATIME,
        "ratime" | "rnorelatime" | "rnostrictatime" => attr::RELATIME,
        _ => return None,
    })
}

/// crun's `idmap=uids=C-H-S#C-H-S;gids=...` form; `@` makes H relative to the container's
/// user namespace, `+` is accepted and means "as written".
fn parse_idmap(spec: &str) -> Result<Idmap, String> {
    let mut idmap = Idmap::default();
    for part in spec.split(';').filter(|p| !p.is_empty()) {
        let (key, ranges) = part
            .split_once('=')
            .ok_or_else(|| format!("idmap option {part:?}: expected uids=... or gids=..."))?;
        let target = match key {
            "uids" => &mut idmap.uids,
            "gids" => &mut idmap.gids,
            other => return Err(format!("idmap option: unknown key {other:?}")),
        };
        for r in ranges.split('#').filter(|r| !r.is_empty()) {
            target.push(parse_range(r)?);
        }
    }
    Ok(idmap)
}

fn parse_range(r: &str) -> Result<IdRange, String> {
    let mut s = r;
    let mut outer_in_container = false;
    loop {
        if let Some(rest) = s.strip_prefix('@') {
            outer_in_container = true;
            s = rest;
        } else if let Some(rest) = s.strip_prefix('+') {
            s = rest;
        } else {
            break;
        }
    }
    let nums: Vec<u32> = s
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("idmap range {r:?}: expected INNER-OUTER-SIZE"))?;
    match nums[..] {
        [inner, outer, size] if size > 0 => Ok(IdRange {
            inner,
            outer,
            size,
            outer_in_container,
        }),
        _ => Err(format!("idmap range {r:?}: expected INNER-OUTER-SIZE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "noexec", "ro", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_RDONLY);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert_eq!(o.flags & libc::MS_RDONLY, 0);
        assert_eq!(o.cleared, libc::MS_RDONLY);
        assert!(o.needs_remount());
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rprivate", "x-systemd.automount"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert!(o.data.is_empty());
        assert!(!o.needs_remount());
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rro", "rnosuid", "rnoatime"]);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(o.rec_clr, attr::ATIME_MASK);
    }

    #[test]
    fn idmap_forms() {
        assert_eq!(p(&["idmap"]).idmap, Some(Idmap::default()));
        assert!(p(&["ridmap"]).idmap.unwrap().recursive);
        let i = p(&["idmap=uids=0-2-10#10-100-10;gids=@0-1-10"])
            .idmap
            .unwrap();
        assert_eq!(i.uids.len(), 2);
        assert_eq!(i.uids[1].outer, 100);
        assert!(i.gids[0].outer_in_container);
        assert!(MountOptions::parse(&["idmap=uids=x".into()]).is_err());
        assert!(MountOptions::parse(&["idmap=foo=0-1-1".into()]).is_err());
    }
}

//! The `mounts` step: the /etc files the engine wrote, volumes and binds, `--tmpfs`,
//! `--read-only` (with podman's writable tmpfs on /tmp, /var/tmp and /run), and the
//! init binary of `--init`.

use oci_spec::runtime::Spec;

use super::{mount, mounts_mut, SpecError, SpecInput};

/// Where `--init` puts the init binary.
pub const INIT_PATH: &str = "/run/liana-init";

fn covered(spec: &Spec, dest: &str) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .any(|m| m.destination().to_str() == Some(dest))
}

/// Replaces or adds the mount at `dest`.
pub(crate) fn put(spec: &mut Spec, m: oci_spec::runtime::Mount) {
    let ms = mounts_mut(spec);
    ms.retain(|x| x.destination() != m.destination());
    ms.push(m);
}

/// Parses `--tmpfs DEST[:OPTIONS]`.
pub fn parse_tmpfs(s: &str) -> Result<oci_spec::runtime::Mount, SpecError> {
    let (dest, opts) = s.split_once(':').unwrap_or((s, ""));
    if !dest.starts_with('/') {
        return Err(SpecError::Flag {
            flag: "--tmpfs",
            reason: format!("{dest:?} is not an absolute path"),
        });
    }
    let mut o: Vec<&str> = vec!["rw", "noexec", "nosuid", "nodev"];
    for x in opts.split(',').filter(|x| !x.is_empty()) {
        let key = x.split('=').next().unwrap_or(x);
        let opposite = match key {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            "ro" => Some("rw"),
            _ => None,
        };
        if let Some(opp) = opposite {
            o.retain(|y| *y != opp);
        }
        o.push(x);
    }
    Ok(mount(dest, "tmpfs", "tmpfs", &o))
}

/// The step.
pub fn apply(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    for v in i.volumes {
        let mut o: Vec<&str> = vec!["rbind"];
        o.push(if v.read_only { "ro" } else { "rw" });
        o.extend(
            v.options
                .iter()
                .map(String::as_str)
                .filter(|x| *x != "bind" && *x != "rbind"),
        );
        if !o
            .iter()
            .any(|x| x.ends_with("private") || x.ends_with("shared") || x.ends_with("slave"))
        {
            o.push("rprivate");
        }
        put(
            spec,
            mount(&v.destination, "bind", &v.source.to_string_lossy(), &o),
        );
    }
    for t in &i.opts.tmpfs {
        put(spec, parse_tmpfs(t)?);
    }
    let files = [
        ("/etc/hostname", "hostname"),
        ("/etc/hosts", "hosts"),
        ("/etc/resolv.conf", "resolv.conf"),
        ("/run/.containerenv", ".containerenv"),
    ];
    for (dest, file) in files {
        if !covered(spec, dest) {
            let src = i.userdata.join(file);
            mounts_mut(spec).push(mount(
                dest,
                "bind",
                &src.to_string_lossy(),
                &["bind", "rprivate"],
            ));
        }
    }
    if i.opts.read_only {
        spec.root_mut()
            .get_or_insert_with(Default::default)
            .set_readonly(Some(true));
        for dest in ["/tmp", "/var/tmp", "/run"] {
            if !covered(spec, dest) {
                let m = mount(
                    dest,
                    "tmpfs",
                    "tmpfs",
                    &["rw", "nosuid", "nodev", "mode=1777"],
                );
                // Before the /etc files so that /run/.containerenv lands on the tmpfs.
                let ms = mounts_mut(spec);
                let pos = ms
                    .iter()
                    .position(|x| x.destination().starts_with("/etc/hostname"))
                    .unwrap_or(ms.len());
                ms.insert(pos, m);
            }
        }
    }
    if i.opts.init {
        let Some(path) = i.init_path else {
            return Err(SpecError::Init(
                "no init binary: set engine.init_path or install liana-init next to liana".into(),
            ));
        };
        mounts_mut(spec).push(mount(
            INIT_PATH,
            "bind",
            &path.to_string_lossy(),
            &["bind", "ro", "rprivate"],
        ));
        let p = spec.process_mut().get_or_insert_with(Default::default);
        let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
        args.extend(p.args().clone().unwrap_or_default());
        p.set_args(Some(args));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs() {
        let m = parse_tmpfs("/run:exec,size=10m").unwrap();
        assert_eq!(
            m.options().clone().unwrap(),
            ["rw", "nosuid", "nodev", "exec", "size=10m"]
        );
        assert!(parse_tmpfs("run").is_err());
    }
}

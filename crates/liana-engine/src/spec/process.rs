//! The `process` step: what to run, with which environment, where and as whom. Image
//! config first (Entrypoint, Cmd, Env, WorkingDir, User), then the flags, with docker's
//! rules: `--entrypoint` drops the image's Cmd, later environment entries replace
//! earlier ones, and a user name resolves through the image's /etc/passwd and
//! /etc/group (read inside the root file system, never following a link out of it).

use std::io::Read;
use std::path::Path;

use liana_container::resolve::Root;
use oci_spec::runtime::Spec;

use super::{SpecError, SpecInput};

/// PATH when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home directory (`/` when unknown).
    pub home: String,
}

/// Reads a file of the root file system (none when missing or unreadable).
pub fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = Root::open(rootfs).ok()?;
    let fd = root
        .open_at(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOCTTY,
        )
        .ok()?;
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    f.by_ref().take(4 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

fn passwd_entry(passwd: &str, pred: impl Fn(&str, u32) -> bool) -> Option<Vec<&str>> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid = f[2].parse().ok()?;
        pred(f[0], uid).then_some(f)
    })
}

/// Resolves `USER[:GROUP]` (names or numbers) against the image's files.
pub fn resolve_user(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, SpecError> {
    let err = |reason: String| SpecError::User {
        user: user.into(),
        reason,
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = passwd.unwrap_or("");
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd_entry(passwd, |_, id| id == uid),
        Err(_) if u.is_empty() => passwd_entry(passwd, |_, id| id == 0),
        Err(_) => Some(
            passwd_entry(passwd, |name, _| name == u)
                .ok_or_else(|| err("no matching entries in the image's /etc/passwd".into()))?,
        ),
    };
    let uid = match u.parse::<u32>() {
        Ok(id) => id,
        Err(_) if u.is_empty() => 0,
        Err(_) => entry.as_ref().and_then(|e| e[2].parse().ok()).unwrap_or(0),
    };
    let name = entry.as_ref().map(|e| e[0]).unwrap_or("");
    let mut gid = entry.as_ref().and_then(|e| e[3].parse().ok()).unwrap_or(0);
    let home = entry
        .as_ref()
        .map(|e| e[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    let groups = group.unwrap_or("");
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => groups
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| err(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut additional_gids = Vec::new();
    if g.is_none() && !name.is_empty() {
        for l in groups.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Sets `entry` (`KEY=VALUE`) in `env`, replacing an entry with the same key.
pub fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry
        .split_once('=')
        .map_or(entry.as_str(), |(k, _)| k)
        .to_string();
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(entry);
}

fn has_env(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
}

/// Entries of an env file: `KEY=VALUE` lines, `KEY` alone takes our value, `#` comments.
pub fn parse_env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| expand_env(l.trim_start_matches("export ")))
        .collect()
}

/// `KEY=VALUE` as is; `KEY` becomes `KEY=our value`, or nothing when unset.
pub fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

/// The step.
pub fn apply(spec: &mut Spec, i: &SpecInput<'_>) -> Result<(), SpecError> {
    let o = i.opts;
    let img = i.image;
    let entrypoint: Vec<String> = match &o.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) if e.trim_start().starts_with('[') => {
            serde_json::from_str(e).map_err(|x| SpecError::Flag {
                flag: "--entrypoint",
                reason: format!("not a JSON array of strings: {x}"),
            })?
        }
        Some(e) => vec![e.clone()],
        None => img.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
    };
    let cmd: Vec<String> = if !o.command.is_empty() {
        o.command.clone()
    } else if o.entrypoint.is_some() {
        Vec::new()
    } else {
        img.and_then(|c| c.cmd().clone()).unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }

    let user_text = o
        .user
        .clone()
        .or_else(|| img.and_then(|c| c.user().clone()).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "0:0".into());
    let passwd = read_in_root(i.rootfs, "/etc/passwd");
    let group = read_in_root(i.rootfs, "/etc/group");
    let user = resolve_user(&user_text, passwd.as_deref(), group.as_deref())?;

    let mut env: Vec<String> = img.and_then(|c| c.env().clone()).unwrap_or_default();
    if !has_env(&env, "PATH") {
        env.insert(0, DEFAULT_PATH.into());
    }
    if o.tty {
        set_env(&mut env, "TERM=xterm".into());
    }
    set_env(&mut env, "container=liana".into());
    for f in &o.env_files {
        let text = std::fs::read_to_string(f).map_err(|source| SpecError::EnvFile {
            path: f.clone(),
            source,
        })?;
        for e in parse_env_file(&text) {
            set_env(&mut env, e);
        }
    }
    for e in &o.env {
        if let Some(e) = expand_env(e) {
            set_env(&mut env, e);
        }
    }
    if !has_env(&env, "HOSTNAME") {
        set_env(&mut env, format!("HOSTNAME={}", i.hostname));
    }
    if !has_env(&env, "HOME") {
        set_env(&mut env, format!("HOME={}", user.home));
    }

    let cwd = o
        .workdir
        .clone()
        .or_else(|| {
            img.and_then(|c| c.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::Flag {
            flag: "-w",
            reason: format!("{cwd:?} is not an absolute path"),
        });
    }

    let p = spec.process_mut().get_or_insert_with(Default::default);
    p.set_args(Some(args));
    p.set_env(Some(env));
    p.set_cwd(cwd.into());
    p.set_terminal(Some(o.tty));
    let mut u = p.user().clone();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids((!user.additional_gids.is_empty()).then_some(user.additional_gids));
    p.set_user(u);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:n:/nonexistent:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:bob,alice\nbob:x:1000:\nstaff:x:50:\n";

    #[test]
    fn users() {
        let r = |u| resolve_user(u, Some(PASSWD), Some(GROUP));
        assert_eq!(
            r("bob").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
                home: "/home/bob".into()
            }
        );
        assert_eq!(r("0:0").unwrap().home, "/root");
        assert_eq!(
            r("1234").unwrap(),
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(r("bob:staff").unwrap().gid, 50);
        assert_eq!(r("nobody:7").unwrap().gid, 7);
        assert!(r("carol").is_err());
        assert!(r("bob:nogroup").is_err());
        assert_eq!(
            resolve_user("root", None, None).unwrap_err().to_string(),
            "user \"root\": no matching entries in the image's /etc/passwd"
        );
    }

    #[test]
    fn env() {
        let mut e = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(&mut e, "A=3".into());
        assert_eq!(e, ["B=2", "A=3"]);
        assert_eq!(parse_env_file("# c\nX=1\n\nexport Y=2\n"), ["X=1", "Y=2"]);
    }
}

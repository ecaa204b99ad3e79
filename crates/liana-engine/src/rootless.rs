//! Rootless containers: the caller's subordinate ids (/etc/subuid, /etc/subgid) and the
//! user namespace mappings built from them.
//!
//! The container's root is the caller; ids 1..=N map to the caller's subordinate range
//! through newuidmap/newgidmap (Debian's `uidmap`). Without a range, or without the
//! helpers, only root is mapped.

use std::path::Path;

/// One mapping range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First id in the container.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// Count.
    pub size: u32,
}

/// The mappings of a rootless container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mappings {
    /// uid ranges.
    pub uids: Vec<IdMap>,
    /// gid ranges.
    pub gids: Vec<IdMap>,
}

impl Mappings {
    /// Whether only root is mapped.
    pub fn single(&self) -> bool {
        self.uids.len() == 1 && self.gids.len() == 1
    }

    /// Whether container uid `id` is mapped.
    pub fn has_uid(&self, id: u32) -> bool {
        self.uids
            .iter()
            .any(|m| id >= m.container && id - m.container < m.size)
    }

    /// Whether container gid `id` is mapped.
    pub fn has_gid(&self, id: u32) -> bool {
        self.gids
            .iter()
            .any(|m| id >= m.container && id - m.container < m.size)
    }
}

/// The first range of `user` (name or uid) in a subid file's text.
pub fn parse_subid(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != name && who.parse::<u32>().ok() != Some(id) {
            return None;
        }
        Some((start.parse().ok()?, count.parse().ok()?))
    })
}

fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

fn helper_available(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// The mappings for the calling user, from `subuid`/`subgid` files.
pub fn mappings_for_caller(subuid: &Path, subgid: &Path) -> Mappings {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let name = user_name(uid).unwrap_or_default();
    let mut uids = vec![IdMap {
        container: 0,
        host: uid,
        size: 1,
    }];
    let mut gids = vec![IdMap {
        container: 0,
        host: gid,
        size: 1,
    }];
    let helpers = helper_available("newuidmap") && helper_available("newgidmap");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    if helpers {
        if let (Some((us, uc)), Some((gs, gc))) = (
            parse_subid(&read(subuid), &name, uid),
            parse_subid(&read(subgid), &name, gid),
        ) {
            uids.push(IdMap {
                container: 1,
                host: us,
                size: uc,
            });
            gids.push(IdMap {
                container: 1,
                host: gs,
                size: gc,
            });
        }
    }
    Mappings { uids, gids }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subids() {
        let t = "alice:100000:65536\n1001:200000:1000\n";
        assert_eq!(parse_subid(t, "alice", 5), Some((100000, 65536)));
        assert_eq!(parse_subid(t, "bob", 1001), Some((200000, 1000)));
        assert_eq!(parse_subid(t, "carol", 7), None);
        let m = Mappings {
            uids: vec![
                IdMap {
                    container: 0,
                    host: 1000,
                    size: 1,
                },
                IdMap {
                    container: 1,
                    host: 100000,
                    size: 65536,
                },
            ],
            gids: vec![IdMap {
                container: 0,
                host: 1000,
                size: 1,
            }],
        };
        assert!(m.has_uid(65536) && !m.has_uid(65537));
        assert!(m.has_gid(0) && !m.has_gid(5));
        assert!(!m.single());
    }
}

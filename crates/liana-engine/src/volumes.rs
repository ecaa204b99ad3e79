//! Volumes: `-v` parsing, and named or anonymous volumes kept under
//! `ROOT/volumes/NAME/_data` with a record in the `volumes` table (see [`crate::db`]).
//!
//! A new, empty volume mounted over a directory of the image is first filled with that
//! directory's content, as docker and podman do.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::VOLUMES;
use crate::error::{Error, Result};

/// A volume record (format version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Made for one container (`-v /path` or an image VOLUME).
    pub anonymous: bool,
    /// Host directory.
    pub mountpoint: PathBuf,
}

/// Where a `-v` mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host path.
    Bind(PathBuf),
    /// A named volume.
    Named(String),
    /// A new anonymous volume.
    Anonymous,
}

/// A parsed `-v SRC:DEST[:OPTS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Source.
    pub source: VolumeSource,
    /// Path in the container.
    pub destination: String,
    /// Read-only.
    pub read_only: bool,
    /// Other mount options (propagation, `nosuid`...).
    pub options: Vec<String>,
}

fn valid_volume_name(n: &str) -> bool {
    !n.is_empty()
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Parses `-v` (docker's syntax).
pub fn parse(spec: &str) -> Result<VolumeSpec> {
    let bad = |why: &str| Error::flag("-v", format!("{spec:?}: {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [d] => (None, *d, None),
        [s, d] if d.starts_with('/') => (Some(*s), *d, None),
        [d, o] if d.starts_with('/') => (None, *d, Some(*o)),
        [s, d, o] => (Some(*s), *d, Some(*o)),
        _ => return Err(bad("expected [SOURCE:]DESTINATION[:OPTIONS]")),
    };
    if !dest.starts_with('/') {
        return Err(bad("the destination must be an absolute path"));
    }
    let source = match src {
        None => VolumeSource::Anonymous,
        Some(s) if s.starts_with('/') => VolumeSource::Bind(PathBuf::from(s)),
        Some(s) if s.starts_with('.') || s.starts_with('~') => {
            return Err(bad("host paths must be absolute"))
        }
        Some(s) if valid_volume_name(s) => VolumeSource::Named(s.into()),
        Some(_) => return Err(bad("invalid volume name")),
    };
    let mut read_only = false;
    let mut options = Vec::new();
    for o in opts.into_iter().flat_map(|o| o.split(',')) {
        match o {
            "ro" | "readonly" => read_only = true,
            "rw" | "z" | "Z" | "" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "bind"
            | "rbind" | "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" => {
                options.push(o.to_string())
            }
            other => return Err(bad(&format!("unknown option {other:?}"))),
        }
    }
    let trimmed = dest.trim_end_matches('/');
    Ok(VolumeSpec {
        source,
        destination: if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        },
        read_only,
        options,
    })
}

/// The volumes of one storage root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
    db: liana_images::metadata::Db,
}

impl Volumes {
    /// Volumes under `dir` recorded in `db`.
    pub fn new(dir: PathBuf, db: liana_images::metadata::Db) -> Self {
        Volumes { dir, db }
    }

    /// The volume `name`, created if missing; the flag says whether it is new.
    pub fn ensure(&self, name: &str, anonymous: bool) -> Result<(Volume, bool)> {
        let mountpoint = self.dir.join(name).join("_data");
        let v = Volume {
            name: name.into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            anonymous,
            mountpoint: mountpoint.clone(),
        };
        let (vol, new) = self.db.write(|tx| {
            if let Some(old) = tx.get_json::<Volume>(VOLUMES, name)? {
                return Ok::<_, Error>((old, false));
            }
            tx.put_json(VOLUMES, name, &v)?;
            Ok((v.clone(), true))
        })?;
        std::fs::create_dir_all(&vol.mountpoint)
            .map_err(Error::io("create volume", &vol.mountpoint))?;
        Ok((vol, new))
    }

    /// Removes a volume and its data.
    pub fn remove(&self, name: &str) -> Result<()> {
        let existed = self
            .db
            .write(|tx| Ok::<_, Error>(tx.delete(VOLUMES, name)?))?;
        let dir = self.dir.join(name);
        if existed || dir.exists() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove volume", &dir)(e)),
            }
        }
        Ok(())
    }

    /// All volumes.
    pub fn list(&self) -> Result<Vec<Volume>> {
        self.db.read(|tx| {
            Ok::<_, Error>(
                tx.list_json::<Volume>(VOLUMES)?
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            )
        })
    }
}

/// Whether a directory is empty (or missing).
pub fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let v = parse("/src:/dst:ro").unwrap();
        assert_eq!(v.source, VolumeSource::Bind("/src".into()));
        assert!(v.read_only);
        assert_eq!(
            parse("data:/d").unwrap().source,
            VolumeSource::Named("data".into())
        );
        assert_eq!(parse("/d").unwrap().source, VolumeSource::Anonymous);
        assert!(!parse("/d:rw").unwrap().read_only);
        assert_eq!(parse("/a:/b:rslave,ro").unwrap().options, ["rslave"]);
        for bad in ["rel", "./x:/y", "a:b", "/a:/b:bogus", "a:b:c:d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn creates_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let db = liana_images::metadata::Db::open(&dir.path().join("m.db"), 1, &[]).unwrap();
        let v = Volumes::new(dir.path().join("volumes"), db);
        let (a, new) = v.ensure("data", false).unwrap();
        assert!(new && a.mountpoint.is_dir());
        assert!(!v.ensure("data", false).unwrap().1);
        assert_eq!(v.list().unwrap().len(), 1);
        v.remove("data").unwrap();
        assert!(!a.mountpoint.exists());
        assert!(v.list().unwrap().is_empty());
    }
}

//! Where the engine keeps things.
//!
//! # Layout, version 1
//!
//! ```text
//! ROOT/                         --root: storage (images, see liana_images::store)
//!   metadata.db                 images and containers (see crate::db)
//!   containers/ID/              a container's persistent files, also its OCI bundle:
//!     config.json                 the generated spec
//!     hosts hostname resolv.conf  files bind-mounted into the container
//!     .containerenv               podman's marker file, at /run/.containerenv
//!     ctr.log                     the log (k8s-file or json-file)
//!     rootfs/                     mount point of the overlay root file system
//!   volumes/NAME/_data          named and anonymous volumes
//! RUNROOT/                      --runroot: state that does not survive a reboot
//!   containers/ID/
//!     lock                        the container's lock (crate::lock)
//!     exit                        the exit file (liana_monitor::exitfile)
//!     attach                      the monitor's attach socket (liana_monitor::attach)
//!   runtime/                    the built-in runtime's state root
//!   runtimes/NAME/              an external runtime's --root
//! ```
//!
//! Root: ROOT = /var/lib/liana, RUNROOT = /run/liana. Rootless: ROOT =
//! $XDG_DATA_HOME/liana (~/.local/share/liana), RUNROOT = $XDG_RUNTIME_DIR/liana, or
//! /tmp/liana-run-UID when XDG_RUNTIME_DIR is not set.

use std::path::{Path, PathBuf};

/// The two roots of one engine instance.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Storage root.
    pub root: PathBuf,
    /// Runtime state root.
    pub runroot: PathBuf,
}

fn var(k: &str) -> Option<PathBuf> {
    std::env::var_os(k)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The default storage root.
pub fn default_root(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/var/lib/liana");
    }
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("liana")
}

/// The default runtime state root.
pub fn default_runroot(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/run/liana");
    }
    match var("XDG_RUNTIME_DIR") {
        Some(d) => d.join("liana"),
        None => PathBuf::from(format!(
            "/tmp/liana-run-{}",
            rustix::process::geteuid().as_raw()
        )),
    }
}

impl Paths {
    /// A container's persistent directory (its bundle).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
    /// A container's runtime directory.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }
    /// The exit file.
    pub fn exit_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("exit")
    }
    /// The log file.
    pub fn log_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("ctr.log")
    }
    /// The mount point of the root file system.
    pub fn rootfs_mount(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }
    /// The built-in runtime's state root.
    pub fn builtin_runtime_root(&self) -> PathBuf {
        self.runroot.join("runtime")
    }
    /// An external runtime's state root.
    pub fn external_runtime_root(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.runroot.join("runtimes").join(safe)
    }
    /// Where volumes live.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }
}

/// Creates `dir` and its parents with mode 0700 for the new components.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let p = Paths {
            root: "/r".into(),
            runroot: "/rr".into(),
        };
        assert_eq!(p.exit_file("abc"), Path::new("/rr/containers/abc/exit"));
        assert_eq!(p.log_file("abc"), Path::new("/r/containers/abc/ctr.log"));
        assert_eq!(
            p.external_runtime_root("/usr/bin/runsc"),
            Path::new("/rr/runtimes/_usr_bin_runsc")
        );
        assert_eq!(default_root(false), Path::new("/var/lib/liana"));
    }
}

//! OCI images for liana: everything between an image reference and a directory tree
//! ready to be mounted as a container's root file system.
//!
//! The modules follow containerd's nouns:
//! - [`reference`]: parsing and normalizing image names;
//! - [`config`]: registries.conf, auth files and certs.d, as podman users have them;
//! - [`remote`]: the registry client (auth, TLS, manifests, blobs, uploads);
//! - [`manifest`]: media types, manifests, indexes, platforms;
//! - [`content`]: the blob store with verified, atomic, resumable ingests;
//! - [`metadata`]: the embedded database of images and leases;
//! - [`unpack`]: safe application of layer tars (whiteouts, ownership, xattrs);
//! - [`snapshot`]: overlayfs and native snapshotters that *return* mounts;
//! - [`gc`]: garbage collection of unreferenced blobs and snapshots;
//! - [`pull`], [`push`], [`archive`]: the operations composed from the above;
//! - [`store`]: [`store::ImageStore`], one storage root with all of the above.
//!
//! Nothing here parses command lines or prints: progress is reported through
//! [`pull::Progress`], errors are typed and carry an [`ErrorKind`].

// Errors carry the path, digest or reference of the failed operation plus their cause,
// by design (STYLE.md); they are returned on cold paths only, so their size does not
// matter and boxing every variant would only obscure the one-variant-per-operation enums.
#![allow(clippy::result_large_err)]

pub mod archive;
pub mod config;
pub mod content;
pub mod digest;
pub mod errdefs;
pub mod gc;
pub mod manifest;
pub mod metadata;
pub mod pull;
pub mod push;
pub mod reference;
pub mod remote;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use errdefs::{ErrorKind, HasKind};
pub use reference::Reference;
pub use store::{ImageStore, StoreError, StoreOptions};

//! cgroup management for liana: cgroup v1, v2 and hybrid hosts, detected at
//! run time, with the cgroupfs, systemd (detection only) and disabled drivers.
//!
//! ```text
//! detect ──► CgroupSetup ──► Manager::new(setup, config) ──► state() (save it)
//!                                   │
//!            create() ─► set(resources) ─► apply(pid | 0 in the child)
//!                                   │
//!   later commands: Manager::from_state(saved) ─► update / freeze / thaw /
//!                   pids / kill_all / stats / oom_watcher / destroy
//! ```
//!
//! * [`hierarchy`]: which hierarchies are mounted and our cgroup in each.
//! * [`path`]: `linux.cgroupsPath` rules (absolute, relative, default,
//!   systemd `slice:prefix:name`).
//! * [`Manager`]: create/apply/set/update/destroy and the running-container
//!   operations; [`CgroupState`] is its saved form.
//! * Controllers: `v1::*` and `v2::*` one module per controller, plus the
//!   shared `pids`, `hugetlb` and `rdma`; [`devices`] holds the device rule
//!   semantics and [`bpf`] the cgroup v2 eBPF device filter.
//! * [`stats`]: runc's `events --stats` JSON; [`events`]: OOM notifications.
//!
//! Host paths (`/proc/self/...`, cgroup mounts, `/run/systemd/system`) are
//! parameters everywhere so tests run on a fake cgroupfs in a temp dir.
//!
//! # Using it from the runtime
//!
//! * `create`/`run`: `CgroupSetup::detect()` once, `Manager::new`, store
//!   `manager.state()` in the container state **before** `create()` (so a
//!   crash mid-create is repairable), then `create()`, `set(&resources)` —
//!   which validates everything first and names the runtime-spec key on
//!   failure — and `apply(0)` in the forked child (or `apply(pid)` from the
//!   parent). On any failure after `create()`, call `destroy()`.
//! * `linux.resources.devices` is applied as given: append the default device
//!   allowlist (`/dev/null`, `/dev/zero`, ptys...) before calling `set`, as
//!   runc does; `None` leaves device access untouched.
//! * cgroup namespace: unshare it after `apply`; for the `/sys/fs/cgroup`
//!   mount inside the container use [`Manager::mounts`] (v1: one bind or
//!   `cgroup` mount per hierarchy plus symlinks such as `cpu` →
//!   `cpu,cpuacct`; v2: one `cgroup2` mount).
//! * `update`: `Manager::from_state(saved).update(&resources)`.
//! * `pause`/`resume`: `freeze()`/`thaw()`; `freezer_state()` for `state`.
//! * `ps`: `pids()`. `kill --all`: `kill_all(signal)`.
//! * `events`: `stats()` wrapped in [`Event::stats`]; `oom_watcher()` and
//!   [`OomWatcher::wait`] (or poll its fd) for `{"type":"oom"}` events.
//! * `delete` (also `--force` after a crash): `kill_all(SIGKILL)`, wait for
//!   `pids()` to be empty, `destroy()` (idempotent). Without a saved state,
//!   `Manager::new` with the same id and cgroupsPath yields the same paths.
//! * Errors: [`Error::kind`] for exit codes; messages name file, key or pid.

pub mod bpf;
pub mod devices;
mod error;
pub mod events;
mod files;
pub mod hierarchy;
mod hugetlb;
mod manager;
mod ops;
pub mod path;
mod pids;
mod rdma;
mod resources;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

pub use error::{Error, ErrorKind, Result};
pub use events::{OomEvent, OomWatcher};
pub use hierarchy::{CgroupSetup, Mode};
pub use manager::{
    CgroupMount, CgroupState, Manager, ManagerConfig, UnifiedCgroup, V1Cgroup, STATE_VERSION,
};
/// The signal type of [`Manager::kill_all`].
pub use nix::sys::signal::Signal;
pub use ops::{FreezerState, FREEZE_TIMEOUT};
pub use path::Driver;
pub use stats::{Event, Stats};
pub use v2::cpu::shares_to_weight;
pub use v2::io::blkio_weight_to_io_weight;

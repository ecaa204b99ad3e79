//! The runtime's use of [`liana_cgroups`]: building the container's manager from the
//! config and the global flags, and the device rules every container gets.

use liana_cgroups::{CgroupSetup, Driver, Manager, ManagerConfig};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

pub use liana_cgroups::Manager as CgroupManager;

/// Cgroup errors.
pub type CgroupError = liana_cgroups::Error;

/// The manager for a new container.
pub fn manager_for(
    id: &str,
    cgroups_path: Option<&str>,
    driver: Driver,
    rootless: bool,
) -> Result<Manager, CgroupError> {
    if driver == Driver::Disabled {
        return Ok(Manager::disabled(id));
    }
    let setup = CgroupSetup::detect()?;
    let mut cfg = ManagerConfig::new(id, cgroups_path);
    cfg.driver = driver;
    cfg.rootless = rootless;
    Manager::new(&setup, &cfg)
}

/// The device rules runc always allows after the config's own (the standard /dev
/// nodes, ptys, tun, and mknod of anything).
pub fn default_allowed_devices() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_owned()));
        d
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// The config's resources with the default device rules appended (runc's order: the
/// config's rules first, then the defaults, so a deny-all does not lock out /dev/null).
pub fn effective_resources(res: Option<&LinuxResources>) -> LinuxResources {
    let mut r = res.cloned().unwrap_or_default();
    let mut devices = r.devices().clone().unwrap_or_default();
    if !devices.is_empty() {
        devices.extend(default_allowed_devices());
        r.set_devices(Some(devices));
    }
    r
}

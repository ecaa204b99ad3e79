//! `linux.resources`: validation, then writes in a fixed order, each
//! controller to wherever this host has it (a v1 hierarchy, else the unified
//! one: on a hybrid host, hugetlb may live on the unified tree).
//!
//! Validation runs before any write, so an impossible configuration fails
//! with the runtime-spec key named and nothing half-applied.

use oci_spec::runtime::LinuxResources;

use crate::devices::{parse_rules, DeviceRuleSet};
use crate::error::{Error, Result};
use crate::manager::{Manager, Target};
use crate::path::Driver;
use crate::{hugetlb, pids, rdma, v1, v2};

/// Whether the resources go to a freshly created cgroup or a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetMode {
    /// A new cgroup: current limits are the defaults, nothing is read back.
    Create,
    /// A running container: ordering decisions read the current values.
    Update,
}

impl Manager {
    /// Applies `linux.resources` to a cgroup made by [`Manager::create`].
    pub fn set(&self, resources: &LinuxResources) -> Result<()> {
        self.write_resources(resources, SetMode::Create)
    }

    /// Applies `linux.resources` to a running container (`runc update`).
    /// Only the fields present are changed.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.write_resources(resources, SetMode::Update)
    }

    /// Checks `resources` against this host without writing anything.
    pub fn validate(&self, r: &LinuxResources) -> Result<()> {
        if self.driver == Driver::Disabled {
            return Ok(());
        }
        let need = |key: &str, v1_name: &str, v2_name: &str| -> Result<Target<'_>> {
            self.target(v1_name, v2_name)
                .ok_or_else(|| Error::Unsupported {
                    key: key.into(),
                    reason: self.unavailable_reason(v1_name),
                })
        };
        let invalid = |key: &str, reason: String| Error::InvalidResource {
            key: key.into(),
            reason,
        };
        if let Some(m) = r.memory() {
            let first = [
                ("memory.limit", m.limit().is_some_and(|v| v != 0)),
                ("memory.swap", m.swap().is_some_and(|v| v != 0)),
                (
                    "memory.reservation",
                    m.reservation().is_some_and(|v| v != 0),
                ),
                ("memory.swappiness", m.swappiness().is_some()),
                (
                    "memory.disableOOMKiller",
                    m.disable_oom_killer() == Some(true),
                ),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            let t = match first {
                Some((key, _)) => Some(need(key, "memory", "memory")?),
                None => None,
            };
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(invalid(
                        "memory.swappiness",
                        format!("{s} is not in 0..=100"),
                    ));
                }
            }
            for (key, v) in [
                ("memory.limit", m.limit()),
                ("memory.swap", m.swap()),
                ("memory.reservation", m.reservation()),
            ] {
                if let Some(v) = v.filter(|v| *v < -1) {
                    return Err(invalid(
                        key,
                        format!("{v} is negative (use -1 for unlimited)"),
                    ));
                }
            }
            if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
                if l > 0 && s > 0 && s < l {
                    return Err(invalid(
                        "memory.swap",
                        format!("memory+swap {s} is below the memory limit {l}"),
                    ));
                }
            }
            if let Some(Target::V2(_)) = t {
                v2::memory::swap_value(m.limit(), m.swap())
                    .map_err(|reason| invalid("memory.swap", reason))?;
            }
            #[allow(deprecated)]
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                tracing::warn!("memory.kernel and memory.kernelTCP are ignored");
            }
        }
        if let Some(c) = r.cpu() {
            let first = [
                ("cpu.shares", c.shares().is_some_and(|v| v != 0)),
                ("cpu.quota", c.quota().is_some_and(|v| v != 0)),
                ("cpu.period", c.period().is_some_and(|v| v != 0)),
                ("cpu.burst", c.burst().is_some()),
                ("cpu.idle", c.idle().is_some()),
                (
                    "cpu.realtimePeriod",
                    c.realtime_period().is_some_and(|v| v != 0),
                ),
                (
                    "cpu.realtimeRuntime",
                    c.realtime_runtime().is_some_and(|v| v != 0),
                ),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            let rt = c.realtime_period().is_some_and(|v| v != 0)
                || c.realtime_runtime().is_some_and(|v| v != 0);
            if let Some((key, _)) = first {
                if let Target::V2(_) = need(key, "cpu", "cpu")? {
                    if rt {
                        return Err(Error::Unsupported {
                            key: "cpu.realtimeRuntime".into(),
                            reason: "realtime scheduling cannot be limited on cgroup v2".into(),
                        });
                    }
                }
            }
            if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                || c.mems().as_deref().is_some_and(|s| !s.is_empty())
            {
                need("cpu.cpus", "cpuset", "cpuset")?;
            }
            if let Some(s) = c.shares().filter(|s| *s != 0) {
                if !(2..=262_144).contains(&s) {
                    return Err(invalid("cpu.shares", format!("{s} is not in 2..=262144")));
                }
            }
            if let (Some(b), Some(q)) = (c.burst(), c.quota()) {
                if q > 0 && b > q as u64 {
                    return Err(invalid(
                        "cpu.burst",
                        format!("{b} is larger than the quota {q}"),
                    ));
                }
            }
            if let Some(i) = c.idle() {
                if !(0..=1).contains(&i) {
                    return Err(invalid("cpu.idle", format!("{i} is neither 0 nor 1")));
                }
            }
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                need("pids.limit", "pids", "pids")?;
            }
        }
        if let Some(b) = r.block_io() {
            let any = b.weight().is_some()
                || b.leaf_weight().is_some()
                || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
                || b.throttle_read_bps_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_write_bps_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_read_iops_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_write_iops_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty());
            if any {
                need("blockIO", "blkio", "io")?;
            }
            for (key, w) in [
                ("blockIO.weight", b.weight()),
                ("blockIO.leafWeight", b.leaf_weight()),
            ] {
                if let Some(w) = w.filter(|w| *w != 0) {
                    if !(10..=1000).contains(&w) {
                        return Err(invalid(key, format!("{w} is not in 10..=1000")));
                    }
                }
            }
            for wd in b.weight_device().iter().flatten() {
                if wd.weight().is_none() && wd.leaf_weight().is_none() {
                    return Err(invalid(
                        "blockIO.weightDevice",
                        format!(
                            "{}:{} has neither weight nor leafWeight",
                            wd.major(),
                            wd.minor()
                        ),
                    ));
                }
            }
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            need("hugepageLimits", "hugetlb", "hugetlb")?;
            for l in limits {
                if !valid_page_size(l.page_size()) {
                    return Err(invalid(
                        &hugetlb::key(l),
                        "page size must look like 64KB, 2MB or 1GB".into(),
                    ));
                }
            }
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() {
                self.need_v1("network.classID", "net_cls")?;
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                self.need_v1("network.priorities", "net_prio")?;
            }
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            need("rdma", "rdma", "rdma")?;
            for (dev, l) in rdma {
                if l.hca_handles().is_none() && l.hca_objects().is_none() {
                    return Err(invalid(
                        &format!("rdma[{dev}]"),
                        "neither hcaHandles nor hcaObjects is set".into(),
                    ));
                }
            }
        }
        if let Some(devices) = r.devices() {
            let rules = parse_rules(devices)?;
            DeviceRuleSet::from_rules(&rules)?;
        }
        if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            self.validate_unified(unified)?;
        }
        Ok(())
    }

    fn need_v1(&self, key: &str, controller: &str) -> Result<()> {
        match self.target(controller, "") {
            Some(Target::V1(_)) => Ok(()),
            _ => Err(Error::Unsupported {
                key: key.into(),
                reason: self.unavailable_reason(controller),
            }),
        }
    }

    fn validate_unified(&self, unified: &std::collections::HashMap<String, String>) -> Result<()> {
        let Some(u) = &self.unified else {
            return Err(Error::Unsupported {
                key: "unified".into(),
                reason: "this host has no cgroup v2 (unified) hierarchy".into(),
            });
        };
        for k in unified.keys() {
            let key = format!("unified[{k:?}]");
            v2::unified::check_key(k).map_err(|reason| Error::InvalidResource {
                key: key.clone(),
                reason,
            })?;
            let ctrl = v2::unified::controller_of(k);
            if ctrl == "cgroup" || u.controllers.iter().any(|c| c == ctrl) {
                continue;
            }
            let mut reason = v2::unified::unavailable(ctrl);
            if !self.v1.is_empty() {
                reason.push_str(" on the unified hierarchy of this hybrid host");
            }
            return Err(Error::Unsupported { key, reason });
        }
        Ok(())
    }

    fn unavailable_reason(&self, controller: &str) -> String {
        if self.rootless && !self.skipped.is_empty() {
            format!(
                "the {controller} cgroup could not be joined or created (rootless, skipped: {})",
                self.skipped.join(" ")
            )
        } else if self.v1.is_empty() && self.unified.is_none() {
            "the container has no cgroup".into()
        } else {
            format!("the {controller} controller is not available on this host")
        }
    }

    fn write_resources(&self, r: &LinuxResources, mode: SetMode) -> Result<()> {
        if self.driver == Driver::Disabled {
            if *r != LinuxResources::default() {
                tracing::warn!("cgroups are disabled: linux.resources is ignored");
            }
            return Ok(());
        }
        self.validate(r)?;
        // runc's order: cpuset, devices, memory, cpu, pids, blkio, hugetlb,
        // net_cls, net_prio, rdma; then the unified keys, which override.
        if let Some(c) = r.cpu() {
            match self.target("cpuset", "cpuset") {
                Some(Target::V1(d) | Target::V2(d)) => v1::cpuset::set(d, c)?,
                None => {}
            }
        }
        if let Some(devices) = r.devices() {
            self.set_devices(devices)?;
        }
        if let Some(m) = r.memory() {
            match self.target("memory", "memory") {
                Some(Target::V1(d)) => v1::memory::set(d, m, mode)?,
                Some(Target::V2(d)) => v2::memory::set(d, m, mode)?,
                None => {}
            }
        }
        if let Some(c) = r.cpu() {
            match self.target("cpu", "cpu") {
                Some(Target::V1(d)) => v1::cpu::set(d, c)?,
                Some(Target::V2(d)) => v2::cpu::set(d, c, mode)?,
                None => {}
            }
        }
        if let Some(p) = r.pids() {
            if let Some(Target::V1(d) | Target::V2(d)) = self.target("pids", "pids") {
                pids::set(d, p)?;
            }
        }
        if let Some(b) = r.block_io() {
            match self.target("blkio", "io") {
                Some(Target::V1(d)) => v1::blkio::set(d, b)?,
                Some(Target::V2(d)) => v2::io::set(d, b)?,
                None => {}
            }
        }
        if let Some(limits) = r.hugepage_limits() {
            match self.target("hugetlb", "hugetlb") {
                Some(Target::V1(d)) => hugetlb::set(d, limits, false)?,
                Some(Target::V2(d)) => hugetlb::set(d, limits, true)?,
                None => {}
            }
        }
        if let Some(n) = r.network() {
            if let Some(Target::V1(d)) = self.target("net_cls", "") {
                v1::net::set_cls(d, n)?;
            }
            if let Some(Target::V1(d)) = self.target("net_prio", "") {
                v1::net::set_prio(d, n)?;
            }
        }
        if let Some(map) = r.rdma() {
            if let Some(Target::V1(d) | Target::V2(d)) = self.target("rdma", "rdma") {
                rdma::set(d, map)?;
            }
        }
        if let (Some(unified), Some(u)) = (r.unified(), &self.unified) {
            v2::unified::set(&u.dir, unified, &u.controllers)?;
        }
        Ok(())
    }

    fn set_devices(&self, devices: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        let set = DeviceRuleSet::from_rules(&parse_rules(devices)?)?;
        let result = match self.target("devices", "devices") {
            Some(Target::V1(d)) => v1::devices::set(d, &set),
            Some(Target::V2(d)) => {
                let program = crate::bpf::DeviceProgram::from_rules(&set);
                self.loader
                    .install(d, &program)
                    .map_err(|source| Error::DeviceFilter {
                        path: d.to_path_buf(),
                        source,
                    })
            }
            None => Ok(()),
        };
        match result {
            // Device rules are not expected to work rootless (runc ignores them).
            Err(e) if self.rootless => {
                tracing::debug!(error = %e, "rootless: device rules not applied");
                Ok(())
            }
            other => other,
        }
    }
}

/// `<number><KB|MB|GB|TB>`, e.g. `2MB`.
fn valid_page_size(s: &str) -> bool {
    let Some(num) = ["KB", "MB", "GB", "TB"]
        .iter()
        .find_map(|unit| s.strip_suffix(unit))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::valid_page_size;

    #[test]
    fn page_sizes() {
        assert!(valid_page_size("2MB"));
        assert!(valid_page_size("64KB"));
        assert!(!valid_page_size("2M"));
        assert!(!valid_page_size("MB"));
        assert!(!valid_page_size("1.5GB"));
    }
}

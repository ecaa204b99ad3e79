//! `ps` rows and `inspect` documents (docker's field names).

use serde_json::{json, Value};

use crate::engine::Engine;
use crate::error::Result;
use crate::ids;
use crate::record::{Container, RootfsSource, Status};

/// "5 seconds", "About a minute", "3 hours"... as docker words it.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

fn ago(t: Option<&str>) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(t?).ok()?;
    Some(
        std::time::SystemTime::now()
            .duration_since(t)
            .unwrap_or_default()
            .as_secs(),
    )
}

/// One `ps` line.
#[derive(Debug, Clone)]
pub struct PsRow {
    /// The record.
    pub container: Container,
    /// Observed status.
    pub status: Status,
    /// Last exit code.
    pub exit_code: Option<i32>,
    /// Docker's STATUS column.
    pub status_text: String,
}

impl PsRow {
    /// docker's PORTS column (`127.0.0.1:8080->80/tcp, ...`).
    pub fn ports(&self) -> String {
        self.container
            .settings
            .net
            .ports
            .iter()
            .map(|p| {
                let ip = p.host_ip.map_or("0.0.0.0".to_string(), |a| a.to_string());
                format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// podman's `ps --format json` object.
    pub fn to_json(&self) -> Value {
        let c = &self.container;
        json!({
            "Id": c.id,
            "Names": [c.name],
            "Image": c.image,
            "ImageID": c.image_id,
            "Command": c.command,
            "Created": c.created,
            "CreatedAt": c.created,
            "State": self.status.to_string(),
            "Status": self.status_text,
            "ExitCode": self.exit_code.unwrap_or(0),
            "Exited": self.status == Status::Exited,
            "Pid": if self.status == Status::Running { c.state.pid } else { 0 },
            "StartedAt": c.state.started_at,
            "AutoRemove": c.settings.rm,
            "Labels": c.settings.labels,
            "Runtime": c.settings.runtime,
        })
    }

    /// The COMMAND column.
    pub fn command(&self) -> String {
        let s = self.container.command.join(" ");
        if s.chars().count() > 20 {
            format!("\"{}…\"", s.chars().take(19).collect::<String>())
        } else {
            format!("\"{s}\"")
        }
    }

    /// The CREATED column.
    pub fn created(&self) -> String {
        ago(Some(&self.container.created))
            .map_or_else(String::new, |s| format!("{} ago", human_duration(s)))
    }
}

impl Engine {
    /// `ps`: containers (running ones only unless `all`), newest first.
    pub fn ps(&self, all: bool) -> Result<Vec<PsRow>> {
        let mut rows: Vec<PsRow> = self
            .containers()?
            .into_iter()
            .map(|c| {
                let (status, exit_code) = c.observe(&self.paths);
                let status_text = match status {
                    Status::Running => format!(
                        "Up {}",
                        human_duration(ago(c.state.started_at.as_deref()).unwrap_or(0))
                    ),
                    Status::Exited => {
                        let when = c
                            .state
                            .finished_at
                            .as_deref()
                            .and_then(|t| ago(Some(t)))
                            .or_else(|| {
                                crate::record::read_exit_file(&self.paths.exit_file(&c.id))
                                    .and_then(|e| ago(Some(&e.exited_at)))
                            });
                        match when {
                            Some(s) => format!(
                                "Exited ({}) {} ago",
                                exit_code.unwrap_or(-1),
                                human_duration(s)
                            ),
                            None => format!("Exited ({})", exit_code.unwrap_or(-1)),
                        }
                    }
                    Status::Created => "Created".into(),
                    Status::Removing => "Removing".into(),
                };
                PsRow {
                    container: c,
                    status,
                    exit_code,
                    status_text,
                }
            })
            .filter(|r| all || r.status == Status::Running)
            .collect();
        rows.sort_by(|a, b| b.container.created.cmp(&a.container.created));
        Ok(rows)
    }

    /// `inspect`: docker's document for a container.
    pub fn inspect(&self, needle: &str) -> Result<Value> {
        let c = self.lookup(needle)?;
        let (status, exit_code) = c.observe(&self.paths);
        let running = status == Status::Running;
        let finished = c.state.finished_at.clone().or_else(|| {
            (status == Status::Exited)
                .then(|| {
                    crate::record::read_exit_file(&self.paths.exit_file(&c.id)).map(|e| e.exited_at)
                })
                .flatten()
        });
        let driver = match &c.rootfs {
            RootfsSource::Snapshot { snapshotter, .. } => snapshotter.clone(),
            RootfsSource::Overlay { .. } => "overlay".into(),
            RootfsSource::Dir { .. } => "rootfs".into(),
        };
        let (path, args) = c
            .command
            .split_first()
            .map_or((String::new(), Vec::new()), |(p, a)| {
                (p.clone(), a.to_vec())
            });
        Ok(json!({
            "Id": c.id,
            "Created": c.created,
            "Path": path,
            "Args": args,
            "State": {
                "Status": status.to_string(),
                "Running": running,
                "Paused": false,
                "Restarting": false,
                "OOMKilled": false,
                "Dead": false,
                "Pid": if running { c.state.pid } else { 0 },
                "MonitorPid": if running { c.state.monitor_pid } else { 0 },
                "ExitCode": exit_code.unwrap_or(0),
                "StartedAt": c.state.started_at,
                "FinishedAt": finished,
            },
            "Image": c.image_id,
            "ImageName": c.image,
            "Rootfs": self.rootfs_path(&c),
            "ResolvConfPath": self.paths.container_dir(&c.id).join("resolv.conf"),
            "HostnamePath": self.paths.container_dir(&c.id).join("hostname"),
            "HostsPath": self.paths.container_dir(&c.id).join("hosts"),
            "LogPath": self.paths.log_file(&c.id),
            "Name": c.name,
            "RestartCount": c.state.start_count.saturating_sub(1),
            "Driver": driver,
            "Mounts": c.settings.mounts,
            "NetworkSettings": network_json(&c),
            "Config": {
                "Hostname": c.settings.hostname,
                "User": c.settings.user,
                "Env": c.settings.env,
                "Cmd": c.command,
                "Entrypoint": c.settings.entrypoint,
                "WorkingDir": c.settings.working_dir,
                "Tty": c.settings.tty,
                "OpenStdin": c.settings.interactive,
                "StopSignal": c.settings.stop_signal,
                "StopTimeout": c.settings.stop_timeout,
                "Labels": c.settings.labels,
                "Image": c.image,
            },
            "HostConfig": {
                "Runtime": c.settings.runtime,
                "AutoRemove": c.settings.rm,
                "LogConfig": {"Type": c.settings.log_driver, "Path": self.paths.log_file(&c.id)},
                "NetworkMode": c.settings.namespaces.get("network").cloned().unwrap_or_else(|| {
                    let m = &c.settings.net.mode;
                    if m.is_empty() { "none".into() } else { m.clone() }
                }),
                "PortBindings": ports_json(&c.settings.net.ports),
                "PidMode": c.settings.namespaces.get("pid").cloned().unwrap_or_default(),
                "IpcMode": c.settings.namespaces.get("ipc").cloned().unwrap_or_default(),
                "UTSMode": c.settings.namespaces.get("uts").cloned().unwrap_or_default(),
                "Resources": c.settings.resources,
                "Privileged": c.settings.privileged,
                "ReadonlyRootfs": c.settings.read_only,
                "Init": c.settings.init,
                "Rootless": c.settings.rootless,
            },
            "ShortId": ids::short(&c.id),
        }))
    }
}

fn ports_json(ports: &[liana_network::PortMapping]) -> Value {
    let mut m = serde_json::Map::new();
    for p in ports {
        let e = m
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.map(|x| x.to_string()).unwrap_or_default(),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    Value::Object(m)
}

fn network_json(c: &crate::record::Container) -> Value {
    let n = &c.settings.net;
    let mut nets = serde_json::Map::new();
    if let (Some(name), Some(ip)) = (&n.network, n.ip) {
        nets.insert(
            name.clone(),
            json!({"IPAddress": ip.to_string(), "MacAddress": n.mac, "Aliases": n.aliases}),
        );
    }
    json!({
        "IPAddress": n.ip.map(|x| x.to_string()).unwrap_or_default(),
        "MacAddress": n.mac.clone().unwrap_or_default(),
        "Ports": ports_json(&n.ports),
        "Networks": nets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}

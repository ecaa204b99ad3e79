//! Lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks").
//!
//! Each hook gets the container state as JSON on stdin, its own args and env (the
//! runtime's environment when `env` is absent, as runc and crun do), and is killed when
//! it runs past its timeout. A failing hook's exit status and output are in the error.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;
use serde::Serialize;

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("{kind} hook {path}: start")]
    Spawn {
        /// Hook kind.
        kind: &'static str,
        /// Hook path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The hook exited unsuccessfully.
    #[error("{kind} hook {path}: {status}{}", output_suffix(.output))]
    Failed {
        /// Hook kind.
        kind: &'static str,
        /// Hook path.
        path: PathBuf,
        /// Exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {path}: timed out after {timeout} s")]
    Timeout {
        /// Hook kind.
        kind: &'static str,
        /// Hook path.
        path: PathBuf,
        /// Timeout in seconds.
        timeout: i64,
    },
}

fn output_suffix(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!(", output: {}", output.trim())
    }
}

/// The state handed to hooks (and printed by `state`): runtime-spec's state schema.
#[derive(Debug, Clone, Serialize)]
pub struct HookState<'a> {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    /// Container id.
    pub id: &'a str,
    /// Lifecycle status.
    pub status: &'a str,
    /// Init pid (host view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Bundle path.
    pub bundle: &'a std::path::Path,
    /// Annotations.
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: &'a std::collections::HashMap<String, String>,
}

/// Runs `hooks` in order; stops at the first failure.
pub fn run(kind: &'static str, hooks: &[Hook], state: &HookState<'_>) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).expect("state serializes");
    for h in hooks {
        run_one(kind, h, &json)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let mut cmd = Command::new(&path);
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    // Drain output on a thread so a chatty hook cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut buf = String::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_string(&mut buf);
        }
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut buf);
        }
        buf
    });
    let status = match hook.timeout() {
        Some(t) if t > 0 => {
            let deadline = Instant::now() + Duration::from_secs(t as u64);
            loop {
                if let Some(s) = child.try_wait().map_err(|source| HookError::Spawn {
                    kind,
                    path: path.clone(),
                    source,
                })? {
                    break s;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HookError::Timeout {
                        kind,
                        path,
                        timeout: t,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        _ => child.wait().map_err(|source| HookError::Spawn {
            kind,
            path: path.clone(),
            source,
        })?,
    };
    let output = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            kind,
            path,
            status,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    fn state() -> (HashMap<String, String>, std::path::PathBuf) {
        (HashMap::new(), "/bundle".into())
    }

    #[test]
    fn state_on_stdin_and_env() {
        let (ann, bundle) = state();
        let st = HookState {
            oci_version: "1.2.0",
            id: "abc",
            status: "creating",
            pid: Some(7),
            bundle: &bundle,
            annotations: &ann,
        };
        let ok = hook(serde_json::json!({"path":"/bin/sh","args":["sh","-c",
            "grep -q '\"id\":\"abc\"' && test \"$FOO\" = bar"],"env":["FOO=bar"]}));
        run("prestart", &[ok], &st).unwrap();
        let bad =
            hook(serde_json::json!({"path":"/bin/sh","args":["sh","-c","echo nope; exit 3"]}));
        let e = run("prestart", &[bad], &st).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("nope"),
            "{msg}"
        );
    }

    #[test]
    fn timeout_kills() {
        let (ann, bundle) = state();
        let st = HookState {
            oci_version: "1.2.0",
            id: "x",
            status: "creating",
            pid: None,
            bundle: &bundle,
            annotations: &ann,
        };
        let slow = hook(serde_json::json!({"path":"/bin/sleep","args":["sleep","10"],"timeout":1}));
        let t = Instant::now();
        let e = run("poststart", &[slow], &st).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_binary() {
        let (ann, bundle) = state();
        let st = HookState {
            oci_version: "1.2.0",
            id: "x",
            status: "creating",
            pid: None,
            bundle: &bundle,
            annotations: &ann,
        };
        let h = hook(serde_json::json!({"path":"/nonexistent/hook"}));
        assert!(matches!(
            run("prestart", &[h], &st),
            Err(HookError::Spawn { .. })
        ));
    }
}

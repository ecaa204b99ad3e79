//! Logging set-up: runc's `--log FILE`, `--log-format text|json` and `--debug`.
//!
//! JSON lines carry `level`, `msg` and `time`, the keys containerd and podman read back
//! from a runtime's log file.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use liana_oci_cli::LogFormat;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

struct LineLayer {
    out: Mutex<Box<dyn Write + Send>>,
    json: bool,
    max: Level,
}

#[derive(Default)]
struct Msg {
    msg: String,
    extra: String,
}

impl Visit for Msg {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut m = Msg::default();
        event.record(&mut m);
        let level_s = level.as_str().to_ascii_lowercase();
        let line = if self.json {
            let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
            let v = serde_json::json!({"level": level_s, "msg": format!("{}{}", m.msg, m.extra), "time": time});
            format!("{v}\n")
        } else {
            format!("liana-runtime: {level_s}: {}{}\n", m.msg, m.extra)
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// Installs the global subscriber. Log file trouble falls back to stderr.
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) {
    let out: Box<dyn Write + Send> = match log {
        Some(p) => match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("liana-runtime: cannot open log file {}: {e}", p.display());
                Box::new(std::io::stderr())
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let layer = LineLayer {
        out: Mutex::new(out),
        json: format == LogFormat::Json,
        max: if debug { Level::DEBUG } else { Level::WARN },
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

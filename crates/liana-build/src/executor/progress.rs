//! Progress output in the manner of BuildKit's plain progress: `#N [stage i/n] TEXT`,
//! the step's own output as `#N 0.123 line`, then `#N DONE 0.4s` or `#N CACHED`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where progress goes.
pub struct Progress {
    out: Mutex<Box<dyn Write + Send>>,
    quiet: bool,
    /// When each running step began (stages may run at the same time).
    start: Mutex<std::collections::HashMap<usize, Instant>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl Progress {
    /// Progress written to `out` (nothing when `quiet`).
    pub fn new(out: Box<dyn Write + Send>, quiet: bool) -> Self {
        Progress {
            out: Mutex::new(out),
            quiet,
            start: Mutex::new(Default::default()),
        }
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    }

    /// A step begins.
    pub fn begin(&self, n: usize, text: &str) {
        self.start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n, Instant::now());
        self.line(&format!("#{n} {text}"));
    }

    /// A line of the step's output.
    pub fn output(&self, n: usize, line: &str) {
        let t = self
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&n)
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        self.line(&format!("#{n} {t:.3} {line}"));
    }

    /// A step ended.
    pub fn done(&self, n: usize, took: Duration, cached: bool) {
        self.start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n);
        if cached {
            self.line(&format!("#{n} CACHED"));
        } else {
            self.line(&format!("#{n} DONE {:.1}s", took.as_secs_f64()));
        }
    }

    /// A free-form message.
    pub fn message(&self, n: usize, msg: &str) {
        self.line(&format!("#{n} {msg}"));
    }
}

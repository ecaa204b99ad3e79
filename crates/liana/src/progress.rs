//! Pull and push progress: per-blob bars on a terminal (resolved reference, each layer
//! with bytes and speed, a total, elapsed time), plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use liana_images::digest::{hex_part, Digest};
use liana_images::pull::{Event, LayerState, Progress};
use liana_images::push::PushProgress;
use liana_images::remote::PushedBlob;

fn short(d: &Digest) -> String {
    hex_part(d).chars().take(12).collect()
}

/// Pull progress output on stderr.
pub struct PullBars {
    quiet: bool,
    tty: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    total: ProgressBar,
    start: Instant,
}

impl PullBars {
    pub fn new(quiet: bool) -> Self {
        let tty = !quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("total:   {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  elapsed {elapsed_precise}")
                .expect("valid template"),
        );
        PullBars {
            quiet,
            tty,
            multi,
            bars: Mutex::new(HashMap::new()),
            total,
            start: Instant::now(),
        }
    }

    pub fn finish(&self, ok: bool) {
        if self.tty {
            self.total.finish();
        }
        if ok && !self.quiet && !self.tty {
            eprintln!(
                "Pull finished in {:.2}s",
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    fn layer_style() -> ProgressStyle {
        ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}")
            .expect("valid template")
            .progress_chars("=> ")
    }
}

impl Progress for PullBars {
    fn event(&self, e: &Event) {
        if self.quiet {
            return;
        }
        match e {
            Event::Resolved { reference, digest } => {
                let line = format!("Resolved {reference} to {digest}");
                if self.tty {
                    let _ = self.multi.println(line);
                } else {
                    eprintln!("{line}");
                }
            }
            Event::Layer { digest, size } => {
                if self.tty {
                    let b = self
                        .multi
                        .insert_before(&self.total, ProgressBar::new(*size));
                    b.set_style(Self::layer_style());
                    b.set_prefix(short(digest));
                    self.bars.lock().expect("lock").insert(digest.clone(), b);
                    self.total.inc_length(*size);
                } else {
                    eprintln!("Copying blob {} ({} bytes)", short(digest), size);
                }
            }
            Event::Bytes { digest, done } => {
                if let Some(b) = self.bars.lock().expect("lock").get(digest) {
                    let delta = done.saturating_sub(b.position());
                    b.set_position(*done);
                    self.total.inc(delta);
                }
            }
            Event::LayerDone { digest, state } => {
                let what = match state {
                    LayerState::Downloaded => "done",
                    LayerState::FromStore => "unpacked from store",
                    LayerState::Exists => "already exists",
                };
                if let Some(b) = self.bars.lock().expect("lock").get(digest) {
                    let rest = b.length().unwrap_or(0).saturating_sub(b.position());
                    self.total.inc(rest);
                    b.set_position(b.length().unwrap_or(0));
                    b.finish_with_message(what);
                } else if !self.tty {
                    eprintln!("Blob {} {what}", short(digest));
                }
            }
            Event::Done { id } => {
                if !self.tty {
                    eprintln!("Writing image {}", short(id));
                }
            }
        }
    }
}

/// Push progress: one line per blob.
pub struct PushLines {
    pub quiet: bool,
}

impl PushProgress for PushLines {
    fn blob(&self, desc: &oci_spec_descriptor::Descriptor, how: PushedBlob) {
        if self.quiet {
            return;
        }
        let what = match how {
            PushedBlob::Exists => "already exists",
            PushedBlob::Mounted => "mounted",
            PushedBlob::Uploaded => "uploaded",
        };
        eprintln!("Copying blob {} {what}", short(desc.digest()));
    }
}

mod oci_spec_descriptor {
    pub use liana_images::remote::Descriptor;
}

//! Running a plan: each stage from its base (image, stage or scratch) through its
//! instructions. Config instructions change the stage's image config; RUN, COPY and ADD
//! each run in an active snapshot over the stage's layers ([`step`]), and the snapshot's
//! changes become a layer, committed under its chain ID (so the built image runs with
//! `liana run` without any unpacking). Every layer step first looks in the [`cache`].
//!
//! [`cache`]: crate::cache

mod commit;
mod copy;
mod error;
mod lease;
mod progress;
mod run;
mod squash;
mod state;
mod step;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use liana_engine::Engine;
use liana_images::metadata::ImageRecord;

pub use commit::tag_name;
pub use error::BuildError;
pub use progress::Progress;
use state::StageState;

use crate::cache::Cache;
use crate::context::Context;
use crate::layer::Compression;
use crate::parser::words::Vars;
use crate::parser::{self, Kind};
use crate::planner::{self, Base};

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Names to give the image.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: Vars,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--compression`.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<u64>,
    /// `--secret id=,src=`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--ssh ID=SOCKET`: agent sockets.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--squash`: one layer on top of the base.
    pub squash: bool,
    /// How to pull base images.
    pub pull_options: liana_images::pull::PullOptions,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image ID (config digest).
    pub id: String,
    /// The image records written (one per tag).
    pub records: Vec<ImageRecord>,
}

/// Runs a build.
pub fn build(
    engine: &Engine,
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<BuildResult, BuildError> {
    for t in &opts.tags {
        commit::tag_name(t)?;
    }
    let df = parser::parse(&opts.dockerfile)?;
    let globals = planner::global_vars(&df, &opts.build_args)?;
    let plan = planner::plan(&df, opts.target.as_deref(), &globals)?;
    let ctx = Context::open(&opts.context, None)?;
    let store = engine.store()?;
    let build_id = liana_engine::ids::new_id()[..12].to_string();
    let b = Builder {
        engine,
        store,
        opts,
        df: &df,
        ctx,
        cache: Cache::new(&engine.paths().root),
        globals,
        lease: lease::BuildLease::new(&build_id),
        build_id,
        committed: Mutex::new(None),
        all_cached: AtomicBool::new(true),
        pull_lock: Mutex::new(BTreeMap::new()),
        layer_steps: plan
            .order
            .iter()
            .flat_map(|&i| &df.stages[i].instructions)
            .filter(|ins| matches!(ins.kind, Kind::Run(_) | Kind::Copy(_)))
            .count(),
        done: Mutex::new(BTreeMap::new()),
        step_no: AtomicUsize::new(0),
        progress,
        snap_seq: AtomicUsize::new(0),
    };
    let res = b.run_plan(&plan);
    let res = res.and_then(|mut st| {
        if opts.squash {
            b.squash(&mut st)?;
        }
        commit::write_image(&b, &st, opts)
    });
    b.lease.release(store);
    let _ = std::fs::remove_dir_all(
        engine
            .paths()
            .runroot
            .join("build")
            .join(format!("{}-downloads", b.build_id)),
    );
    res
}

/// A running build.
pub(crate) struct Builder<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) store: &'a liana_images::ImageStore,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) df: &'a parser::Dockerfile,
    pub(crate) ctx: Context,
    pub(crate) cache: Cache,
    pub(crate) globals: Vars,
    pub(crate) lease: lease::BuildLease,
    /// The committed snapshots (read once, on the first cache lookup).
    pub(crate) committed: Mutex<Option<std::collections::HashSet<String>>>,
    /// How many RUN, COPY and ADD steps the plan has.
    pub(crate) layer_steps: usize,
    /// Serializes base image pulls.
    pub(crate) pull_lock: Mutex<BTreeMap<String, ImageRecord>>,
    /// No layer step ran (all came from the cache).
    pub(crate) all_cached: AtomicBool,
    pub(crate) build_id: String,
    /// Finished stages.
    pub(crate) done: Mutex<BTreeMap<usize, StageState>>,
    pub(crate) step_no: AtomicUsize,
    pub(crate) progress: &'a Progress,
    pub(crate) snap_seq: AtomicUsize,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("build_id", &self.build_id)
            .finish_non_exhaustive()
    }
}

impl Builder<'_> {
    /// A finished stage's state.
    pub(crate) fn stage_done(&self, i: usize) -> Option<StageState> {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&i)
            .cloned()
    }

    /// Runs the planned stages, each as soon as the stages it needs are done: stages that
    /// do not depend on each other run at the same time, on threads of their own.
    fn run_plan(&self, plan: &planner::Plan) -> Result<StageState, BuildError> {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<StageState, BuildError>)>();
        let mut pending: Vec<usize> = plan.order.clone();
        let mut running = 0usize;
        let mut failure: Option<BuildError> = None;
        std::thread::scope(|s| loop {
            if failure.is_none() {
                let ready: Vec<usize> = {
                    let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
                    pending
                        .iter()
                        .copied()
                        .filter(|i| plan.deps[*i].iter().all(|d| done.contains_key(d)))
                        .collect()
                };
                for i in ready {
                    pending.retain(|x| *x != i);
                    running += 1;
                    let tx = tx.clone();
                    let base = &plan.bases[i];
                    s.spawn(move || {
                        let _ = tx.send((i, self.run_stage(i, base)));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let (i, res) = rx.recv().expect("a stage thread reports");
            running -= 1;
            match res {
                Ok(st) => {
                    self.done
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(i, st);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(self
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&plan.target)
            .expect("target ran"))
    }

    fn run_stage(&self, i: usize, base: &Base) -> Result<StageState, BuildError> {
        let stage = &self.df.stages[i];
        let total = stage.instructions.len() + 1;
        let label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let n = self.next_step();
        let t = Instant::now();
        let from_text = format!("FROM {}", stage.base);
        self.progress
            .begin(n, &format!("[{label} 1/{total}] {from_text}"));
        let mut st = match base {
            Base::Scratch => StageState::scratch(),
            Base::Stage(s) => self
                .stage_done(*s)
                .expect("planned before")
                .clone_for_child(),
            Base::Image(name) => {
                let rec = self
                    .base_image(name)
                    .map_err(|e| BuildError::at(stage.line, &from_text, e))?;
                StageState::from_image(self.store, &rec)
                    .map_err(|e| BuildError::at(stage.line, &from_text, e))?
            }
        };
        st.args = Vars::new();
        self.progress.done(n, t.elapsed(), false);
        let triggers = std::mem::take(&mut st.onbuild);
        let mut instrs: Vec<parser::Instruction> = Vec::new();
        for trig in &triggers {
            let l = parser::lines::Logical {
                line: stage.line,
                text: trig.clone(),
                heredocs: Vec::new(),
            };
            instrs.push(
                parser::instr::parse_instruction(&l, self.df.directives.escape)
                    .map_err(BuildError::Parse)?,
            );
        }
        instrs.extend(stage.instructions.iter().cloned());
        for (k, ins) in instrs.iter().enumerate() {
            let text = format!("[{label} {}/{}] {}", k + 2, instrs.len() + 1, ins.text);
            self.instruction(i, &mut st, ins, &text)
                .map_err(|e| BuildError::at(ins.line, &ins.text, e))?;
        }
        Ok(st)
    }

    pub(crate) fn next_step(&self) -> usize {
        self.step_no.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn base_image(&self, name: &str) -> Result<ImageRecord, BuildError> {
        // one pull at a time, once per name: stages running at once often share a base
        let mut seen = self.pull_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = seen.get(name) {
            return Ok(r.clone());
        }
        let store = self.store;
        let found = store.find(name).ok().filter(|r| r.snapshot.is_some());
        let rec = match found {
            Some(r) if !self.opts.pull => r,
            _ => liana_images::pull::pull(
                store,
                name,
                &self.opts.pull_options,
                &liana_images::pull::NoProgress,
            )?,
        };
        seen.insert(name.to_string(), rec.clone());
        Ok(rec)
    }

    /// Variables for substitution: the stage's ARGs then its ENV.
    pub(crate) fn vars(st: &StageState) -> Vars {
        let mut v = st.args.clone();
        for e in st.config.env().iter().flatten() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_string(), val.to_string());
            }
        }
        v
    }

    pub(crate) fn expand(&self, st: &StageState, w: &str) -> Result<String, BuildError> {
        crate::parser::words::expand(w, Some(&Self::vars(st)), self.df.directives.escape)
            .map_err(BuildError::Invalid)
    }

    fn instruction(
        &self,
        stage: usize,
        st: &mut StageState,
        ins: &parser::Instruction,
        text: &str,
    ) -> Result<(), BuildError> {
        match &ins.kind {
            Kind::Run(r) => return self.run_step(stage, st, ins, r, text),
            Kind::Copy(c) => return self.copy_step(stage, st, ins, c, text),
            Kind::From { .. } => unreachable!("stages split at FROM"),
            _ => {}
        }
        let n = self.next_step();
        let t = Instant::now();
        self.progress.begin(n, text);
        self.config_instruction(st, ins)?;
        st.key = crate::cache::key(&st.key, &[&ins.text, &st.config_fingerprint()]);
        self.progress.done(n, t.elapsed(), false);
        Ok(())
    }
}

//! A stage's state (its layers, snapshot, image config, args) and the instructions
//! that only change the config.

use std::collections::HashMap;

use liana_images::manifest::media;
use liana_images::metadata::ImageRecord;
use liana_images::ImageStore;
use oci_spec::image::{Config, Descriptor, History};
use serde_json::{Map, Value};

use super::{BuildError, Builder};
use crate::parser::{words, Cmd, Instruction, Kind};

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The image config's `config` part.
    pub config: Config,
    /// Docker extensions of `config` (`Healthcheck`, `OnBuild`, `Shell`).
    pub extra: Map<String, Value>,
    /// Architecture, OS, variant of the base.
    pub platform: (String, String, Option<String>),
    /// Layers, bottom first, and their diff IDs.
    pub layers: Vec<Descriptor>,
    /// Diff IDs.
    pub diff_ids: Vec<String>,
    /// Committed snapshot of the top layer.
    pub chain: Option<String>,
    /// History entries.
    pub history: Vec<History>,
    /// Cache key of the state.
    pub key: String,
    /// ARGs in scope with their values.
    pub args: words::Vars,
    /// SHELL.
    pub shell: Vec<String>,
    /// ONBUILD triggers of the base image, to run first.
    pub onbuild: Vec<String>,
    /// How many layers came from the base image (for --squash).
    pub base_layers: usize,
    /// A CMD was given in this Dockerfile (an ENTRYPOINT then keeps it).
    pub history_has_cmd: bool,
}

fn oci_layer_type(mt: &str) -> String {
    match mt {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.into(),
        media::DOCKER_LAYER => media::OCI_LAYER.into(),
        other => other.into(),
    }
}

impl StageState {
    pub(crate) fn scratch() -> Self {
        let p = liana_images::manifest::Platform::host();
        let mut config = Config::default();
        config.set_env(Some(vec![liana_engine::spec::process::DEFAULT_PATH.into()]));
        StageState {
            config,
            extra: Map::new(),
            platform: (p.architecture.to_string(), p.os.to_string(), p.variant),
            layers: Vec::new(),
            diff_ids: Vec::new(),
            chain: None,
            history: Vec::new(),
            key: crate::cache::key("scratch", &[]),
            args: words::Vars::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            onbuild: Vec::new(),
            base_layers: 0,
            history_has_cmd: false,
        }
    }

    pub(crate) fn from_image(store: &ImageStore, rec: &ImageRecord) -> Result<Self, BuildError> {
        let m = store.manifest(rec)?;
        let raw = store
            .content()
            .read_blob(rec.config.digest(), store.options().max_manifest_size)?;
        let full: Value = serde_json::from_slice(&raw)
            .map_err(|e| BuildError::Invalid(format!("config of {}: {e}", rec.name)))?;
        let c = store.config(rec)?;
        let mut st = StageState::scratch();
        st.config = c.config().clone().unwrap_or_default();
        if st.config.env().is_none() {
            st.config
                .set_env(Some(vec![liana_engine::spec::process::DEFAULT_PATH.into()]));
        }
        if let Some(cfg) = full.get("config").and_then(Value::as_object) {
            for k in ["Healthcheck", "Shell"] {
                if let Some(v) = cfg.get(k).filter(|v| !v.is_null()) {
                    st.extra.insert(k.into(), v.clone());
                }
            }
            if let Some(Value::Array(sh)) = cfg.get("Shell") {
                st.shell = sh
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
            }
            if let Some(Value::Array(ob)) = cfg.get("OnBuild") {
                st.onbuild = ob
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
            }
        }
        st.platform = (
            c.architecture().to_string(),
            c.os().to_string(),
            c.variant().clone(),
        );
        st.layers = m
            .layers()
            .iter()
            .map(|l| {
                let mut d = l.clone();
                d.set_media_type(oci_layer_type(l.media_type().as_ref()).as_str().into());
                d.set_annotations(None);
                d.set_urls(None);
                d
            })
            .collect();
        st.diff_ids = c.rootfs().diff_ids().clone();
        st.chain = rec.snapshot.clone();
        st.history = c.history().clone().unwrap_or_default();
        st.key = crate::cache::key("image", &[rec.config.digest().as_ref()]);
        st.base_layers = st.layers.len();
        Ok(st)
    }

    /// The state a stage `FROM` this one starts with.
    pub(crate) fn clone_for_child(&self) -> Self {
        let mut s = self.clone();
        s.base_layers = s.layers.len();
        s.key = crate::cache::key(&self.key, &["stage"]);
        s
    }

    /// What of the config later steps depend on, for cache keys.
    pub(crate) fn config_fingerprint(&self) -> String {
        let cfg = serde_json::to_string(&self.config).expect("config serializes");
        let args = serde_json::to_string(&self.args).expect("args serialize");
        format!("{cfg}\n{args}\n{}", self.shell.join("\0"))
    }

    /// The environment a RUN step sees: the config's, then ARGs not set by ENV.
    pub(crate) fn run_env(&self) -> Vec<String> {
        let mut env = self.config.env().clone().unwrap_or_default();
        for (k, v) in &self.args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|x| x.0) == Some(k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        env
    }

    pub(crate) fn push_history(&mut self, created_by: &str, empty: bool, epoch: Option<u64>) {
        let mut h = History::default();
        h.set_created_by(Some(created_by.to_string()));
        h.set_created(Some(super::commit::timestamp(epoch)));
        if empty {
            h.set_empty_layer(Some(true));
        }
        h.set_comment(Some("liana build".into()));
        self.history.push(h);
    }
}

fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    env.retain(|e| e.split_once('=').map(|x| x.0) != Some(k));
    env.push(format!("{k}={v}"));
}

fn cmd_vec(st: &StageState, c: &Cmd) -> Vec<String> {
    match c {
        Cmd::Exec(v) => v.clone(),
        Cmd::Shell(s) => st.shell.iter().cloned().chain([s.clone()]).collect(),
    }
}

impl Builder<'_> {
    /// ENV, ARG, WORKDIR, USER, EXPOSE, VOLUME, LABEL, ENTRYPOINT, CMD, SHELL,
    /// STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.
    pub(crate) fn config_instruction(
        &self,
        st: &mut StageState,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        let esc = self.df.directives.escape;
        let c = &mut st.config.clone();
        match &ins.kind {
            Kind::Env(pairs) => {
                let mut env = c.env().clone().unwrap_or_default();
                // every pair sees the environment before the instruction (docker)
                for (k, raw) in pairs {
                    let v = self.expand(st, raw)?;
                    set_env(&mut env, k, &v);
                }
                c.set_env(Some(env));
            }
            Kind::Arg(decls) => {
                for d in decls {
                    let v = match (self.opts.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(self.expand(st, def)?),
                        (None, None) => self.globals.get(&d.name).cloned(),
                    };
                    if let Some(v) = v {
                        st.args.insert(d.name.clone(), v);
                    } else {
                        st.args.remove(&d.name);
                    }
                }
            }
            Kind::Workdir(raw) => {
                let w = self.expand(st, raw)?;
                let base = c.working_dir().clone().unwrap_or_else(|| "/".into());
                let p = if w.starts_with('/') {
                    std::path::PathBuf::from(&w)
                } else {
                    std::path::Path::new(&base).join(&w)
                };
                let comps = liana_container::resolve::components(&p);
                let mut clean: Vec<String> = Vec::new();
                for x in comps {
                    if x == ".." {
                        clean.pop();
                    } else {
                        clean.push(x);
                    }
                }
                c.set_working_dir(Some(format!("/{}", clean.join("/"))));
            }
            Kind::User(raw) => {
                c.set_user(Some(self.expand(st, raw)?));
            }
            Kind::Expose(ws) => {
                let mut ports = c.exposed_ports().clone().unwrap_or_default();
                for w in ws {
                    let p = self.expand(st, w)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
                c.set_exposed_ports(Some(ports));
            }
            Kind::Volume(ws) => {
                let mut vols = c.volumes().clone().unwrap_or_default();
                for w in ws {
                    let v = self.expand(st, w)?;
                    if v.is_empty() {
                        return Err(BuildError::Invalid("VOLUME: empty path".into()));
                    }
                    if !vols.contains(&v) {
                        vols.push(v);
                    }
                }
                c.set_volumes(Some(vols));
            }
            Kind::Label(pairs) => {
                let mut labels: HashMap<String, String> = c.labels().clone().unwrap_or_default();
                for (k, raw) in pairs {
                    labels.insert(k.clone(), self.expand(st, raw)?);
                }
                c.set_labels(Some(labels));
            }
            Kind::Entrypoint(cmd) => {
                c.set_entrypoint(Some(cmd_vec(st, cmd)));
                // docker: ENTRYPOINT resets a CMD inherited from the base
                if !st.history_has_cmd {
                    c.set_cmd(None);
                }
            }
            Kind::Cmd(cmd) => {
                c.set_cmd(Some(cmd_vec(st, cmd)));
                st.history_has_cmd = true;
            }
            Kind::Shell(v) => {
                st.shell = v.clone();
                st.extra.insert("Shell".into(), serde_json::json!(v));
            }
            Kind::StopSignal(raw) => {
                let s = self.expand(st, raw)?;
                if liana_engine::create::parse_signal(&s).is_none() {
                    return Err(BuildError::Invalid(format!(
                        "STOPSIGNAL: unknown signal {s:?}"
                    )));
                }
                c.set_stop_signal(Some(s));
            }
            Kind::Healthcheck(None) => {
                st.extra
                    .insert("Healthcheck".into(), serde_json::json!({"Test": ["NONE"]}));
            }
            Kind::Healthcheck(Some(h)) => {
                let ns = |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
                let mut v = serde_json::json!({ "Test": h.test });
                let o = v.as_object_mut().expect("object");
                for (k, d) in [
                    ("Interval", ns(h.interval)),
                    ("Timeout", ns(h.timeout)),
                    ("StartPeriod", ns(h.start_period)),
                    ("StartInterval", ns(h.start_interval)),
                ] {
                    if let Some(d) = d {
                        o.insert(k.into(), d.into());
                    }
                }
                if let Some(r) = h.retries {
                    o.insert("Retries".into(), r.into());
                }
                st.extra.insert("Healthcheck".into(), v);
            }
            Kind::Onbuild(text, _) => {
                let arr = st
                    .extra
                    .entry("OnBuild")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = arr {
                    a.push(Value::String(text.clone()));
                }
            }
            Kind::Maintainer(m) => {
                st.extra.insert(
                    "__author".into(),
                    Value::String(words::expand(m, None, esc).unwrap_or_else(|_| m.clone())),
                );
            }
            Kind::Run(_) | Kind::Copy(_) | Kind::From { .. } => unreachable!("not config"),
        }
        st.config = c.clone();
        st.push_history(&ins.text, true, self.opts.source_date_epoch);
        Ok(())
    }
}

//! RUN: a container of the built-in runtime on the step's snapshot. Its spec comes from
//! the engine's spec generation (the stage's config as the image config, the command as
//! `--entrypoint "" CMD`), its stdout and stderr go to the progress output, and its
//! exit code decides the step.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use liana_engine::etc::EtcInput;
use liana_engine::network::attach::NsSpec;
use liana_engine::options::RunOptions;
use liana_engine::spec::{self, ResolvedMount, SpecInput};

use super::state::StageState;
use super::step::{exists_in, Active, Leftovers};
use super::{BuildError, Builder};
use crate::parser::{Cmd, Instruction, RunArgs};

/// How many of the last output lines a failure reports.
const TAIL: usize = 20;

fn is_cgroup2() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.f_type == 0x6367_7270)
}

/// The script of a shell-form RUN with heredocs.
fn script(cmd: &str, r: &RunArgs) -> String {
    if r.heredocs.is_empty() {
        return cmd.to_string();
    }
    let words: Vec<&str> = cmd.split_whitespace().collect();
    if words.len() == 1 && r.heredocs.len() == 1 && words[0].starts_with("<<") {
        // `RUN <<EOF`: the body is the script
        return r.heredocs[0].body.clone();
    }
    let mut s = format!("{cmd}\n");
    for h in &r.heredocs {
        s.push_str(&h.body);
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

impl Builder<'_> {
    pub(crate) fn run_step(
        &self,
        stage: usize,
        st: &mut StageState,
        ins: &Instruction,
        r: &RunArgs,
        text: &str,
    ) -> Result<(), BuildError> {
        let argv: Vec<String> = match &r.cmd {
            Cmd::Exec(v) => v.clone(),
            Cmd::Shell(s) => st.shell.iter().cloned().chain([script(s, r)]).collect(),
        };
        // what bind mounts show is an input of the step
        let mut mounts = format!("{:?}", r.mounts);
        for m in r.mounts.iter().filter(|m| m.kind == "bind") {
            let src = m
                .options
                .get("source")
                .or_else(|| m.options.get("src"))
                .cloned()
                .unwrap_or_else(|| ".".into());
            match m.options.get("from") {
                Some(f) => match crate::planner::stage_ref(self.df, f, stage) {
                    Some(i) => {
                        mounts.push_str(&self.stage_done(i).map(|s| s.key).unwrap_or_default())
                    }
                    None => mounts.push_str(self.base_image(f)?.config.digest().as_ref()),
                },
                None => {
                    let mut h = liana_images::digest::Digester::default();
                    for (p, rel) in self.ctx.sources(&src)? {
                        super::copy::hash_tree(&mut h, &p, &rel)
                            .map_err(BuildError::io("read", &p))?;
                    }
                    mounts.push_str(h.finish().as_ref());
                }
            }
        }
        let net = r.network.clone().unwrap_or_else(|| "none".into());
        let key = crate::cache::key(
            &st.key,
            &[
                "RUN",
                &serde_json::to_string(&argv).expect("strings serialize"),
                &mounts,
                &net,
                &st.run_env().join("\0"),
            ],
        );
        let history = ins.text.clone();
        self.layer_step(st, key, text, &history, |b, st, a, n| {
            b.run_container(stage, st, a, n, &argv, r, &net)
        })
    }

    fn run_mounts<'v>(
        &'v self,
        stage: usize,
        r: &RunArgs,
        o: &mut RunOptions,
        vols: &mut Vec<ResolvedMount>,
        views: &mut Vec<super::step::View<'v>>,
    ) -> Result<Vec<String>, BuildError> {
        let mut targets = Vec::new();
        let mut agents = 0;
        for m in &r.mounts {
            let target = match m.kind.as_str() {
                "ssh" => {
                    let id = m
                        .options
                        .get("id")
                        .cloned()
                        .unwrap_or_else(|| "default".into());
                    let t = m
                        .target()
                        .map(String::from)
                        .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{agents}"));
                    let given = self.opts.ssh.get(&id);
                    if !provided(m, given, &t, false, vols, || {
                        format!("ssh agent {id:?} is required but no --ssh {id} was given")
                    })? {
                        continue;
                    }
                    // The first agent is the process's SSH_AUTH_SOCK, as BuildKit sets it.
                    if agents == 0 {
                        o.env.push(format!("SSH_AUTH_SOCK={t}"));
                    }
                    agents += 1;
                    t
                }
                "secret" => {
                    let id = m.options.get("id").cloned().unwrap_or_default();
                    let t = m
                        .target()
                        .map(String::from)
                        .unwrap_or_else(|| format!("/run/secrets/{id}"));
                    let given = self.opts.secrets.get(&id);
                    if !provided(m, given, &t, true, vols, || {
                        format!("secret {id:?} is required but no --secret id={id} was given")
                    })? {
                        continue;
                    }
                    t
                }
                "cache" => {
                    let t = m.target().unwrap_or_default().to_string();
                    let id = m.options.get("id").cloned().unwrap_or_else(|| t.clone());
                    let name = liana_images::digest::sha256_of(id.as_bytes()).to_string();
                    let dir = self
                        .engine
                        .paths()
                        .root
                        .join("build-cache/mounts")
                        .join(name.trim_start_matches("sha256:"));
                    std::fs::create_dir_all(&dir)
                        .map_err(BuildError::io("create cache mount", &dir))?;
                    vols.push(ResolvedMount {
                        source: dir,
                        destination: t.clone(),
                        read_only: false,
                        options: Vec::new(),
                    });
                    t
                }
                "tmpfs" => {
                    let t = m.target().unwrap_or_default().to_string();
                    o.tmpfs.push(format!("{t}:exec"));
                    t
                }
                "bind" => {
                    let t = m.target().unwrap_or_default().to_string();
                    let src = m
                        .options
                        .get("source")
                        .or_else(|| m.options.get("src"))
                        .cloned()
                        .unwrap_or_else(|| ".".into());
                    let path = match m.options.get("from") {
                        None => self.ctx.sources(&src)?.remove(0).0,
                        Some(f) => {
                            let st = match crate::planner::stage_ref(self.df, f, stage) {
                                Some(i) => self.stage_done(i).ok_or_else(|| {
                                    BuildError::Invalid(format!("--mount from={f}: not built"))
                                })?,
                                None => super::state::StageState::from_image(
                                    self.store,
                                    &self.base_image(f)?,
                                )?,
                            };
                            let v = self.view(&st)?;
                            let root = liana_container::resolve::Root::open(&v.rootfs)
                                .map_err(BuildError::io("open", &v.rootfs))?;
                            let rel = root.resolve(Path::new(&src)).map_err(|_| {
                                BuildError::Invalid(format!(
                                    "--mount from={f},source={src}: no such file or directory"
                                ))
                            })?;
                            let p = v.rootfs.join(rel);
                            views.push(v);
                            p
                        }
                    };
                    vols.push(ResolvedMount {
                        source: path,
                        destination: t.clone(),
                        read_only: true,
                        options: Vec::new(),
                    });
                    t
                }
                other => {
                    return Err(BuildError::Invalid(format!(
                        "RUN --mount=type={other} is not supported"
                    )))
                }
            };
            if !target.starts_with('/') {
                return Err(BuildError::Invalid(format!(
                    "RUN --mount target {target:?} is not absolute"
                )));
            }
            targets.push(target);
        }
        Ok(targets)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_container(
        &self,
        stage: usize,
        st: &StageState,
        a: &Active<'_>,
        n: usize,
        argv: &[String],
        r: &RunArgs,
        net: &str,
    ) -> Result<Leftovers, BuildError> {
        let engine = self.engine;
        let rootless = engine.rootless();
        let id = a.key.clone();
        let bundle = a.dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(BuildError::io("create", &bundle))?;
        let host_network = net == "host";
        let hostname = "liana-build";
        liana_engine::etc::write_all(
            &bundle,
            &EtcInput {
                hostname,
                name: &id,
                id: &id,
                image: "",
                host_network,
                rootless,
                ip: None,
                extra_hosts: &[],
                dns: &[],
            },
        )
        .map_err(BuildError::io("write /etc files into", &bundle))?;
        let mut o = RunOptions {
            command: argv.to_vec(),
            entrypoint: Some(String::new()),
            network: Some(if host_network { "host" } else { "none" }.into()),
            ..Default::default()
        };
        let mut vols = Vec::new();
        let mut views = Vec::new();
        let targets = self.run_mounts(stage, r, &mut o, &mut vols, &mut views)?;
        // Mount points the runtime may create: not part of the layer.
        let mut candidates: Vec<String> = [
            "etc/hostname",
            "etc/hosts",
            "etc/resolv.conf",
            "run/.containerenv",
            "proc",
            "sys",
            "dev",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for t in &targets {
            let comps = liana_container::resolve::components(Path::new(t));
            for k in 1..=comps.len() {
                candidates.push(comps[..k].join("/"));
            }
        }
        let mut left: Vec<String> = candidates
            .into_iter()
            .filter(|c| !exists_in(&a.rootfs, c))
            .collect();
        for parent in ["etc", "run"] {
            if !exists_in(&a.rootfs, parent) {
                left.push(parent.into());
            }
        }
        left.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        left.dedup();
        let mut cfg = st.config.clone();
        cfg.set_env(Some(st.run_env()));
        let mappings = rootless.then(|| {
            liana_engine::rootless::mappings_for_caller(
                Path::new("/etc/subuid"),
                Path::new("/etc/subgid"),
            )
        });
        // RUN --network=host shares the host's namespace; anything else gets a private
        // one with loopback only (no bridge: a build step reaches nothing by default).
        let ns = if host_network {
            NsSpec::Host
        } else {
            NsSpec::Private
        };
        let input = SpecInput {
            id: &id,
            name: &id,
            rootfs: &a.rootfs,
            image: Some(&cfg),
            opts: &o,
            userdata: &bundle,
            hostname,
            volumes: &vols,
            rootless: mappings.as_ref(),
            user_namespace: rootless,
            init_path: None,
            cgroups_path: engine.cgroups_usable().then(|| format!("/liana/{id}")),
            pids_limit: engine.config().engine.pids_limit,
            cgroup2: is_cgroup2(),
            network: &ns,
        };
        let spec = spec::generate(&input).map_err(liana_engine::Error::from)?;
        let cfg_path = bundle.join("config.json");
        std::fs::write(
            &cfg_path,
            serde_json::to_vec(&spec).expect("spec serializes"),
        )
        .map_err(BuildError::io("write", &cfg_path))?;
        let (code, tail) = self.exec_container(&id, &bundle, n)?;
        drop(views);
        if code != 0 {
            return Err(BuildError::RunFailed {
                code,
                output: tail.into_iter().collect::<Vec<_>>().join("\n"),
            });
        }
        Ok(Leftovers(left, Default::default()))
    }

    /// Creates, starts and waits for the container; returns its exit code and the end of
    /// its output.
    fn exec_container(
        &self,
        id: &str,
        bundle: &Path,
        n: usize,
    ) -> Result<(i32, VecDeque<String>), BuildError> {
        let engine = self.engine;
        let rt = liana_container::Runtime {
            root: engine.paths().builtin_runtime_root(),
            rootless: engine.rootless(),
            cgroup_driver: if engine.cgroups_usable() {
                liana_cgroups::Driver::Cgroupfs
            } else {
                liana_cgroups::Driver::Disabled
            },
        };
        let null: OwnedFd = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| BuildError::io("open", "/dev/null")(e.into()))?;
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| BuildError::io("pipe", PathBuf::new())(e.into()))?;
        let req = liana_container::CreateRequest {
            id: id.into(),
            bundle: bundle.into(),
            stdio: Some([null.as_raw_fd(), wr.as_raw_fd(), wr.as_raw_fd()]),
            ..Default::default()
        };
        let created = rt.create(&req);
        drop(wr);
        let pid = match created {
            Ok(s) => s.pid,
            Err(e) => {
                let _ = rt.delete(id, true);
                return Err(BuildError::Runtime(e));
            }
        };
        let progress = self.progress;
        let reader = std::thread::scope(|s| {
            let h = s.spawn(move || {
                let mut tail = VecDeque::new();
                let f = std::fs::File::from(rd);
                for line in BufReader::new(f).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).into_owned();
                    progress.output(n, &line);
                    if tail.len() == TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                tail
            });
            let started = rt.start(id);
            let code = match &started {
                Ok(()) => wait(pid),
                Err(_) => {
                    let _ = rt.kill(id, "KILL", true);
                    wait(pid);
                    -1
                }
            };
            let _ = rt.delete(id, true);
            let tail = h.join().unwrap_or_default();
            started.map(|()| (code, tail))
        });
        reader.map_err(BuildError::Runtime)
    }
}

/// A secret or ssh mount: the file the build was given for it mounted at `target`
/// (whether it was); none given is an error (`missing`) when the mount is `required`.
fn provided(
    m: &crate::parser::MountSpec,
    given: Option<&PathBuf>,
    target: &str,
    read_only: bool,
    vols: &mut Vec<ResolvedMount>,
    missing: impl FnOnce() -> String,
) -> Result<bool, BuildError> {
    match given {
        Some(src) => {
            vols.push(ResolvedMount {
                source: src.clone(),
                destination: target.to_string(),
                read_only,
                options: Vec::new(),
            });
            Ok(true)
        }
        None if m.options.get("required").map(String::as_str) == Some("true") => {
            Err(BuildError::Invalid(missing()))
        }
        None => Ok(false),
    }
}

/// Waits for `pid`; its exit code (128+N for signal N).
fn wait(pid: i32) -> i32 {
    loop {
        let mut st = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else if libc::WIFSIGNALED(st) {
                128 + libc::WTERMSIG(st)
            } else {
                1
            };
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 1;
        }
    }
}

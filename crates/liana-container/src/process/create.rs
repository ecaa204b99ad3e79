//! Stage 1 of 3: the parent side of `create`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount};
use rustix::fs::{Mode, OFlags};

use super::setup::ProcessPlan;
use super::{bootstrap, chain, Setup};
use crate::cgroups::CgroupManager;
use crate::channel::{self, ChannelError, Msg};
use crate::config::{Config, ContainerId, NamespaceSet};
use crate::hooks::{self, HookError, HookState};
use crate::mounts::{self, IdRange, MountOptions};
use crate::namespaces::{self, NamespaceError};
use crate::seccomp::SeccompProgram;
use crate::state::{self, ContainerDir, Saved, StateError};
use crate::sys;
use crate::user_ns::{self, UserNsError};

/// Why `create` failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// State directory trouble (including "already exists").
    #[error(transparent)]
    State(#[from] StateError),
    /// A namespace could not be opened.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// The sync socket failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Id mappings could not be written.
    #[error(transparent)]
    UserNs(#[from] UserNsError),
    /// A prestart or createRuntime hook failed.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// Cgroup set-up failed.
    #[error(transparent)]
    Cgroup(#[from] liana_cgroups::Error),
    /// The seccomp agent did not take the listener.
    #[error(transparent)]
    SeccompAgent(#[from] liana_seccomp::listener::ListenerError),
    /// The console socket did not take the pty.
    #[error(transparent)]
    Console(#[from] crate::tty::ConsoleSocketError),
    /// The terminal options do not fit together.
    #[error("{0}")]
    Terminal(String),
    /// A set-up stage reported an error.
    #[error("{0}")]
    Stage(String),
    /// A set-up stage died without saying why.
    #[error("container init exited during set-up ({0})")]
    StageDied(String),
    /// A bind mount could not be prepared.
    #[error("mounts[{index}] ({destination}): {op}")]
    PrepareMount {
        /// Mount index.
        index: usize,
        /// Destination.
        destination: PathBuf,
        /// What failed.
        op: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Another step failed.
    #[error("{op}")]
    Sys {
        /// What failed.
        op: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn sys_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> CreateError {
    let op = op.into();
    move |source| CreateError::Sys { op, source }
}

/// What `create` needs.
#[derive(Debug)]
pub struct CreateOptions<'a> {
    /// Container id.
    pub id: ContainerId,
    /// State root.
    pub root: PathBuf,
    /// Loaded config.
    pub config: Config,
    /// --console-socket.
    pub console_socket: Option<PathBuf>,
    /// --pid-file.
    pub pid_file: Option<PathBuf>,
    /// --no-pivot.
    pub no_pivot: bool,
    /// --no-new-keyring.
    pub no_new_keyring: bool,
    /// --preserve-fds.
    pub preserve_fds: u32,
    /// `run` in the foreground without a console socket: keep the pty master.
    pub keep_console: bool,
    /// The runtime is rootless.
    pub rootless: bool,
    /// The container's cgroup (not created yet) and the resources to set on it.
    pub cgroup: Option<(CgroupManager, oci_spec::runtime::LinuxResources)>,
    /// Compiled seccomp program.
    pub seccomp: Option<&'a SeccompProgram>,
    /// stdin, stdout, stderr for the container process instead of the caller's.
    pub stdio: Option<[RawFd; 3]>,
}

/// A created container, its directory still locked.
#[derive(Debug)]
pub struct Created {
    /// The locked state directory.
    pub dir: ContainerDir,
    /// What was saved.
    pub saved: Saved,
    /// The pty master, when kept.
    pub console: Option<OwnedFd>,
}

/// Kills what was started and removes the state directory unless disarmed.
struct Cleanup {
    dir: Option<ContainerDir>,
    pids: Vec<i32>,
    cgroup: Option<CgroupManager>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: kill/waitpid on processes this command forked.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup after failed create: {}", chain(&e));
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                tracing::warn!("cleanup after failed create: {}", chain(&e));
            }
        }
    }
}

/// Creates the container: on success its init waits on the exec fifo.
pub fn create(mut opts: CreateOptions<'_>) -> Result<Created, CreateError> {
    let spec = &opts.config.spec;
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.keep_console {
        return Err(CreateError::Terminal(
            "process.terminal is true but the runtime will detach: use --console-socket to \
             receive the pty master"
                .into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(CreateError::Terminal(
            "--console-socket given but process.terminal is false".into(),
        ));
    }
    let ns = NamespaceSet::from_spec(spec);
    let ns_plan = namespaces::Plan::new(
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default(),
    )?;
    check_idmaps(
        spec.mounts().as_deref().unwrap_or_default(),
        &ns,
        opts.rootless,
    )?;

    let (manager, resources) = match opts.cgroup.take() {
        Some((m, r)) => (Some(m), Some(r)),
        None => (None, None),
    };
    if let (Some(m), Some(r)) = (&manager, &resources) {
        // Unsupported values fail here, before anything exists.
        m.validate(r)?;
    }
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir),
        pids: Vec::new(),
        cgroup: None,
    };
    let dir = cleanup.dir.as_ref().expect("set");
    dir.write_atomic(
        state::CONFIG_FILE,
        &serde_json::to_vec(spec).expect("spec serializes"),
    )?;
    let mut saved = Saved {
        version: state::FORMAT_VERSION,
        id: opts.id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: opts.config.bundle.clone(),
        rootfs: opts.config.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        external_descriptors: String::new(),
        cgroup: manager
            .as_ref()
            .map(|m| serde_json::to_value(m.state()).expect("cgroup state serializes"))
            .unwrap_or_default(),
        rootless: opts.rootless,
        extra_pids: Vec::new(),
    };
    dir.save(&saved)?;
    if let Some(mut m) = manager {
        // Saved above first, so `delete --force` finds the cgroup even if we die now.
        let r = m.create();
        cleanup.cgroup = Some(m);
        r?;
        if let (Some(m), Some(r)) = (&cleanup.cgroup, &resources) {
            m.set(r)?;
        }
    }
    let dir = cleanup.dir.as_ref().expect("set");

    let fifo_path = dir.file(state::FIFO_FILE);
    rustix::fs::mkfifoat(dir.fd(), state::FIFO_FILE, Mode::from_raw_mode(0o622))
        .map_err(|e| sys_err(format!("create exec fifo {}", fifo_path.display()))(e.into()))?;
    // mkfifo is subject to the umask: make it writable by the container's user.
    rustix::fs::chmodat(
        dir.fd(),
        state::FIFO_FILE,
        Mode::from_raw_mode(0o622),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|e| sys_err("chmod exec fifo")(e.into()))?;
    let fifo = rustix::fs::openat(
        dir.fd(),
        state::FIFO_FILE,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys_err("open exec fifo")(e.into()))?;

    let mut plan = ProcessPlan::from_spec(process, spec.annotations().as_ref());
    plan.preserve_fds = opts.preserve_fds;
    if let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
    {
        plan.preserve_fds += n;
        plan.set_env("LISTEN_FDS", &n.to_string());
        plan.listen_fds = true;
    }
    let (parent_end, child_end) = channel::pair()?;
    let own_fds: Vec<RawFd> = vec![fifo.as_raw_fd()];
    let setup = Setup {
        config: &opts.config,
        id: &opts.id,
        ns,
        ns_plan: &ns_plan,
        plan,
        fifo: Some(fifo.as_raw_fd()),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        last_cap: crate::capabilities::last_cap(),
        own_fds,
        close_after_fork: vec![dir.fd().as_raw_fd()],
        cgroup: cleanup.cgroup.as_ref(),
        seccomp: opts.seccomp,
        exec: false,
        stdio: opts.stdio,
    };

    let unified = match setup.cgroup.and_then(|m| m.unified_dir()) {
        Some(d) => rustix::fs::open(
            d,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok(),
        None => None,
    };
    // SAFETY: the runtime is single-threaded here; the child only runs the set-up
    // stages and ends with exec or _exit.
    let (pid, in_unified) = unsafe { super::fork_into(unified.as_ref().map(|f| f.as_fd())) }
        .map_err(sys_err("fork"))?;
    if pid == 0 {
        drop(parent_end);
        bootstrap::run(&setup, child_end, in_unified);
    }
    drop(child_end);
    cleanup.pids.push(pid);
    let bootstrap_pid = pid;

    let mut init_pid = 0;
    let mut console = None;
    loop {
        let (msg, mut fds) = match parent_end.recv() {
            Ok(m) => m,
            Err(ChannelError::Closed) => {
                return Err(CreateError::StageDied(reap_status(bootstrap_pid, init_pid)));
            }
            Err(e) => return Err(e.into()),
        };
        match msg {
            Msg::UserNsCreated | Msg::UserNsCreatedIn(_) => {
                let pid = match msg {
                    Msg::UserNsCreatedIn(p) => p,
                    _ => bootstrap_pid,
                };
                let linux = spec.linux().as_ref().expect("user namespace implies linux");
                user_ns::write_mappings(
                    pid,
                    linux.uid_mappings().as_deref().unwrap_or_default(),
                    linux.gid_mappings().as_deref().unwrap_or_default(),
                )?;
                let (mounts, trees) = if opts.rootless {
                    (Vec::new(), Vec::new())
                } else {
                    prepare_trees(&opts.config, pid)?
                };
                let raw: Vec<RawFd> = trees.iter().map(|t| t.as_raw_fd()).collect();
                parent_end.send_fds(&Msg::MappingsDone { mounts }, &raw)?;
            }
            Msg::InitPid(p) => {
                init_pid = p;
                cleanup.pids.insert(0, p);
                if p != bootstrap_pid {
                    // The bootstrap exits right after reporting.
                    let mut status = 0;
                    // SAFETY: waitpid on our own child.
                    unsafe { libc::waitpid(bootstrap_pid, &mut status, 0) };
                    cleanup.pids.retain(|&x| x != bootstrap_pid);
                }
            }
            Msg::MountsDone => {
                let ann = saved.annotations.clone();
                let st = HookState {
                    oci_version: spec.version(),
                    id: opts.id.as_str(),
                    status: "creating",
                    pid: Some(init_pid),
                    bundle: &opts.config.bundle,
                    annotations: &ann,
                };
                let h = spec.hooks().as_ref();
                let prestart = h.and_then(|h| h.prestart().clone()).unwrap_or_default();
                let runtime = h
                    .and_then(|h| h.create_runtime().clone())
                    .unwrap_or_default();
                let r = hooks::run("prestart", &prestart, &st)
                    .and_then(|()| hooks::run("createRuntime", &runtime, &st));
                match r {
                    Ok(()) => parent_end.send(&Msg::Ack)?,
                    Err(e) => return Err(e.into()),
                }
            }
            Msg::Console => {
                let Some(master) = fds.pop() else {
                    return Err(CreateError::Stage("console message without a pty".into()));
                };
                match &opts.console_socket {
                    Some(path) => crate::tty::send_to_socket(path, master.as_fd())?,
                    None => console = Some(master),
                }
            }
            Msg::SeccompFd => {
                let Some(fd) = fds.pop() else {
                    return Err(CreateError::Stage(
                        "seccomp message without a listener".into(),
                    ));
                };
                send_to_agent(spec, &opts.id, &opts.config.bundle, init_pid, fd.as_fd())?;
                parent_end.send(&Msg::Ack)?;
            }
            Msg::Ready => break,
            Msg::Error(m) => return Err(CreateError::Stage(m)),
            other => {
                return Err(ChannelError::Unexpected {
                    expected: "a set-up report",
                    got: other,
                }
                .into())
            }
        }
    }
    let start = state::proc_stat(init_pid)
        .map(|s| s.start_time)
        .unwrap_or(0);
    saved.pid = init_pid;
    saved.pid_start = start;
    saved.external_descriptors = state::external_descriptors(init_pid);
    let dir = cleanup.dir.as_ref().expect("set");
    dir.save(&saved)?;
    if let Some(p) = &opts.pid_file {
        state::write_pid_file(p, init_pid)?;
    }
    cleanup.pids.clear();
    cleanup.cgroup = None;
    let dir = cleanup.dir.take().expect("set");
    drop(fifo);
    Ok(Created {
        dir,
        saved,
        console,
    })
}

/// Hands the seccomp listener to the agent at linux.seccomp.listenerPath.
pub(crate) fn send_to_agent(
    spec: &oci_spec::runtime::Spec,
    id: &ContainerId,
    bundle: &std::path::Path,
    pid: i32,
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<(), CreateError> {
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(path) = seccomp.and_then(|s| s.listener_path().clone()) else {
        return Ok(());
    };
    let mut st = oci_spec::runtime::State::default();
    st.set_version(crate::seccomp::AGENT_STATE_VERSION.to_owned());
    st.set_id(id.to_string());
    st.set_status(oci_spec::runtime::ContainerState::Creating);
    st.set_pid(Some(pid));
    st.set_bundle(bundle.to_owned());
    st.set_annotations(spec.annotations().clone());
    let metadata = seccomp.and_then(|s| s.listener_metadata().clone());
    let ps = liana_seccomp::listener::process_state(&st, pid, metadata.as_deref());
    let payload = liana_seccomp::listener::encode(&ps)?;
    liana_seccomp::listener::send(&path, fd, &payload)?;
    Ok(())
}

fn reap_status(bootstrap: i32, init: i32) -> String {
    let mut out = Vec::new();
    for pid in [bootstrap, init] {
        if pid <= 0 {
            continue;
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFSIGNALED(status) {
                out.push(format!("killed by signal {}", libc::WTERMSIG(status)));
            } else {
                out.push(format!("exit status {}", libc::WEXITSTATUS(status)));
            }
        }
    }
    if out.is_empty() {
        "no status".into()
    } else {
        out.join(", ")
    }
}

/// Idmapped mounts need a privileged runtime and a user namespace.
fn check_idmaps(mounts: &[Mount], ns: &NamespaceSet, rootless: bool) -> Result<(), CreateError> {
    for (i, m) in mounts.iter().enumerate() {
        if idmap_of(m).is_none() {
            continue;
        }
        let why = if rootless {
            "idmapped mounts need a privileged runtime"
        } else if !ns.is_new(LinuxNamespaceType::User) {
            "idmapped mounts need a new user namespace"
        } else {
            continue;
        };
        return Err(CreateError::PrepareMount {
            index: i,
            destination: m.destination().clone(),
            op: why.into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    Ok(())
}

fn idmap_of(m: &Mount) -> Option<mounts::Idmap> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default()).ok()?;
    let mut idmap = opts.idmap;
    let conv = |maps: &Option<Vec<LinuxIdMapping>>| -> Vec<IdRange> {
        maps.iter()
            .flatten()
            .map(|r| IdRange {
                inner: r.host_id(),
                outer: r.container_id(),
                size: r.size(),
                outer_in_container: false,
            })
            .collect()
    };
    let uids = conv(m.uid_mappings());
    let gids = conv(m.gid_mappings());
    if !uids.is_empty() || !gids.is_empty() {
        let i = idmap.get_or_insert_with(Default::default);
        i.uids = uids;
        i.gids = gids;
    }
    idmap
}

fn to_host(x: u32, maps: &[LinuxIdMapping]) -> u32 {
    maps.iter()
        .find(|m| x >= m.container_id() && x - m.container_id() < m.size())
        .map_or(x, |m| m.host_id() + (x - m.container_id()))
}

fn lines(ranges: &[IdRange], container: &[LinuxIdMapping]) -> String {
    ranges
        .iter()
        .map(|r| {
            let outer = if r.outer_in_container {
                to_host(r.outer, container)
            } else {
                r.outer
            };
            format!("{} {} {}\n", r.inner, outer, r.size)
        })
        .collect()
}

/// Opens every bind mount source as a detached tree, in the host's context (before the
/// container's user namespace takes away access), idmapped where asked.
fn prepare_trees(
    config: &Config,
    in_userns: i32,
) -> Result<(Vec<usize>, Vec<OwnedFd>), CreateError> {
    let spec = &config.spec;
    let Some(list) = spec.mounts() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let linux = spec.linux().as_ref();
    let cuid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let cgid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    let mut idx = Vec::new();
    let mut trees = Vec::new();
    for (i, m) in list.iter().enumerate() {
        if !mounts::is_bind(m) {
            continue;
        }
        let perr = |op: &str| {
            let op = op.to_owned();
            move |source| CreateError::PrepareMount {
                index: i,
                destination: m.destination().clone(),
                op,
                source,
            }
        };
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| perr("options")(io::Error::other(e)))?;
        let src = mounts::bind_source(m, &config.bundle);
        let mut flags = sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
        if opts.recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        let tree = match mounts::source_in_rootfs(&src, &config.rootfs) {
            // Inside the rootfs: resolved there, as the init would.
            Some(rel) => {
                let what = format!("open bind source {} in the rootfs", src.display());
                let fd = crate::resolve::Root::open(&config.rootfs)
                    .and_then(|root| mounts::open_source_in_root(&root, &rel))
                    .map_err(perr(&what))?;
                sys::open_tree(
                    fd.as_raw_fd(),
                    c"",
                    flags | libc::AT_EMPTY_PATH as libc::c_uint,
                )
            }
            None => {
                let c = CString::new(src.as_os_str().as_encoded_bytes())
                    .map_err(|_| perr("source")(io::Error::from_raw_os_error(libc::EINVAL)))?;
                sys::open_tree(libc::AT_FDCWD, &c, flags)
            }
        }
        .map_err(perr(&format!("open bind source {}", src.display())))?;
        if let Some(idmap) = idmap_of(m) {
            let userns = if idmap.uids.is_empty() && idmap.gids.is_empty() {
                rustix::fs::open(
                    format!("/proc/{in_userns}/ns/user"),
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| perr("open the container's user namespace")(e.into()))?
            } else {
                let u = if idmap.uids.is_empty() {
                    user_ns::format(&cuid)
                } else {
                    lines(&idmap.uids, &cuid)
                };
                let g = if idmap.gids.is_empty() {
                    user_ns::format(&cgid)
                } else {
                    lines(&idmap.gids, &cgid)
                };
                user_ns::userns_with_maps(&u, &g)?
            };
            let attr = sys::MountAttr {
                attr_set: sys::attr::IDMAP,
                userns_fd: userns.as_raw_fd() as u64,
                ..Default::default()
            };
            let mut f = libc::AT_EMPTY_PATH as libc::c_uint;
            if idmap.recursive {
                f |= libc::AT_RECURSIVE as libc::c_uint;
            }
            sys::mount_setattr(tree.as_fd(), c"", f, &attr).map_err(perr("idmap the mount"))?;
        }
        idx.push(i);
        trees.push(tree);
    }
    if trees.len() > 200 {
        return Err(CreateError::Sys {
            op: "more than 200 bind mounts with a user namespace".into(),
            source: io::Error::from_raw_os_error(libc::E2BIG),
        });
    }
    Ok((idx, trees))
}

//! Stage 3 of 3: the container's init. Builds the rootfs, applies the process's
//! attributes, reports ready, blocks on the exec fifo until `start`, then execs the
//! user's program.

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};
use rustix::fs::OFlags;

use super::setup::{self, SetupError};
use super::{chain, exit_stage, Detached, Setup};
use crate::channel::{Channel, ChannelError, Msg};
use crate::hooks::{self, HookState};
use crate::procfs::Procfs;
use crate::rootfs::{self, RootfsError, RootfsPlan};
use crate::tty::{self, TtyError};

/// An init step that failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Building the rootfs failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A process attribute could not be applied.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The terminal could not be set up.
    #[error(transparent)]
    Tty(#[from] TtyError),
    /// Talking to the parent failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The seccomp filter could not be installed.
    #[error("install seccomp filter")]
    Seccomp(#[from] liana_seccomp::InstallError),
    /// A hook failed.
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// Another step failed.
    #[error("{op}")]
    Sys {
        /// What failed.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn sys(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Sys { op, source }
}

/// Runs the init stage; never returns. With `userns`, the init is still the runtime's
/// root in a mount namespace of the runtime's user namespace (see
/// [`super::bootstrap`]): it builds the rootfs there, then enters `userns` and copies
/// the mount namespace, which locks every mount it made. The createContainer hooks then
/// run as the runtime's root in the container's other namespaces (runc runs them as the
/// container's root, inside its user namespace).
pub fn run(
    setup: &Setup<'_>,
    channel: &Channel,
    mut detached: Detached,
    userns: Option<OwnedFd>,
) -> ! {
    let e = match steps(setup, channel, &mut detached, userns) {
        Ok(e) => e,
        Err(e) => e,
    };
    let msg = chain(&e);
    if channel.send(&Msg::Error(msg.clone())).is_err() {
        // The parent is gone (after `create` returned): the container's stderr is the
        // only place left for the error.
        let _ = writeln!(std::io::stderr(), "liana-runtime: {msg}");
    }
    exit_stage(match &e {
        InitError::Setup(s) => s.exit_status(),
        _ => 1,
    })
}

fn steps(
    setup: &Setup<'_>,
    channel: &Channel,
    detached: &mut Detached,
    userns: Option<OwnedFd>,
) -> Result<InitError, InitError> {
    let spec = &setup.config.spec;
    let linux = spec.linux().as_ref();
    // SAFETY: setsid takes no arguments.
    unsafe { libc::setsid() };
    let procfs = Procfs::open().map_err(sys("open procfs"))?;
    let mut plan = setup.plan.clone();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if userns.is_some() {
        own_new_files_as_container_root(&uid_maps, &gid_maps)?;
    }

    if setup.ns.is_private(LinuxNamespaceType::Mount) {
        let mounts = spec.mounts().clone().unwrap_or_default();
        let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        let masked = linux
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default();
        let readonly = linux
            .and_then(|l| l.readonly_paths().clone())
            .unwrap_or_default();
        let rp = RootfsPlan {
            rootfs: &setup.config.rootfs,
            bundle: &setup.config.bundle,
            mounts: &mounts,
            devices: &devices,
            propagation: linux
                .and_then(|l| l.rootfs_propagation().as_deref())
                .filter(|p| !p.is_empty())
                .and_then(crate::mounts::propagation_flag),
            masked: &masked,
            readonly: &readonly,
            cwd: &plan.cwd,
            // mknod is refused in any user namespace but the initial one: a new one, or
            // the one the runtime was started in (rootless podman's).
            userns: setup.ns.is_new(LinuxNamespaceType::User)
                || crate::user_ns::in_non_initial_userns(),
            cgroupns: setup.ns.is_private(LinuxNamespaceType::Cgroup),
            no_pivot: setup.no_pivot,
            host_ids: userns
                .as_ref()
                .map(|_| (uid_maps.as_slice(), gid_maps.as_slice())),
        };
        rootfs::prepare(&rp, detached, || {
            channel
                .send(&Msg::MountsDone)
                .and_then(|()| channel.expect_ack())
                .map_err(|e| RootfsError::Hook(chain(&e)))?;
            let hooks = spec
                .hooks()
                .as_ref()
                .and_then(|h| h.create_container().clone())
                .unwrap_or_default();
            run_hooks_here(setup, "createContainer", &hooks, "created")
                .map_err(|e| RootfsError::Hook(chain(&e)))
        })?;
    } else {
        rootfs::chroot_only(&setup.config.rootfs)?;
    }
    if let Some(fd) = &userns {
        enter_user_namespace(fd)?;
    }
    drop(userns);

    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes())
            .map_err(|e| sys(format!("set hostname {h}"))(e.into()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: setdomainname reads `len` bytes.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(sys(format!("set domainname {d}"))(
                std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctls {
            procfs
                .write(
                    &format!("sys/{}", crate::sysctl::proc_path(k)),
                    v.as_bytes(),
                )
                .map_err(sys(format!("set sysctl {k}={v}")))?;
        }
    }
    if plan.terminal {
        let (master, slave) = tty::open_pty()?;
        tty::attach_console(&slave, plan.console_size)?;
        channel.send_fds(&Msg::Console, &[master.as_raw_fd()])?;
        drop(master);
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
        && setup.ns.is_private(LinuxNamespaceType::Mount)
    {
        rootfs::make_root_readonly()?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        let mut persona: libc::c_ulong = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
        };
        for f in p.flags().iter().flatten() {
            persona |= personality_flag(f);
        }
        // SAFETY: personality takes an integer.
        if unsafe { libc::personality(persona) } == -1 {
            return Err(sys("set personality")(std::io::Error::last_os_error()));
        }
    }
    if !setup.no_new_keyring {
        join_session_keyring(setup.id.as_str());
    }
    setup::apply_privileged(&plan, &procfs)?;
    // A filter with a listener goes in now, while the parent can still hand the
    // listener to the agent; the others as late as possible, right before exec.
    let mut seccomp_done = false;
    if let Some(p) = setup.seccomp.filter(|p| p.needs_listener()) {
        if plan.no_new_privileges {
            set_no_new_privs()?;
        }
        let fd = p.install().map_err(InitError::Seccomp)?;
        if let Some(fd) = fd {
            channel.send_fds(&Msg::SeccompFd, &[fd.as_raw_fd()])?;
            channel.expect_ack()?;
        }
        seccomp_done = true;
    }
    if plan.env_var("HOME").is_none() {
        let home = setup::home_of(plan.uid);
        plan.set_env("HOME", &home);
    }
    setup::switch_user(&plan, setup.last_cap)?;
    setup::enter_cwd(&plan.cwd)?;
    let exe = setup::find_executable(&plan.args[0], plan.env_var("PATH"))?;

    // Whatever else this process inherited from the runtime's process goes now, not at
    // exec: a library user creating containers from several threads (liana build)
    // forked us while its other threads held their containers' state flocks and pipes,
    // and an init waiting for `start` must not keep those locked or open.
    let mut keep = setup.own_fds.clone();
    keep.extend([channel.raw_fd(), procfs.fd().as_raw_fd()]);
    crate::sys::close_from_except(3 + plan.preserve_fds as i32, &keep)
        .map_err(sys("close the fds inherited from the runtime"))?;
    channel.send(&Msg::Ready)?;
    if let Some(fifo) = setup.fifo {
        // SAFETY: the fifo fd was opened by the parent before fork and stays open.
        let fifo = unsafe { BorrowedFd::borrow_raw(fifo) };
        wait_for_start(&procfs, fifo)?;
    }
    let hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
        .unwrap_or_default();
    run_hooks_here(setup, "startContainer", &hooks, "running")?;

    if plan.listen_fds {
        plan.set_env("LISTEN_PID", &std::process::id().to_string());
    }
    drop(procfs);
    let mut own = setup.own_fds.clone();
    own.push(channel.raw_fd());
    setup::prepare_fds(plan.preserve_fds, &own)?;
    setup::reset_signals();
    finish(setup, &plan, seccomp_done)?;
    Ok(InitError::Setup(setup::exec(&exe, &plan.args, &plan.env)))
}

/// Last steps before exec: the seccomp filter (if not installed yet) and the final
/// capability sets, in the order no_new_privs allows.
pub(crate) fn finish(
    setup: &Setup<'_>,
    plan: &super::setup::ProcessPlan,
    seccomp_done: bool,
) -> Result<(), InitError> {
    let install =
        |p: &crate::seccomp::SeccompProgram| p.install().map(drop).map_err(InitError::Seccomp);
    match setup.seccomp.filter(|_| !seccomp_done) {
        Some(p) if plan.no_new_privileges => {
            setup::finish_capabilities(plan, setup.last_cap)?;
            install(p)
        }
        Some(p) => {
            // Without no_new_privs, installing needs CAP_SYS_ADMIN: before dropping it.
            install(p)?;
            Ok(setup::finish_capabilities(plan, setup.last_cap)?)
        }
        None => Ok(setup::finish_capabilities(plan, setup.last_cap)?),
    }
}

/// Before the runtime's root makes the mounts outside the container's user namespace:
/// what it creates (mount points, device nodes, tmpfs roots) belongs to the container's
/// root, as if made inside, while it keeps all its capabilities.
fn own_new_files_as_container_root(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), InitError> {
    let host_root = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
    };
    // SAFETY: setfsgid/setfsuid take an id and cannot fail in a way that matters here
    // (an id without a mapping only leaves files owned by the runtime's root).
    unsafe {
        if let Some(g) = host_root(gids) {
            libc::setfsgid(g);
        }
        if let Some(u) = host_root(uids) {
            libc::setfsuid(u);
        }
    }
    // A non-zero fsuid takes the file capabilities out of the effective set: put every
    // permitted capability back.
    let mut hdr = [0x2008_0522u32, 0];
    let mut data = [[0u32; 3]; 2];
    // SAFETY: capget writes two v3 data structs into `data`; capset reads them back.
    let r = unsafe {
        if libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr()) != 0 {
            -1
        } else {
            for d in &mut data {
                d[0] = d[1];
            }
            libc::syscall(libc::SYS_capset, hdr.as_mut_ptr(), data.as_ptr())
        }
    };
    if r != 0 {
        return Err(sys("raise capabilities")(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// After the rootfs is built (and pivoted into) by the runtime's root: joins the
/// container's user namespace, becomes its root, and copies the mount namespace into
/// it. The kernel locks every mount of a copy made across user namespaces, so the
/// container's root cannot unmount or remount the masks and read-only paths, nor bind
/// what they cover elsewhere.
fn enter_user_namespace(userns: &OwnedFd) -> Result<(), InitError> {
    crate::namespaces::setns(userns, libc::CLONE_NEWUSER)
        .map_err(sys("join the container's user namespace"))?;
    // SAFETY: plain id syscalls; failing (0 not mapped) leaves the ids for switch_user.
    unsafe {
        libc::setresgid(0, 0, 0);
        libc::setresuid(0, 0, 0);
    }
    crate::namespaces::unshare(libc::CLONE_NEWNS).map_err(sys(
        "copy the mount namespace into the container's user namespace",
    ))
}

fn set_no_new_privs() -> Result<(), InitError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(sys("set no_new_privs")(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Blocks until `start` opens the exec fifo for reading, then tells it we are going.
fn wait_for_start(procfs: &Procfs, fifo: BorrowedFd<'_>) -> Result<(), InitError> {
    let fd = procfs
        .reopen_fd(fifo, OFlags::WRONLY)
        .map_err(sys("open exec fifo"))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(b"0").map_err(sys("write exec fifo"))
}

fn run_hooks_here(
    setup: &Setup<'_>,
    kind: &'static str,
    list: &[oci_spec::runtime::Hook],
    status: &str,
) -> Result<(), hooks::HookError> {
    if list.is_empty() {
        return Ok(());
    }
    let ann = setup.config.spec.annotations().clone().unwrap_or_default();
    let st = HookState {
        oci_version: setup.config.spec.version(),
        id: setup.id.as_str(),
        status,
        pid: Some(std::process::id() as i32),
        bundle: &setup.config.bundle,
        annotations: &ann,
    };
    hooks::run(kind, list, &st)
}

fn personality_flag(_name: &str) -> libc::c_ulong {
    // runtime-spec defines no portable flags yet; unknown ones are ignored as runc does.
    0
}

fn join_session_keyring(id: &str) {
    let name = std::ffi::CString::new(format!("_ses.{id}")).expect("id has no NUL");
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads a NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        // Keyrings are unavailable in some sandboxes (ENOSYS, EACCES): runc carries on.
        tracing::debug!(
            "cannot join a session keyring: {}",
            std::io::Error::last_os_error()
        );
    }
}

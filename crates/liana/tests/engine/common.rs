//! Shared fixture of the engine tests: registries with the busybox test image, `liana`
//! (stripped of debug info: verbs that enter containers copy the binary into a sealed
//! memfd) next to a static `liana-monitor` and `liana-init` in a world-readable
//! directory, and per-test engine instances (private --root/--runroot, or a private
//! HOME/XDG directory for the rootless user).

#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The unprivileged user of rootless tests.
pub const TEST_USER: &str = "lianatest";

pub struct Fixture {
    pub env: HashMap<String, String>,
    /// Directory with liana, liana-monitor, liana-init.
    pub bin: PathBuf,
    /// registries.conf marking the test registry insecure.
    pub registries_conf: PathBuf,
    /// liana.toml with the runsc entry.
    pub config: PathBuf,
}

impl Fixture {
    /// The busybox test image.
    pub fn image(&self) -> String {
        format!("{}/busybox:latest", self.env["PLAIN"])
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn build_static(bin: &str, target_dir: &Path) -> PathBuf {
    let st = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args([
            "rustc",
            "-q",
            "-p",
            "liana-monitor",
            "--bin",
            bin,
            "--release",
            "--target-dir",
        ])
        .arg(target_dir)
        .args(["--", "-C", "target-feature=+crt-static"])
        .status()
        .expect("run cargo");
    assert!(st.success(), "building static {bin} failed");
    target_dir.join("release").join(bin)
}

static FX: OnceLock<Option<Fixture>> = OnceLock::new();

/// The fixture, or `None` (test skipped with a message) when not root.
pub fn fixture() -> Option<&'static Fixture> {
    FX.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: the engine tests need root (real containers, test user, packages)");
            return None;
        }
        let setup_dir =
            std::env::temp_dir().join(format!("liana-engine-registry-{}", std::process::id()));
        let out = Command::new(repo_root().join("tests/engine/setup.sh"))
            .arg(&setup_dir)
            .arg("--owner")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run tests/engine/setup.sh");
        assert!(
            out.status.success(),
            "setup failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        // Inside the set-up's directory, which its watcher removes when this process
        // ends (a static is never dropped, so a TempDir here would stay).
        let dir = setup_dir.join("fixture");
        std::fs::create_dir_all(&dir).unwrap();
        for d in [&setup_dir, &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_liana"), bin.join("liana")).unwrap();
        let _ = Command::new("strip")
            .arg("--strip-debug")
            .arg(bin.join("liana"))
            .status();
        let helpers = repo_root().join("target/engine-helpers");
        for b in ["liana-monitor", "liana-init"] {
            std::fs::copy(build_static(b, &helpers), bin.join(b)).unwrap();
        }
        for f in std::fs::read_dir(&bin).unwrap() {
            std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let registries_conf = dir.join("registries.conf");
        std::fs::write(
            &registries_conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                env["PLAIN"]
            ),
        )
        .unwrap();
        let config = dir.join("liana.toml");
        std::fs::write(
            &config,
            // The engine tests keep containers off the network (they test other
            // things; the network tests pass --network explicitly).
            "[network]\ndefault = \"none\"\ndefault_rootless = \"none\"\n\n\
             [runtimes.runsc]\nargs = [\"--network=none\", \"--platform=ptrace\"]\n",
        )
        .unwrap();
        for f in [&registries_conf, &config] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Some(Fixture {
            env,
            bin,
            registries_conf,
            config,
        })
    })
    .as_ref()
}

/// uid and gid of the test user.
pub fn test_user() -> (u32, u32) {
    let out = Command::new("id").args(["-u", TEST_USER]).output().unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = Command::new("id").args(["-g", TEST_USER]).output().unwrap();
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code, 0,
            "{what} failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// One engine instance (its own storage and state).
pub struct Instance {
    pub fx: &'static Fixture,
    dir: tempfile::TempDir,
    owner: Option<(u32, u32)>,
    /// A config file of its own instead of the fixture's.
    config: Option<PathBuf>,
}

impl Instance {
    /// As root, with --root and --runroot in a temp dir.
    pub fn root(fx: &'static Fixture) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("liana-eng-")
            .tempdir()
            .unwrap();
        Instance {
            fx,
            dir,
            owner: None,
            config: None,
        }
    }

    /// As the test user, with its default (XDG) locations in a temp dir.
    pub fn rootless(fx: &'static Fixture) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("liana-eng-rl-")
            .tempdir()
            .unwrap();
        for d in ["home", "data", "run", "config"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let (uid, gid) = test_user();
        chown_r(dir.path(), uid, gid);
        Instance {
            fx,
            dir,
            owner: Some((uid, gid)),
            config: None,
        }
    }

    /// Uses a config file with `text` instead of the fixture's.
    pub fn with_config(mut self, text: &str) -> Self {
        let p = self.dir.path().join("liana-own.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        self.config = Some(p);
        self
    }

    pub fn is_rootless(&self) -> bool {
        self.owner.is_some()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The storage root.
    pub fn root_dir(&self) -> PathBuf {
        match self.owner {
            None => self.dir.path().join("root"),
            Some(_) => self.dir.path().join("data/liana"),
        }
    }

    /// The runtime state root.
    pub fn runroot(&self) -> PathBuf {
        match self.owner {
            None => self.dir.path().join("runroot"),
            Some(_) => self.dir.path().join("run/liana"),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let liana = self.fx.bin.join("liana");
        let mut c = match self.owner {
            None => {
                let mut c = Command::new(&liana);
                c.arg("--root")
                    .arg(self.root_dir())
                    .arg("--runroot")
                    .arg(self.runroot());
                c
            }
            Some(_) => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    TEST_USER,
                    "--regid",
                    TEST_USER,
                    "--init-groups",
                    "--",
                ])
                .arg(&liana);
                c.env("HOME", self.dir.path().join("home"))
                    .env("XDG_DATA_HOME", self.dir.path().join("data"))
                    .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
                    .env("XDG_CONFIG_HOME", self.dir.path().join("config"));
                c
            }
        };
        c.arg("--config")
            .arg(self.config.as_ref().unwrap_or(&self.fx.config))
            .args(args);
        c.env("CONTAINERS_REGISTRIES_CONF", &self.fx.registries_conf)
            .env_remove("LIANA_ROOT")
            .env_remove("LIANA_EXE")
            .env_remove("LIANA_CONFIG")
            .env_remove("LIANA_MONITOR")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if self.owner.is_none() {
            c.env("HOME", self.dir.path());
        }
        c
    }

    /// Runs liana; output through files so that nothing a container inherits can hold
    /// the call up.
    pub fn run(&self, args: &[&str]) -> Out {
        output(self.cmd(args))
    }

    /// Runs liana, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        o.ok(&format!("liana {}", args.join(" ")));
        o.stdout
    }

    /// `run -d ...`: the new container's id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let id = self.ok(&a).trim().to_string();
        assert_eq!(id.len(), 64, "run -d printed {id:?}");
        id
    }

    /// Polls `f` for up to `secs` seconds.
    pub fn eventually(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    }

    /// Ids of all containers.
    pub fn all_ids(&self) -> Vec<String> {
        self.ok(&["ps", "-a", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for id in self.all_ids_quiet() {
            let _ = self.run(&["rm", "-f", &id]);
        }
        let holder = self.runroot().join("userns/pid");
        if let Ok(t) = std::fs::read_to_string(holder) {
            if let Some(pid) = t
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill takes integers; the pid is this instance's namespace holder.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Instance {
    fn all_ids_quiet(&self) -> Vec<String> {
        let o = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        o.stdout.lines().map(str::to_string).collect()
    }
}

/// Runs a command with stdout and stderr in temporary files.
pub fn output(mut cmd: Command) -> Out {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    cmd.stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |f: &mut std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = String::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut v).unwrap();
        v
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// The host's memory in MiB.
pub fn host_mem_mib() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    kb / 1024
}

/// The `total` column of `free -m`'s Mem line.
pub fn free_total(out: &str) -> u64 {
    out.lines()
        .find(|l| l.starts_with("Mem:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Mem line in {out:?}"))
}

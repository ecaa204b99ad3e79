//! Measures compiling and installing a seccomp profile; prints the figures.
//!
//! ```text
//! cargo run --release -p liana-seccomp --example seccomp_bench [-- OCI_PROFILE.json [ROUNDS]]
//! cargo run --release -p liana-seccomp --example seccomp_bench -- --convert DOCKER.json OUT.json
//! ```
//!
//! Without arguments it uses podman's default profile as the runtime receives it
//! (`tests/fixtures/podman-default-x86_64.json`). `--convert` turns a docker/podman-format profile
//! (`/usr/share/containers/seccomp.json`) into that OCI form for an x86-64 host with podman's
//! default capabilities, resolving `includes`/`excludes` as podman does.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// podman's default capability set (containers.conf `default_capabilities`).
const PODMAN_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--convert") {
        let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
            bail!("usage: --convert DOCKER_PROFILE.json OUT.json");
        };
        let docker: Value = serde_json::from_slice(&std::fs::read(input)?)?;
        let oci = convert(&docker)?;
        let mut bytes = serde_json::to_vec_pretty(&oci)?;
        bytes.push(b'\n');
        std::fs::write(output, bytes)?;
        println!("wrote {output}");
        return Ok(());
    }
    let path = args.first().cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/podman-default-x86_64.json"
        )
        .into()
    });
    let rounds: usize = args.get(1).map(|r| r.parse()).transpose()?.unwrap_or(50);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let spec = liana_seccomp::parse(&text)?;
    let names: usize = spec
        .syscalls()
        .iter()
        .flatten()
        .map(|s| s.names().len())
        .sum();

    let mut compile_times = Vec::with_capacity(rounds);
    let mut filter = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let compiled = liana_seccomp::compile(&spec)?;
        compile_times.push(started.elapsed());
        filter = Some(compiled);
    }
    let cache_dir = tempfile::tempdir()?;
    let cache = liana_seccomp::FilterCache::new(cache_dir.path().join("seccomp"));
    cache.compile(&spec)?; // fills the cache
    let mut cached_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let cached = cache.compile(&spec)?;
        cached_times.push(started.elapsed());
        if &cached != filter.as_ref().context("no rounds")? {
            bail!("the cached filter differs from the compiled one");
        }
    }

    let filter = filter.context("no rounds")?;
    let mut install_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        install_times.push(install_in_child(&filter)?);
    }

    println!("profile: {path}");
    println!(
        "syscall names: {names}, BPF instructions: {}, flags: {:#x}",
        filter.program().len(),
        filter.flags()
    );
    println!("compile ({rounds} rounds): {}", summary(&mut compile_times));
    println!(
        "compile through FilterCache, hit ({rounds} rounds): {}",
        summary(&mut cached_times)
    );
    println!(
        "install ({rounds} rounds, in a forked child): {}",
        summary(&mut install_times)
    );
    Ok(())
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let median = times[times.len() / 2];
    format!(
        "min {:.3} ms, median {:.3} ms, max {:.3} ms",
        times[0].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    )
}

/// Forks, installs `filter` in the child, and returns how long the install took there.
fn install_in_child(filter: &liana_seccomp::CompiledFilter) -> Result<Duration> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid 2-int array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: the child only calls install (one syscall), Instant::now (vDSO), write and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let started = Instant::now();
        let ok = filter.install().is_ok();
        let nanos: u64 = if ok {
            started.elapsed().as_nanos() as u64
        } else {
            u64::MAX
        };
        // SAFETY: writes 8 bytes from a live local to the pipe, then exits without unwinding.
        unsafe {
            libc::write(fds[1], (&nanos as *const u64).cast(), 8);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(fds[1]) };
    let mut nanos = 0u64;
    // SAFETY: reads up to 8 bytes into a live u64, then closes the read end, which we own.
    let read = unsafe {
        let n = libc::read(fds[0], (&mut nanos as *mut u64).cast(), 8);
        libc::close(fds[0]);
        n
    };
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if read != 8 || nanos == u64::MAX {
        bail!("install failed in the child (are you root?)");
    }
    Ok(Duration::from_nanos(nanos))
}

/// Resolves a docker/podman-format profile for an x86-64 host with podman's default
/// capabilities into the OCI `linux.seccomp` object a runtime receives.
fn convert(docker: &Value) -> Result<Value> {
    let arch_map = docker["archMap"].as_array().context("archMap")?;
    let native = arch_map
        .iter()
        .find(|entry| entry["architecture"] == "SCMP_ARCH_X86_64")
        .context("no SCMP_ARCH_X86_64 in archMap")?;
    let mut architectures = vec![native["architecture"].clone()];
    architectures.extend(
        native["subArchitectures"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned(),
    );

    let has = |list: &Value, wanted: &str| {
        list.as_array()
            .is_some_and(|items| items.iter().any(|item| item == wanted))
    };
    let mut syscalls = Vec::new();
    for call in docker["syscalls"].as_array().context("syscalls")? {
        let (includes, excludes) = (&call["includes"], &call["excludes"]);
        if includes["arches"].is_array() && !has(&includes["arches"], "amd64") {
            continue;
        }
        if has(&excludes["arches"], "amd64") {
            continue;
        }
        let caps_needed = includes["caps"].as_array().into_iter().flatten();
        if !caps_needed
            .clone()
            .all(|cap| PODMAN_CAPS.iter().any(|have| cap == have))
        {
            continue;
        }
        let caps_excluded = excludes["caps"].as_array().into_iter().flatten();
        if caps_excluded
            .clone()
            .any(|cap| PODMAN_CAPS.iter().any(|have| cap == have))
        {
            continue;
        }
        let mut rule = json!({ "names": call["names"], "action": call["action"] });
        if let Some(errno) = call.get("errnoRet").filter(|v| !v.is_null()) {
            rule["errnoRet"] = errno.clone();
        }
        if let Some(args) = call["args"].as_array().filter(|args| !args.is_empty()) {
            rule["args"] = Value::Array(args.clone());
        }
        syscalls.push(rule);
    }
    let mut oci = json!({
        "defaultAction": docker["defaultAction"],
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(errno) = docker.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        oci["defaultErrnoRet"] = errno.clone();
    }
    Ok(oci)
}

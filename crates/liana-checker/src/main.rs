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
         fork N SECS | spin SECS | count FILE | ignore-term SECS | sleep SECS | exit N"
    );
    std::process::exit(2)
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
        _ => usage(),
    }
}

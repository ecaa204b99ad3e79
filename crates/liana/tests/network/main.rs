//! Network integration tests: bridge networks (names, published ports, outbound NAT,
//! IPAM, teardown), rootless slirp4netns and pasta. All traffic stays on this machine:
//! loopback, and addresses of networks and namespaces each test creates itself
//! (10.89.2xx.0/24 networks on `lnt*` bridges, a 198.18.x.0/24 "internet" namespace).
//! Needs root (skipped otherwise), like the engine tests whose fixture it shares.

#![allow(missing_debug_implementations)]

#[path = "../engine/common.rs"]
mod common;

mod bridge;
mod usermode;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Instance;

/// A network of a test, removed (with its containers) when dropped.
pub struct TestNet<'a> {
    pub l: &'a Instance,
    pub name: String,
    pub bridge: String,
}

impl<'a> TestNet<'a> {
    pub fn create(l: &'a Instance, name: &str, subnet: &str, bridge: &str) -> Self {
        l.ok(&[
            "network",
            "create",
            "--subnet",
            subnet,
            "--interface-name",
            bridge,
            name,
        ]);
        TestNet {
            l,
            name: name.into(),
            bridge: bridge.into(),
        }
    }
}

impl Drop for TestNet<'_> {
    fn drop(&mut self) {
        let _ = self.l.run(&["network", "rm", "-f", &self.name]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// Whether link `name` exists on the host.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a container left behind after its removal.
pub fn leftovers(l: &Instance, id: &str) -> Vec<String> {
    let short = &id[..12];
    let mut v = Vec::new();
    if link_exists(&format!("lv{short}")) {
        v.push(format!("link lv{short}"));
    }
    let t = Command::new("nft")
        .args(["list", "table", "ip", &format!("liana_{short}")])
        .output()
        .unwrap();
    if t.status.success() {
        v.push(format!("nft table liana_{short}"));
    }
    for p in [
        l.runroot().join("netns").join(id),
        l.runroot().join("net").join(short),
    ] {
        if p.exists() {
            v.push(p.display().to_string());
        }
    }
    let ps = Command::new("pgrep")
        .args(["-f", &format!("net/{short}/")])
        .output()
        .unwrap();
    if ps.status.success() {
        v.push(format!(
            "helper {}",
            String::from_utf8_lossy(&ps.stdout).trim()
        ));
    }
    v
}

/// GET `path` from `addr` over HTTP/1.0; the body, or None.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let a = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Polls `http_get` until it answers `want` (up to 10 s).
pub fn http_eventually(addr: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(addr, "/index.html");
        if last.as_deref().map(str::trim) == Some(want) {
            return want.into();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("http://{addr}/ answered {last:?}, expected {want:?}");
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny HTTP server on 127.0.0.1 answering `body` until dropped.
pub struct LoopbackServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    pub fn start(body: &str) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let body = body.to_string();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(
                            format!(
                                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}\n",
                                body.len() + 1
                            )
                            .as_bytes(),
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        LoopbackServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shell command that serves `text` over HTTP on `port` inside a container.
pub fn serve_cmd(text: &str, port: u16) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www")
}

//! `kill -9` half-way through a pull: the store stays consistent and the next pull
//! completes without downloading the finished blobs again, resuming the partial one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

/// A TCP proxy to `upstream` that throttles downloads while `slow` is set.
fn throttling_proxy(upstream: String, slow: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            let slow = slow.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 32 << 10];
                loop {
                    let n = match s2.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c2.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if slow.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(4)); // ~8 MiB/s
                    }
                }
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

fn log_lines(fx: &Fixture, needle: &str) -> Vec<String> {
    let log =
        std::fs::read_to_string(std::path::Path::new(fx.get("PLAIN_DIR")).join("registry.log"))
            .unwrap();
    log.lines()
        .filter(|l| l.contains(needle) && l.contains("\"GET "))
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_9_then_resume() {
    let Some(fx) = fixture() else { return };
    let slow = Arc::new(AtomicBool::new(true));
    let port = throttling_proxy(fx.get("PLAIN").to_string(), slow.clone());
    let img = format!("127.0.0.1:{port}/big:latest");
    let ls = layers(fx, "big");
    let big = ls.last().unwrap().clone();
    let r = Root::new();
    let mut child = r
        .command(&["pull", "--tls-verify=false", &img])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait until the big layer is partly downloaded
    let ingest = r.path().join("content/ingest");
    let start = Instant::now();
    let partial = loop {
        let size: u64 = std::fs::read_dir(&ingest)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                    .map(|m| m.len())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if size > 6 << 20 {
            break size;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pull made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "pull ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // consistent: no image, finished small layers are stored, the big one is partial
    assert!(r.images_json().is_empty());
    let blobs = r.blobs();
    for small in &ls[..ls.len() - 1] {
        assert!(
            blobs.contains(&small[7..].to_string()),
            "finished layer {small} kept"
        );
    }
    assert!(
        !blobs.contains(&big[7..].to_string()),
        "the partial blob is not visible"
    );
    assert!(partial < 64 << 20);
    // The registry logs a request when it ends: the killed download's GET appears once
    // the proxy has closed its side, a moment after the kill.
    let start = Instant::now();
    while log_lines(fx, &format!("/v2/big/blobs/{big}")).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the registry never logged the killed download"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<usize> = ls
        .iter()
        .map(|d| log_lines(fx, &format!("/v2/big/blobs/{d}")).len())
        .collect();

    slow.store(false, Ordering::Relaxed);
    let o = r.run(&["pull", "--tls-verify=false", &img]);
    o.ok();
    r.with_rootfs(&img, |root| {
        check_layered_tree(root);
        assert_eq!(
            std::fs::metadata(root.join("data/big.bin")).unwrap().len(),
            64 << 20
        );
    });
    for (d, n) in ls.iter().zip(&before) {
        let after = log_lines(fx, &format!("/v2/big/blobs/{d}"));
        if *d == big {
            assert_eq!(
                after.len(),
                n + 1,
                "the big blob is requested once more: {after:#?}"
            );
            assert!(
                after.last().unwrap().contains("\" 206 "),
                "with a range request: {}",
                after.last().unwrap()
            );
        } else {
            assert_eq!(after.len(), *n, "finished blob {d} is not downloaded again");
        }
    }
    assert_eq!(r.ingests(), 0, "no ingest left after the resumed pull");
}

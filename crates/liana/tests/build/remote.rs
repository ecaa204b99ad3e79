//! ADD of an http URL served from 127.0.0.1, with and without --checksum.

use std::io::{Read, Write};

use crate::common::Instance;
use crate::{build, context, fx};

/// Serves `body` to every request on a loopback port; returns the port.
fn serve(body: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn add_url_with_checksum() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let port = serve("remote content\n");
    let sum = {
        let o = std::process::Command::new("sh")
            .args(["-c", "printf 'remote content\\n' | sha256sum"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)[..64].to_string()
    };
    let url = format!("http://127.0.0.1:{port}/dir/file.txt");
    let df = format!(
        "FROM {}\nADD --checksum=sha256:{sum} {url} /fetched/\nADD {url} /renamed.txt\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    build(&l, &ctx, &["-t", "url"]).ok("ADD URL");
    assert_eq!(
        l.ok(&[
            "run",
            "--rm",
            "url",
            "sh",
            "-c",
            "cat /fetched/file.txt /renamed.txt; stat -c %a /renamed.txt"
        ]),
        "remote content\nremote content\n600\n"
    );
    // a wrong checksum fails and names the URL
    let bad = format!(
        "FROM {}\nADD --checksum=sha256:{} {url} /x\n",
        fx.image(),
        "0".repeat(64)
    );
    std::fs::write(ctx.join("Dockerfile"), bad).unwrap();
    let o = build(&l, &ctx, &["-t", "url2"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(&url) && o.stderr.contains("checksum mismatch"),
        "{}",
        o.stderr
    );
}

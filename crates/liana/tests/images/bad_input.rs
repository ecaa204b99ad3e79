//! Bad input: each case fails with an error naming the image, blob or entry, exits
//! non-zero and leaves nothing stored.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::common::*;

#[test]
fn corrupt_blob_is_refused() {
    let Some(fx) = fixture() else { return };
    let layer = layers(fx, "victim-corrupt").remove(0);
    let p = registry_blob(fx.get("PLAIN_DIR"), &layer);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(b"\xde\xad\xbe\xef").unwrap();
    drop(f);
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{}/victim-corrupt:latest", fx.get("PLAIN")),
    ])
    .fails_with(&["victim-corrupt", &layer, "digest mismatch"]);
    r.assert_empty();
}

#[test]
fn truncated_blob_is_refused() {
    let Some(fx) = fixture() else { return };
    let layer = layers(fx, "victim-truncate").remove(0);
    let p = registry_blob(fx.get("PLAIN_DIR"), &layer);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    drop(f);
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{}/victim-truncate:latest", fx.get("PLAIN")),
    ])
    .fails_with(&["victim-truncate", &layer, "size mismatch"]);
    r.assert_empty();
}

/// A minimal registry that serves one oversized manifest (the real registry refuses
/// to store or serve manifests over 4 MiB itself, so it cannot produce this case).
/// `chunked`: without Content-Length, so the bound must hold while streaming.
fn oversized_manifest_server(chunked: bool) -> u16 {
    use std::io::{BufRead, BufReader};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(40) {
            let Ok(mut c) = c else { continue };
            // a TLS hello (the client tries HTTPS first) is dropped after a moment
            c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).is_err() || !first.starts_with("GET ") {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            if first.starts_with("GET /v2/ ") {
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
                continue;
            }
            let body = format!(
                "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"annotations\":{{\"pad\":\"{}\"}}}}",
                "x".repeat(5 << 20)
            );
            let ct = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
            if chunked {
                let _ = c.write_all(format!("HTTP/1.1 200 OK\r\n{ct}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").as_bytes());
                for chunk in body.as_bytes().chunks(64 << 10) {
                    if c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .is_err()
                        || c.write_all(chunk).is_err()
                        || c.write_all(b"\r\n").is_err()
                    {
                        break;
                    }
                }
                let _ = c.write_all(b"0\r\n\r\n");
            } else {
                let _ = c.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = c.write_all(body.as_bytes());
            }
        }
    });
    port
}

#[test]
fn oversized_manifest_is_refused() {
    if fixture().is_none() {
        return;
    }
    for chunked in [false, true] {
        let port = oversized_manifest_server(chunked);
        let r = Root::new();
        r.run(&[
            "pull",
            "--tls-verify=false",
            &format!("127.0.0.1:{port}/huge:latest"),
        ])
        .fails_with(&["huge:latest", "too large", "4194304"]);
        r.assert_empty();
    }
}

#[test]
fn oversized_config_is_refused() {
    let Some(fx) = fixture() else { return };
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{}/bad-bigconfig:latest", fx.get("PLAIN")),
    ])
    .fails_with(&["bad-bigconfig", "config", "too large"]);
    r.assert_empty();
}

#[test]
fn escaping_layers_are_refused() {
    let Some(fx) = fixture() else { return };
    let target = Path::new("/tmp/liana-escape-target");
    std::fs::create_dir_all(target).unwrap();
    let dotdot = Path::new("/tmp/liana-escape-dotdot");
    let _ = std::fs::remove_file(dotdot);
    let passwd_links = std::fs::metadata("/etc/passwd")
        .map(|m| std::os::unix::fs::MetadataExt::nlink(&m))
        .unwrap();
    for (img, needles) in [
        (
            "bad-dotdot",
            vec!["../../../../tmp/liana-escape-dotdot", "'..'"],
        ),
        ("bad-abslink", vec!["evil/pwned", "outside the unpack root"]),
        ("bad-hardlink", vec!["shadow", "hardlink target"]),
    ] {
        let r = Root::new();
        let layer = layers(fx, img).remove(0);
        let mut want = needles.clone();
        want.push(img);
        want.push(&layer);
        r.run(&[
            "pull",
            "--tls-verify=false",
            &format!("{}/{img}:latest", fx.get("PLAIN")),
        ])
        .fails_with(&want);
        r.assert_empty();
    }
    assert!(!dotdot.exists(), "nothing written through '..'");
    assert_eq!(
        std::fs::read_dir(target).unwrap().count(),
        0,
        "nothing written through the symlink"
    );
    let now = std::fs::metadata("/etc/passwd")
        .map(|m| std::os::unix::fs::MetadataExt::nlink(&m))
        .unwrap();
    assert_eq!(now, passwd_links, "no hardlink to /etc/passwd");
}

#[test]
fn unknown_media_type_is_refused() {
    let Some(fx) = fixture() else { return };
    let layer = layers(fx, "bad-mediatype").remove(0);
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{}/bad-mediatype:latest", fx.get("PLAIN")),
    ])
    .fails_with(&[
        "bad-mediatype",
        &layer,
        "unsupported media type",
        "application/vnd.example.unknown.layer",
    ]);
    r.assert_empty();
}

#[test]
fn bad_references_and_missing_images() {
    let Some(fx) = fixture() else { return };
    let r = Root::new();
    r.run(&["pull", "Not/Valid"])
        .fails_with(&["invalid reference", "lower case"]);
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{}/does-not-exist:latest", fx.get("PLAIN")),
    ])
    .fails_with(&["does-not-exist", "not found"]);
    assert_eq!(
        r.run(&[
            "pull",
            "--tls-verify=false",
            &format!("{}/does-not-exist:latest", fx.get("PLAIN"))
        ])
        .code,
        1
    );
    r.run(&["pull", "--tls-verify=false", "127.0.0.1:1/nothing:here"])
        .fails_with(&["127.0.0.1:1"]);
    r.assert_empty();
}

//! An unprivileged user builds: RUN in a user namespace over the native snapshotter,
//! layers diffed against their parent, owners recorded as the Dockerfile says.

use crate::common::Instance;
use crate::{build, context, fx};

fn layer_listing(l: &Instance, image: &str) -> String {
    let out = l.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let digest = v[0]["Digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blobs = l.root_dir().join("content/blobs/sha256");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&digest)).unwrap()).unwrap();
    let mut all = String::new();
    for layer in m["layers"].as_array().unwrap() {
        let d = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let o = std::process::Command::new("tar")
            .arg("tvzf")
            .arg(blobs.join(d))
            .output()
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&o.stdout));
        all.push_str("--\n");
    }
    all
}

#[test]
fn rootless_build() {
    let Some(fx) = fx() else { return };
    let l = Instance::rootless(fx);
    let df = format!(
        "FROM {}\n\
         RUN mkdir -p /home/u /tmp/gone && echo x > /tmp/gone/f && echo hi > /home/u/f \
             && chown -R 1000:1000 /home/u && id -u\n\
         COPY --chown=1234:5678 f.txt /owned\n\
         RUN rm -rf /tmp/gone /bin/ls\n\
         CMD [\"cat\", \"/home/u/f\"]\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df), ("f.txt", "copied\n")]);
    let o = build(&l, &ctx, &["-t", "rl"]);
    o.ok("rootless build");
    assert!(
        o.stderr.contains(" 0\n"),
        "RUN runs as root in its namespace: {}",
        o.stderr
    );
    assert_eq!(l.ok(&["run", "--rm", "rl"]), "hi\n");
    assert_eq!(
        l.ok(&[
            "run",
            "--rm",
            "rl",
            "sh",
            "-c",
            "test -e /bin/ls || test -e /tmp/gone || cat /owned"
        ]),
        "copied\n"
    );
    let list = layer_listing(&l, "rl");
    assert!(
        list.lines()
            .any(|x| x.contains("1000/1000") && x.ends_with("home/u/f")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|x| x.contains("1234/5678") && x.ends_with(" owned")),
        "{list}"
    );
    assert!(
        list.contains("tmp/.wh.gone") && list.contains("bin/.wh.ls"),
        "{list}"
    );
    // the image layers are diffs, not copies of the whole tree
    let last = list.rsplit("--\n").nth(1).unwrap();
    assert!(last.lines().count() < 6, "{last}");
    // a second build is fully cached
    let o = build(&l, &ctx, &["-t", "rl2"]);
    o.ok("cached rootless build");
    assert_eq!(o.stderr.matches("CACHED").count(), 3, "{}", o.stderr);
}

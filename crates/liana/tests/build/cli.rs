//! The command line: -f, -q, --iidfile, --output, --label, --platform, --build-arg KEY.

use crate::common::Instance;
use crate::{build, context, fx};

#[test]
fn flags() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\nARG FROM_ENV\nRUN echo \"arg=$FROM_ENV\" > /arg\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("other.Dockerfile", &df)]);
    let iid = l.path().join("iid");
    let archive = l.path().join("out.tar");
    let f = ctx.join("other.Dockerfile");
    let mut c = l.cmd(&[
        "build",
        "-q",
        "-f",
        f.to_str().unwrap(),
        "--build-arg",
        "FROM_ENV",
        "--label",
        "a=b",
        "--platform",
        "linux/amd64",
        "--iidfile",
        iid.to_str().unwrap(),
        "--output",
        &format!("type=docker-archive,dest={}", archive.display()),
        "-t",
        "flags:1",
        "-t",
        "flags:2",
        ctx.to_str().unwrap(),
    ]);
    c.env("FROM_ENV", "from-the-environment");
    let o = crate::common::output(c);
    o.ok("build with flags");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(o.stdout.trim(), id, "-q prints only the ID");
    assert!(o.stderr.is_empty(), "-q: {}", o.stderr);
    assert_eq!(
        l.ok(&["run", "--rm", "flags:2", "cat", "/arg"]),
        "arg=from-the-environment\n"
    );
    let imgs = l.ok(&["images"]);
    assert!(
        imgs.contains("flags") && imgs.matches("flags").count() == 2,
        "{imgs}"
    );
    let s = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert!(String::from_utf8_lossy(&s.stdout).contains("\"a\": \"b\""));
    // flag errors are clear
    for (args, want) in [
        (vec!["--compression", "lz4"], "--compression"),
        (vec!["--output", "type=tar"], "--output"),
        (vec!["--platform", "linux/s390x"], "--platform"),
        (vec!["-t", "Bad Name"], "Bad Name"),
    ] {
        let mut a = args.clone();
        a.extend(["-f", f.to_str().unwrap()]);
        let o = build(&l, &ctx, &a);
        assert_ne!(o.code, 0, "{args:?}");
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
}

fn layer_count(l: &Instance, image: &str) -> usize {
    let out = l.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let digest = v[0]["Digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(l.root_dir().join("content/blobs/sha256").join(digest)).unwrap(),
    )
    .unwrap();
    m["layers"].as_array().unwrap().len()
}

#[test]
fn squash() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\nRUN mkdir /d && echo 1 > /d/one && echo keep > /keep\n\
         RUN rm /d/one && echo 2 > /d/two && rm /bin/ls\nCOPY f /f\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df), ("f", "file\n")]);
    build(&l, &ctx, &["--squash", "-t", "sq"]).ok("--squash");
    l.ok(&["pull", &fx.image()]);
    assert_eq!(layer_count(&l, "sq"), layer_count(&l, &fx.image()) + 1);
    assert_eq!(
        l.ok(&[
            "run",
            "--rm",
            "sq",
            "sh",
            "-c",
            "ls /d; test -e /bin/ls || echo no-ls; cat /keep /f"
        ]),
        "two\nno-ls\nkeep\nfile\n"
    );
    // the squashed image pushes and pulls back
    let name = format!("{}/squashed:1", fx.env["PLAIN"]);
    l.ok(&["tag", "sq", &name]);
    l.ok(&["push", &name]);
    let l2 = Instance::root(fx);
    l2.ok(&["pull", &name]);
    assert_eq!(
        l2.ok(&[
            "run",
            "--rm",
            &name,
            "sh",
            "-c",
            "ls /d; test -e /bin/ls || echo no-ls"
        ]),
        "two\nno-ls\n"
    );
}

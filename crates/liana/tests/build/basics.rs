//! Every instruction, multi-stage builds, .dockerignore, whiteouts.

use crate::common::Instance;
use crate::{assert_clean, build, context, fx};

fn inspect(l: &Instance, name: &str) -> serde_json::Value {
    let out = l.ok(&["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn every_instruction() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    let df = format!(
        r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE={img}
ARG FLAVOR=plain
FROM ${{BASE}} AS base
ARG FLAVOR
ARG NUM=7
ENV GREETING="hello world" \
    OTHER=${{FLAVOR}}-x
LABEL org.example.flavor=$FLAVOR "with space"=yes
WORKDIR /app
WORKDIR sub
RUN echo "$GREETING $NUM $FLAVOR" > greeting && pwd > where
RUN ["/bin/sh", "-c", "echo exec-form > /app/exec"]
RUN <<EOF
echo from heredoc > /app/heredoc
echo second line >> /app/heredoc
EOF
COPY <<EOT /app/inline.txt
inline $GREETING
EOT
COPY --chown=1234:5678 --chmod=600 data.txt /app/owned.txt
COPY dir/ /app/dir/
COPY g*.txt /app/globbed/
COPY --exclude=**/*.skip exc/ /app/exc/
ADD archive.tar /app/unpacked/
RUN --mount=type=tmpfs,target=/scratch --network=none touch /scratch/x && ls /scratch
RUN --mount=type=cache,target=/cache echo cached >> /cache/c && cat /cache/c
RUN --mount=type=bind,source=data.txt,target=/mnt/d cp /mnt/d /app/via-bind
RUN --mount=type=secret,id=tok,required=true cp /run/secrets/tok /app/secret-seen && test ! -e /run/secrets/other
SHELL ["/bin/sh", "-e", "-c"]
RUN echo shell-changed
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD ["true"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/sub/greeting"]
"#
    );
    let tar_dir = l.path().join("tarsrc");
    std::fs::create_dir_all(tar_dir.join("t")).unwrap();
    std::fs::write(tar_dir.join("t/in-tar"), "from tar\n").unwrap();
    let ctx = context(
        &l,
        "ctx",
        &[
            ("Dockerfile", &df),
            ("data.txt", "data\n"),
            ("dir/a", "a\n"),
            ("dir/sub/b", "b\n"),
            ("g1.txt", "1"),
            ("g2.txt", "2"),
            ("exc/a.keep", "k"),
            ("exc/b.skip", "s"),
            ("exc/sub/c.skip", "s"),
        ],
    );
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&tar_dir)
        .arg("-cf")
        .arg(ctx.join("archive.tar"))
        .arg("t")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(l.path().join("token"), "s3cret").unwrap();
    let secret = format!("id=tok,src={}", l.path().join("token").display());
    let o = build(
        &l,
        &ctx,
        &[
            "--secret",
            &secret,
            "-t",
            "every:1",
            "--build-arg",
            "FLAVOR=spicy",
            "--label",
            "cli=1",
        ],
    );
    o.ok("build");
    let id = o.stdout.trim();
    assert!(id.starts_with("sha256:"), "{}", o.stdout);
    assert!(o.stderr.contains("shell-changed"), "{}", o.stderr);
    assert!(o.stderr.contains("#1 [base 1/"), "{}", o.stderr);
    let run = |cmd: &str| l.ok(&["run", "--rm", "every:1", cmd]);
    assert_eq!(run("cat /app/sub/greeting"), "hello world 7 spicy\n");
    assert_eq!(l.ok(&["run", "--rm", "every:1"]), "hello world 7 spicy\n");
    assert_eq!(run("cat /app/sub/where"), "/app/sub\n");
    assert_eq!(run("cat /app/exec"), "exec-form\n");
    assert_eq!(run("cat /app/heredoc"), "from heredoc\nsecond line\n");
    assert_eq!(run("cat /app/inline.txt"), "inline hello world\n");
    assert_eq!(run("stat -c '%u:%g %a' /app/owned.txt"), "1234:5678 600\n");
    assert_eq!(run("cat /app/dir/a /app/dir/sub/b"), "a\nb\n");
    assert_eq!(run("ls /app/globbed"), "g1.txt\ng2.txt\n");
    assert_eq!(run("cd /app/exc && find . -type f"), "./a.keep\n");
    assert_eq!(run("cat /app/unpacked/t/in-tar"), "from tar\n");
    assert_eq!(run("cat /app/via-bind /app/secret-seen"), "data\ns3cret");
    assert_eq!(
        run("test -e /run/secrets/tok || test -e /mnt/d || echo none"),
        "none\n"
    );
    // RUN --mount targets made as mount points are not in the image
    assert_eq!(
        run("test -e /scratch || test -e /cache || echo none"),
        "none\n"
    );
    assert_eq!(run("id -u"), "1000\n");
    let c = inspect(&l, "every:1");
    let cfg = &c["Config"];
    assert_eq!(cfg["WorkingDir"], "/app/sub");
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat /app/sub/greeting"]));
    assert_eq!(cfg["Labels"]["org.example.flavor"], "spicy");
    assert_eq!(cfg["Labels"]["with space"], "yes");
    assert_eq!(cfg["Labels"]["cli"], "1");
    assert!(cfg["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("OTHER=spicy-x")));
    assert!(
        !cfg["Env"].to_string().contains("NUM="),
        "ARGs are not kept"
    );
    assert_eq!(cfg["ExposedPorts"].as_object().map(|o| o.len()), Some(2));
    assert!(cfg["Volumes"]["/data"].is_object());
    // docker's extensions, straight from the config blob
    let root = l.root_dir();
    let cfg_blob = root
        .join("content/blobs/sha256")
        .join(id.trim_start_matches("sha256:"));
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg_blob).unwrap()).unwrap();
    assert_eq!(
        raw["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(raw["config"]["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(raw["config"]["Healthcheck"]["Retries"], 2);
    assert_eq!(
        raw["config"]["OnBuild"],
        serde_json::json!(["RUN echo triggered"])
    );
    assert_eq!(
        raw["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-e", "-c"])
    );
    // ONBUILD triggers run in a build FROM the image
    let ctx2 = context(
        &l,
        "ctx2",
        &[("Dockerfile", "FROM every:1\nUSER 0\nRUN echo child\n")],
    );
    let o = build(&l, &ctx2, &["-t", "child"]);
    o.ok("build child");
    assert!(o.stderr.contains("triggered"), "{}", o.stderr);
    assert_clean(&l);
}

#[test]
fn multi_stage_target_and_whiteouts() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let img = fx.image();
    let df = format!(
        "FROM {img} AS builder\n\
         RUN mkdir -p /out/d && echo built > /out/artifact && echo old > /out/d/old\n\
         FROM {img} AS unused\n\
         RUN echo never-runs && exit 3\n\
         FROM {img} AS other\n\
         RUN echo other > /other\n\
         FROM {img}\n\
         COPY --from=builder /out/artifact /artifact\n\
         COPY --from=other /other /other\n\
         COPY --from=builder /out/d /d\n\
         RUN echo temp > /tempfile && rm /bin/ls\n\
         RUN rm /tempfile && rm -rf /d && mkdir /d && echo new > /d/new\n\
         RUN --mount=type=bind,from=builder,source=/out,target=/b cp /b/artifact /via-mount\n"
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let o = build(&l, &ctx, &["-t", "multi"]);
    o.ok("multi-stage build");
    assert!(!o.stderr.contains("never-runs"), "{}", o.stderr);
    let run = |cmd: &str| l.ok(&["run", "--rm", "multi", "sh", "-c", cmd]);
    assert_eq!(
        run("cat /artifact /other /via-mount"),
        "built\nother\nbuilt\n"
    );
    // deleted files (whiteouts) and a replaced directory (opaque) are gone
    assert_eq!(run("ls /tempfile /bin/ls 2>&1 | grep -c 'No such'"), "2\n");
    assert_eq!(run("ls /d"), "new\n");
    // --target builds the named stage only
    let o = build(&l, &ctx, &["-t", "t:builder", "--target", "builder"]);
    o.ok("--target");
    assert!(!o.stderr.contains("other >"), "{}", o.stderr);
    assert_eq!(
        l.ok(&["run", "--rm", "t:builder", "cat", "/out/artifact"]),
        "built\n"
    );
    let o = build(&l, &ctx, &["--target", "nope"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("nope"), "{}", o.stderr);
    assert_clean(&l);
}

#[test]
fn dockerignore() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!("FROM {}\nCOPY . /ctx/\n", fx.image());
    let ctx = context(
        &l,
        "ctx",
        &[
            ("Dockerfile", &df),
            (".dockerignore", "# comment\n*.log\nsecret/\n!keep.log\n"),
            ("a.log", "x"),
            ("keep.log", "k"),
            ("secret/key", "s"),
            ("src/main.c", "int main;"),
        ],
    );
    build(&l, &ctx, &["-t", "ign"]).ok("build");
    let ls = l.ok(&[
        "run",
        "--rm",
        "ign",
        "sh",
        "-c",
        "cd /ctx && find . -type f | sort",
    ]);
    assert_eq!(
        ls, "./.dockerignore\n./Dockerfile\n./keep.log\n./src/main.c\n",
        "{ls}"
    );
    // naming an ignored file fails and says so
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nCOPY secret/key /k\n", fx.image()),
    )
    .unwrap();
    let o = build(&l, &ctx, &["-t", "ign2"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("secret/key") && o.stderr.contains(".dockerignore"),
        "{}",
        o.stderr
    );
}

#[test]
fn reproducible_with_source_date_epoch() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\nCOPY f /f\nRUN echo made > /made && mkdir /d && ln -s /made /d/link\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df), ("f", "content")]);
    let id = |l: &Instance| {
        let mut c = l.cmd(&["build", "--no-cache", "-q", ctx.to_str().unwrap()]);
        c.env("SOURCE_DATE_EPOCH", "1000000000");
        let o = crate::common::output(c);
        o.ok("build");
        o.stdout.trim().to_string()
    };
    let a = id(&l);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = id(&l);
    assert_eq!(a, b, "two builds with SOURCE_DATE_EPOCH give one image");
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    // each stage waits for the other's mark in a shared cache mount: the build only
    // succeeds when the two run at the same time
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/r touch /r/{me}-$T && i=0 && \
             while [ ! -e /r/{other}-$T ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done && \
             test -e /r/{other}-$T && echo {me} > /{me}\n"
        )
    };
    let img = fx.image();
    let df = format!(
        "FROM {img} AS a\nARG T\n{}FROM {img} AS b\nARG T\n{}FROM {img}\n\
         COPY --from=a /a /a\nCOPY --from=b /b /b\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let token = format!("{}", std::process::id());
    let o = build(
        &l,
        &ctx,
        &["--build-arg", &format!("T={token}"), "-t", "par"],
    );
    o.ok("parallel stages");
    assert_eq!(l.ok(&["run", "--rm", "par", "cat", "/a", "/b"]), "a\nb\n");
}

#[test]
fn copy_parents_keeps_source_paths() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\n\
         COPY --parents x/a.txt y /p/\n\
         COPY --parents ./deep/./keep/c.txt /q/\n\
         COPY --parents */*.txt /g/\n\
         COPY x/a.txt y /flat/\n",
        fx.image()
    );
    let ctx = context(
        &l,
        "ctx",
        &[
            ("Dockerfile", &df),
            ("x/a.txt", "a"),
            ("y/b.txt", "b"),
            ("deep/keep/c.txt", "c"),
        ],
    );
    build(&l, &ctx, &["-t", "parents"]).ok("COPY --parents");
    let out = l.ok(&[
        "run",
        "--rm",
        "parents",
        "sh",
        "-c",
        "cd / && find p q g flat -type f | sort",
    ]);
    assert_eq!(
        out,
        "flat/a.txt\nflat/b.txt\ng/x/a.txt\ng/y/b.txt\np/x/a.txt\np/y/b.txt\nq/keep/c.txt\n"
    );
}

/// `RUN --mount=type=ssh` with `--ssh ID=SOCKET`: the agent's socket at BuildKit's
/// path with SSH_AUTH_SOCK set, not left in the image; a required agent not given is an
/// error naming it.
#[test]
fn run_mount_ssh_agent() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let sock = l.path().join("agent.sock");
    let out = std::process::Command::new("ssh-agent")
        .arg("-a")
        .arg(&sock)
        .output()
        .expect("ssh-agent (openssh-client)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pid: i32 = text
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.parse().ok())
        .expect("agent pid");
    let df = format!(
        "FROM {}\n\
         RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"agent at $SSH_AUTH_SOCK\" > /seen\n\
         RUN --mount=type=ssh,id=other,target=/a.sock test ! -e /a.sock && echo skipped > /optional\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let ssh = format!("default={}", sock.display());
    let o = build(&l, &ctx, &["--ssh", &ssh, "-t", "ssh"]);
    let bad = build(
        &l,
        &context(
            &l,
            "ctx2",
            &[(
                "Dockerfile",
                &format!(
                    "FROM {}\nRUN --mount=type=ssh,required=true true\n",
                    fx.image()
                ),
            )],
        ),
        &[],
    );
    // SAFETY: kill takes integers; the pid is the agent this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    o.ok("RUN --mount=type=ssh");
    assert_eq!(
        l.ok(&["run", "--rm", "ssh", "cat", "/seen", "/optional"]),
        "agent at /run/buildkit/ssh_agent.0\nskipped\n"
    );
    assert_eq!(
        l.ok(&[
            "run",
            "--rm",
            "ssh",
            "sh",
            "-c",
            "test -e /run/buildkit || echo clean"
        ]),
        "clean\n"
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr
            .contains("ssh agent \"default\" is required but no --ssh default was given"),
        "{}",
        bad.stderr
    );
    // a key file (or anything but a socket) is named and refused
    let not_sock = format!("default={}", ctx.join("Dockerfile").display());
    let o = build(&l, &ctx, &["--ssh", &not_sock]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("is not a socket"), "{}", o.stderr);
    assert_clean(&l);
}

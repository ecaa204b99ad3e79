use super::*;

fn p(s: &str) -> Dockerfile {
    parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn err(s: &str) -> ParseError {
    parse(s).expect_err("should fail")
}

#[test]
fn every_instruction() {
    let df = p(r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
ARG TAG
FROM --platform=linux/amd64 ${BASE}:${TAG:-latest} AS build
RUN echo hi
RUN ["echo", "exec"]
RUN --mount=type=cache,target=/cache --network=none echo m
COPY --chown=1:2 --chmod=644 a b /dst/
ADD --checksum=sha256:abc http://127.0.0.1/x /x
ENV A=1 B="two words"
ENV LEGACY value with spaces
ARG V=3
WORKDIR /w
USER 1000:1000
EXPOSE 80/tcp 443
VOLUME ["/data"]
VOLUME /a /b
LABEL a=b "c d"=e
ENTRYPOINT ["/bin/sh"]
CMD echo hi
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD ["true"]
ONBUILD RUN echo trigger
MAINTAINER someone
FROM scratch
COPY --from=build /x /x
HEALTHCHECK NONE
"#);
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.stages.len(), 2);
    let s = &df.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.base, "${BASE}:${TAG:-latest}");
    assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(s.line, 4);
    let kws: Vec<_> = s.instructions.iter().map(|i| i.keyword()).collect();
    assert_eq!(
        kws,
        [
            "RUN",
            "RUN",
            "RUN",
            "COPY",
            "ADD",
            "ENV",
            "ENV",
            "ARG",
            "WORKDIR",
            "USER",
            "EXPOSE",
            "VOLUME",
            "VOLUME",
            "LABEL",
            "ENTRYPOINT",
            "CMD",
            "SHELL",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "ONBUILD",
            "MAINTAINER"
        ]
    );
    match &s.instructions[1].kind {
        Kind::Run(r) => assert_eq!(r.cmd, Cmd::Exec(vec!["echo".into(), "exec".into()])),
        k => panic!("{k:?}"),
    }
    match &s.instructions[2].kind {
        Kind::Run(r) => {
            assert_eq!(r.mounts[0].kind, "cache");
            assert_eq!(r.mounts[0].target(), Some("/cache"));
            assert_eq!(r.network.as_deref(), Some("none"));
            assert_eq!(r.cmd, Cmd::Shell("echo m".into()));
        }
        k => panic!("{k:?}"),
    }
    match &s.instructions[3].kind {
        Kind::Copy(c) => {
            assert_eq!(c.srcs, ["a", "b"]);
            assert_eq!(c.dest, "/dst/");
            assert_eq!(c.chown.as_deref(), Some("1:2"));
            assert_eq!(c.chmod.as_deref(), Some("644"));
        }
        k => panic!("{k:?}"),
    }
    match &s.instructions[5].kind {
        Kind::Env(v) => assert_eq!(
            v,
            &[
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ]
        ),
        k => panic!("{k:?}"),
    }
    match &s.instructions[6].kind {
        Kind::Env(v) => assert_eq!(v, &[("LEGACY".into(), "value with spaces".into())]),
        k => panic!("{k:?}"),
    }
    match &s.instructions[18].kind {
        Kind::Healthcheck(Some(h)) => {
            assert_eq!(h.test, ["CMD", "true"]);
            assert_eq!(h.interval, Some(std::time::Duration::from_secs(5)));
            assert_eq!(h.retries, Some(3));
        }
        k => panic!("{k:?}"),
    }
    match &s.instructions[19].kind {
        Kind::Onbuild(t, i) => {
            assert_eq!(t, "RUN echo trigger");
            assert_eq!(i.keyword(), "RUN");
        }
        k => panic!("{k:?}"),
    }
    match &df.stages[1].instructions[0].kind {
        Kind::Copy(c) => assert_eq!(c.from.as_deref(), Some("build")),
        k => panic!("{k:?}"),
    }
    assert_eq!(df.stages[1].instructions[1].kind, Kind::Healthcheck(None));
}

#[test]
fn continuations_and_comments() {
    let df = p("FROM busybox\nRUN echo a \\\n  # a comment\n\n    b \\\n c\nRUN x\n");
    let s = &df.stages[0];
    assert_eq!(s.instructions[0].line, 2);
    assert_eq!(
        s.instructions[0].kind,
        Kind::Run(RunArgs {
            cmd: Cmd::Shell("echo a     b  c".into()),
            mounts: vec![],
            network: None,
            heredocs: vec![],
        })
    );
    assert_eq!(s.instructions[1].line, 7);
}

#[test]
fn escape_directive() {
    let df = p("# escape=`\nFROM busybox\nRUN echo a `\n b\nCOPY c:\\x /y\n");
    assert_eq!(df.directives.escape, '`');
    let s = &df.stages[0];
    assert_eq!(
        s.instructions[0].kind,
        Kind::Run(RunArgs {
            cmd: Cmd::Shell("echo a  b".into()),
            mounts: vec![],
            network: None,
            heredocs: vec![]
        })
    );
    // a directive after a comment is a comment
    let df = p("# hello\n# escape=`\nFROM busybox\nRUN a \\\n b\n");
    assert_eq!(df.directives.escape, '\\');
}

#[test]
fn heredocs() {
    let df = p("FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-\"END\" /f\n\thello $X\n\tEND\nRUN cat <<A <<B > /x\na\nA\nb\nB\nRUN echo after\n");
    let s = &df.stages[0];
    match &s.instructions[0].kind {
        Kind::Run(r) => {
            assert_eq!(r.heredocs.len(), 1);
            assert_eq!(r.heredocs[0].body, "echo one\necho two\n");
            assert!(r.heredocs[0].expand);
        }
        k => panic!("{k:?}"),
    }
    match &s.instructions[1].kind {
        Kind::Copy(c) => {
            assert_eq!(c.srcs, ["<<-\"END\""]);
            assert_eq!(c.heredocs[0].body, "hello $X\n");
            assert!(!c.heredocs[0].expand);
        }
        k => panic!("{k:?}"),
    }
    match &s.instructions[2].kind {
        Kind::Run(r) => {
            assert_eq!(r.heredocs.len(), 2);
            assert_eq!(r.heredocs[1].body, "b\n");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(s.instructions[3].line, 14);
    let e = err("FROM busybox\nRUN <<EOF\necho\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated heredoc"), "{e}");
}

#[test]
fn errors_name_the_line() {
    let e = err("FROM busybox\n\nRUN true\nFROBNICATE x\n");
    assert_eq!(
        e.to_string(),
        "Dockerfile:4: unknown instruction: FROBNICATE"
    );
    assert_eq!(err("RUN true\n").line, 1);
    assert_eq!(err("FROM a b\n").line, 1);
    assert_eq!(err("FROM busybox\nCOPY onlyone\n").line, 2);
    assert_eq!(err("FROM busybox\nSHELL /bin/sh\n").line, 2);
    assert_eq!(err("FROM busybox\nRUN --bogus true\n").line, 2);
    assert_eq!(err("FROM busybox\nENV =x\n").line, 2);
    assert_eq!(
        err("FROM busybox\nHEALTHCHECK --interval=x CMD true\n").line,
        2
    );
    assert_eq!(err("FROM a AS x\nFROM b AS x\n").line, 2);
    assert_eq!(err("FROM a\nONBUILD FROM b\n").line, 2);
    assert_eq!(err("# escape=x\nFROM a\n").line, 1);
    assert!(err("").message.contains("no FROM"));
}

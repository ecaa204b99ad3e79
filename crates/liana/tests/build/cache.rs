//! The layer cache.

use crate::common::Instance;
use crate::{build, context, fx, ran_lines};

#[test]
fn cache_reuses_and_invalidates_from_the_changed_step() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\nRUN echo step-one > /one\nCOPY a.txt /a.txt\nRUN echo step-two && cat /a.txt > /two\n\
         COPY b.txt /b.txt\nRUN echo step-three\n",
        fx.image()
    );
    let ctx = context(
        &l,
        "ctx",
        &[("Dockerfile", &df), ("a.txt", "A1"), ("b.txt", "B1")],
    );
    let o = build(&l, &ctx, &["-t", "c:1"]);
    o.ok("cold build");
    for s in ["step-one", "step-two", "step-three"] {
        assert!(o.stderr.contains(s), "{}", o.stderr);
    }
    let first = o.stdout.trim().to_string();
    // unchanged: no RUN step runs
    let o = build(&l, &ctx, &["-t", "c:2"]);
    o.ok("cached build");
    assert!(ran_lines(&o.stderr).is_empty(), "{}", o.stderr);
    assert_eq!(o.stderr.matches("CACHED").count(), 5, "{}", o.stderr);
    assert_eq!(
        l.ok(&["run", "--rm", "c:2", "cat", "/two"]),
        "A1",
        "the cached image has the cached layers"
    );
    let _ = first;
    // a.txt changes: the steps from its COPY on run again, the one before does not
    std::fs::write(ctx.join("a.txt"), "A2").unwrap();
    let o = build(&l, &ctx, &["-t", "c:3"]);
    o.ok("build after a change");
    let ran = ran_lines(&o.stderr).join("\n");
    assert!(!ran.contains("step-one"), "{}", o.stderr);
    assert!(
        ran.contains("step-two") && ran.contains("step-three"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.matches("CACHED").count(), 1, "{}", o.stderr);
    assert_eq!(l.ok(&["run", "--rm", "c:3", "cat", "/two"]), "A2");
    // --no-cache runs everything
    let o = build(&l, &ctx, &["--no-cache", "-t", "c:4"]);
    o.ok("--no-cache");
    assert!(!o.stderr.contains("CACHED"), "{}", o.stderr);
    assert!(o.stderr.contains("step-one"), "{}", o.stderr);
    // a build arg used by a RUN step is part of its key
    let df2 = format!("FROM {}\nARG V=1\nRUN echo value-$V\n", fx.image());
    std::fs::write(ctx.join("Dockerfile"), df2).unwrap();
    build(&l, &ctx, &["-t", "c:5"]).ok("arg build");
    let o = build(&l, &ctx, &["-t", "c:6", "--build-arg", "V=2"]);
    o.ok("arg build 2");
    assert!(o.stderr.contains("value-2"), "{}", o.stderr);
}

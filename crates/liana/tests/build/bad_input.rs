//! Bad input: clear errors naming the culprit, nothing left behind or tagged.

use crate::common::Instance;
use crate::{assert_clean, build, context, fx};

fn not_tagged(l: &Instance, name: &str) {
    let imgs = l.ok(&["images"]);
    assert!(!imgs.contains(name), "{name} is tagged:\n{imgs}");
}

#[test]
fn syntax_error_names_the_line() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!("FROM {}\n\nRUN true\nCOPY onlyone\n", fx.image());
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let o = build(&l, &ctx, &["-t", "bad1"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Dockerfile:4"), "{}", o.stderr);
    assert!(
        o.stderr.contains("COPY requires at least two arguments"),
        "{}",
        o.stderr
    );
    std::fs::write(ctx.join("Dockerfile"), "FROM x\nFROBNICATE\n").unwrap();
    let o = build(&l, &ctx, &[]);
    assert!(
        o.stderr
            .contains("Dockerfile:2: unknown instruction: FROBNICATE"),
        "{}",
        o.stderr
    );
    not_tagged(&l, "bad1");
}

#[test]
fn missing_copy_source_is_named() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!("FROM {}\nRUN true\nCOPY no-such-file.txt /x\n", fx.image());
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let o = build(&l, &ctx, &["-t", "bad2"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("Dockerfile:3") && o.stderr.contains("no-such-file.txt"),
        "{}",
        o.stderr
    );
    not_tagged(&l, "bad2");
    assert_clean(&l);
}

#[test]
fn failing_run_stops_with_its_code_and_output() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {}\nRUN echo before > /before\nRUN echo about-to-fail && exit 7\nRUN echo never\n",
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let o = build(&l, &ctx, &["-t", "bad3"]);
    assert_eq!(o.code, 7, "{}", o.stderr);
    assert!(o.stderr.contains("about-to-fail"), "{}", o.stderr);
    assert!(o.stderr.contains("Dockerfile:3"), "{}", o.stderr);
    assert!(o.stderr.contains("exited with code 7"), "{}", o.stderr);
    assert!(!o.stderr.contains("#4 0."), "{}", o.stderr);
    not_tagged(&l, "bad3");
    assert_clean(&l);
    // no container, no active snapshot of the build left
    assert!(l.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

#[test]
fn context_escapes_are_refused() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    std::fs::write(l.path().join("outside"), "secret").unwrap();
    for (src, setup) in [("../outside", false), ("link", true), ("abs", true)] {
        let df = format!("FROM {}\nCOPY {src} /x\n", fx.image());
        let ctx = context(
            &l,
            &format!("ctx-{}", src.replace(['.', '/'], "")),
            &[("Dockerfile", &df)],
        );
        if setup {
            std::os::unix::fs::symlink("../outside", ctx.join("link")).unwrap();
            std::os::unix::fs::symlink(l.path().join("outside"), ctx.join("abs")).unwrap();
        }
        let o = build(&l, &ctx, &["-t", "bad4"]);
        assert_ne!(o.code, 0, "{src}");
        assert!(
            o.stderr.contains(src) && o.stderr.contains("escapes the build context"),
            "{src}: {}",
            o.stderr
        );
    }
    not_tagged(&l, "bad4");
    assert_clean(&l);
}

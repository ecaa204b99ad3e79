//! slirp4netns and pasta, rootless (and as root, where pasta needs a namespace file).

use crate::common::{fixture, Fixture, Instance};
use crate::{free_port, http_eventually, leftovers, serve_cmd, LoopbackServer};

/// Both helpers: the container reaches a server on the host's loopback, and a
/// published port answers on the host's 127.0.0.1; nothing is left after rm.
pub fn host_loopback_and_publish(l: &Instance, fx: &Fixture) {
    let server = LoopbackServer::start("host-loopback-ok");
    let img = fx.image();
    // slirp4netns: the gateway 10.0.2.2 is the host's loopback when allowed.
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns:allow_host_loopback=true",
        &img,
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://10.0.2.2:{}/", server.port),
    ]);
    assert_eq!(out.trim(), "host-loopback-ok");
    // pasta: -T forwards the namespace's 127.0.0.1:PORT to the host's.
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        &format!("pasta:-T,{}", server.port),
        &img,
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://127.0.0.1:{}/", server.port),
    ]);
    assert_eq!(out.trim(), "host-loopback-ok");
    for mode in ["slirp4netns", "pasta"] {
        let port = free_port();
        let id = l.run_d(&[
            "--network",
            mode,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            &img,
            "sh",
            "-c",
            &serve_cmd(&format!("{mode}-published"), 8080),
        ]);
        http_eventually(&format!("127.0.0.1:{port}"), &format!("{mode}-published"));
        l.ok(&["rm", "-f", &id]);
        assert_eq!(leftovers(l, &id), Vec::<String>::new(), "{mode}");
    }
}

#[test]
fn rootless_slirp4netns_and_pasta() {
    let Some(fx) = fixture() else { return };
    let l = Instance::rootless(fx);
    host_loopback_and_publish(&l, fx);
    // The rootless default is slirp4netns (here the fixture's config says none: a
    // config of the test's own checks the default).
    let o = l.run(&["run", "--rm", "--network", "bridge", &fx.image(), "true"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("bridge networks need root"),
        "{}",
        o.stderr
    );
}

/// The real defaults (the fixture's config turns them off): bridge for root,
/// slirp4netns for users.
#[test]
fn default_modes() {
    let Some(fx) = fixture() else { return };
    let config = "[network]\ndefault = \"bridge\"\ndefault_rootless = \"slirp4netns\"\n\
                  default_network = \"lnt-def\"\ndefault_bridge = \"lnt-def\"\n\
                  default_subnet = \"10.89.216.0/24\"\n";
    let root = Instance::root(fx).with_config(config);
    let out = root.ok(&[
        "run",
        "--rm",
        &fx.image(),
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    let rm = root.run(&["network", "rm", "lnt-def"]);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", "lnt-def"])
        .output();
    assert!(out.contains("inet 10.89.216.2/24"), "{out}");
    rm.ok("network rm lnt-def");
    let user = Instance::rootless(fx).with_config(config);
    let out = user.ok(&[
        "run",
        "--rm",
        &fx.image(),
        "ip",
        "-4",
        "addr",
        "show",
        "tap0",
    ]);
    assert!(out.contains("inet 10.0.2.100/24"), "{out}");
}

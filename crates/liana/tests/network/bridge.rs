//! Rootful bridge networks.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};

use crate::common::{fixture, Instance};
use crate::{free_port, http_eventually, leftovers, link_exists, serve_cmd, TestNet};

/// A namespace playing "the internet": 198.18.N.2 behind a veth whose host end is
/// 198.18.N.1, with a web server; no route back to any container network.
struct Internet {
    ns: String,
    veth: String,
    server: Option<Child>,
    _www: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Internet {
    fn new(n: u8, text: &str) -> Self {
        let ns = format!("lnt-inet-{}-{n}", std::process::id());
        let veth = format!("lnti{n}-{}", std::process::id() % 100_000);
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), format!("{text}\n")).unwrap();
        let mut me = Internet {
            ns: ns.clone(),
            veth: veth.clone(),
            server: None,
            _www: www,
        };
        let (host, far) = (format!("198.18.{n}.1/24"), format!("198.18.{n}.2/24"));
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["addr", "add", &host, "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&["-n", &ns, "addr", "add", &far, "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        me.server = Some(
            Command::new("ip")
                .args(["netns", "exec", &ns, "busybox", "httpd", "-f", "-p"])
                .arg(format!("198.18.{n}.2:80"))
                .arg("-h")
                .arg(me._www.path())
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        me
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn names_published_port_nat_and_teardown() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let net = TestNet::create(&l, "lnt-a", "10.89.211.0/24", "lnt-a");
    let inet = Internet::new(211, "internet-ok");
    // A subnet the host routes elsewhere is refused.
    let o = l.run(&[
        "network",
        "create",
        "--subnet",
        "198.18.211.0/24",
        "lnt-clash",
    ]);
    assert!(
        o.stderr
            .contains("overlaps the host's route to 198.18.211.0/24"),
        "{}",
        o.stderr
    );
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let web = l.run_d(&[
        "--name",
        "web",
        "--network",
        "lnt-a",
        "-p",
        &publish,
        &fx.image(),
        "sh",
        "-c",
        &serve_cmd("published-ok", 80),
    ]);
    // The published port answers on the host's loopback.
    http_eventually(&format!("127.0.0.1:{port}"), "published-ok");
    // Another container reaches it by name.
    let out = l.ok(&[
        "run", "--rm", "--name", "client", "--network", "lnt-a", &fx.image(), "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web/index.html && exit 0; sleep 0.3; done; exit 1",
    ]);
    assert_eq!(out.trim(), "published-ok");
    // ... and through the network's name server (on the gateway).
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-a",
        &fx.image(),
        "sh",
        "-c",
        "head -1 /etc/resolv.conf; nslookup web 10.89.211.1",
    ]);
    assert!(out.starts_with("nameserver 10.89.211.1\n"), "{out}");
    assert!(out.contains("Address: 10.89.211.2"), "{out}");
    // Outbound NAT: the "internet" has no route back to 10.89.211.0/24.
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-a",
        &fx.image(),
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        "http://198.18.211.2/index.html",
    ]);
    assert_eq!(out.trim(), "internet-ok");
    let o = l.run(&[
        "run",
        "--rm",
        "--network",
        "lnt-a",
        "-p",
        &publish,
        &fx.image(),
        "true",
    ]);
    assert!(
        o.stderr.contains(&format!(
            "host port {port}/tcp is already published by container web"
        )),
        "{}",
        o.stderr
    );
    let ps = l.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    // container:ID shares web's namespace (its address).
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        &fx.image(),
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains("inet 10.89.211.2/24"), "{out}");
    // The container's own /etc/hosts names it with its address.
    let hosts = l.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.89.211.2\t"), "{hosts}");
    assert!(hosts.contains(" web\n"), "{hosts}");
    // stop tears down; start sets up again.
    l.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(leftovers(&l, &web), Vec::<String>::new());
    l.ok(&["start", "web"]);
    http_eventually(&format!("127.0.0.1:{port}"), "published-ok");
    l.ok(&["rm", "-f", "web"]);
    assert_eq!(leftovers(&l, &web), Vec::<String>::new());
    let insp = l.ok(&["network", "inspect", "lnt-a"]);
    let v: serde_json::Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(
        v[0]["Containers"],
        serde_json::json!({}),
        "leases left: {insp}"
    );
    l.ok(&["network", "rm", "lnt-a"]);
    assert!(!link_exists("lnt-a"), "bridge left");
    let dns = Command::new("pgrep")
        .args(["-f", "dns-serve lnt-a"])
        .output()
        .unwrap();
    assert!(!dns.status.success(), "name server left");
    drop(net);
    drop(inet);
}

#[test]
fn fifty_containers_fifty_addresses() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let _net = TestNet::create(&l, "lnt-b", "10.89.212.0/24", "lnt-b");
    let img = fx.image();
    // Pulled once first: concurrent first pulls of one image into a new store race in
    // the image library (seen here: "content store: open .../ingest/.../data").
    l.ok(&["pull", &img]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..5)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| l.run_d(&["--network", "lnt-b", &img, "sleep", "600"]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), 50);
    let mut addrs = BTreeSet::new();
    for id in &ids {
        let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", id])).unwrap();
        let ip = v[0]["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ip.starts_with("10.89.212."), "{ip}");
        addrs.insert(ip);
    }
    assert_eq!(addrs.len(), 50, "{addrs:?}");
    // The address the container really has is the recorded one.
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", &ids[7]])).unwrap();
    let want = v[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let got = l.ok(&["exec", &ids[7], "ip", "-4", "addr", "show", "eth0"]);
    assert!(got.contains(&format!("inet {want}/24")), "{got}");
    for id in &ids {
        l.ok(&["rm", "-f", id]);
    }
    for id in &ids {
        assert_eq!(leftovers(&l, id), Vec::<String>::new());
    }
}

#[test]
fn teardown_after_a_crash() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let _net = TestNet::create(&l, "lnt-c", "10.89.213.0/24", "lnt-c");
    let port = free_port();
    let publish = format!("{port}:80");
    let id = l.run_d(&[
        "--network",
        "lnt-c",
        "-p",
        &publish,
        &fx.image(),
        "sleep",
        "600",
    ]);
    assert!(link_exists(&format!("lv{}", &id[..12])));
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", &id])).unwrap();
    let monitor = v[0]["State"]["MonitorPid"].as_i64().unwrap();
    // SAFETY: kill takes integers; the pid is the container's monitor.
    unsafe { libc::kill(monitor as i32, libc::SIGKILL) };
    l.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&l, &id), Vec::<String>::new());
}

/// Hairpin NAT: a port published on every host address answers a container through
/// the gateway's address, the container behind the port itself included (its packets
/// leave and re-enter by the same bridge port, and are masqueraded); with nftables and
/// with the iptables fallback.
#[test]
fn hairpin_to_a_published_port() {
    let Some(fx) = fixture() else { return };
    for (l, what) in [
        (Instance::root(fx), "nftables"),
        (
            Instance::root(fx).with_config("[network]\nfirewall = \"iptables\"\n"),
            "iptables",
        ),
    ] {
        let _net = TestNet::create(&l, "lnt-h", "10.89.218.0/24", "lnt-h");
        let port = free_port();
        let publish = format!("{port}:80");
        let web = l.run_d(&[
            "--network",
            "lnt-h",
            "-p",
            &publish,
            &fx.image(),
            "sh",
            "-c",
            &serve_cmd("hairpin-ok", 80),
        ]);
        http_eventually(&format!("127.0.0.1:{port}"), "hairpin-ok");
        let url = format!("http://10.89.218.1:{port}/index.html");
        let get = format!("timeout 10 wget -q -O - {url}");
        let out = l.ok(&["exec", &web, "sh", "-c", &get]);
        assert_eq!(out.trim(), "hairpin-ok", "{what}: the container itself");
        let out = l.ok(&[
            "run",
            "--rm",
            "--network",
            "lnt-h",
            &fx.image(),
            "sh",
            "-c",
            &get,
        ]);
        assert_eq!(out.trim(), "hairpin-ok", "{what}: another container");
        l.ok(&["rm", "-f", &web]);
        assert_eq!(leftovers(&l, &web), Vec::<String>::new());
    }
}

/// Sets the filter table's FORWARD policy to DROP (as docker does) and back.
struct ForwardDrop(String);

impl ForwardDrop {
    fn set() -> Self {
        let out = Command::new("iptables")
            .args(["-w", "-S", "FORWARD"])
            .output()
            .unwrap();
        let before = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("-P FORWARD "))
            .unwrap_or("ACCEPT")
            .trim()
            .to_string();
        let st = Command::new("iptables")
            .args(["-w", "-P", "FORWARD", "DROP"])
            .status()
            .unwrap();
        assert!(st.success());
        ForwardDrop(before)
    }
}

impl Drop for ForwardDrop {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-w", "-P", "FORWARD", &self.0])
            .status();
    }
}

fn filter_rules() -> String {
    let out = Command::new("iptables-save")
        .args(["-t", "filter"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host whose FORWARD policy drops (docker installed): the container's own accept
/// rules let its outbound NAT'd traffic and a connection to its published port from
/// outside through, and go with it.
#[test]
fn forward_policy_drop() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let _net = TestNet::create(&l, "lnt-w", "10.89.219.0/24", "lnt-w");
    let inet = Internet::new(219, "internet-ok");
    let port = free_port();
    let publish = format!("{port}:80");
    let drop_policy = ForwardDrop::set();
    let web = l.run_d(&[
        "--network",
        "lnt-w",
        "-p",
        &publish,
        &fx.image(),
        "sh",
        "-c",
        &serve_cmd("forwarded-ok", 80),
    ]);
    let chain = format!("LIANA-{}-F", &web[..12]);
    assert!(
        filter_rules().contains(&format!("-A FORWARD -j {chain}")),
        "{}",
        filter_rules()
    );
    // Outbound, NAT'd, to the "internet" namespace.
    let out = l.ok(&[
        "exec",
        &web,
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        "http://198.18.219.2/index.html",
    ]);
    assert_eq!(out.trim(), "internet-ok");
    // Inbound from that namespace to the published port on the host's address there.
    let o = Command::new("ip")
        .args([
            "netns", "exec", &inet.ns, "busybox", "timeout", "10", "wget", "-q", "-O", "-",
        ])
        .arg(format!("http://198.18.219.1:{port}/index.html"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "forwarded-ok",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    l.ok(&["rm", "-f", &web]);
    assert!(!filter_rules().contains(&chain), "{}", filter_rules());
    drop(drop_policy);
    assert_eq!(leftovers(&l, &web), Vec::<String>::new());
}

/// The network's name server forwards names that are not the network's to
/// `[network] dns_forward` (here a fake upstream on the host's loopback, which the
/// container could not reach itself) and still answers the network's own names.
#[test]
fn name_server_forwards_other_names() {
    let Some(fx) = fixture() else { return };
    let up = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = up.recv_from(&mut b) {
            let Some(q) = liana_network::dns::parse_query(&b[..n]) else {
                continue;
            };
            let (ips, rcode) = if q.name == "outside.test" {
                (vec![std::net::Ipv4Addr::new(192, 0, 2, 77)], 0)
            } else {
                (vec![], liana_network::dns::NXDOMAIN)
            };
            let _ = up.send_to(&liana_network::dns::reply(&b[..n], &q, &ips, rcode), from);
        }
    });
    let l = Instance::root(fx).with_config(&format!(
        "[network]\ndefault = \"none\"\ndns_forward = [\"127.0.0.1:{port}\"]\n"
    ));
    let _net = TestNet::create(&l, "lnt-g", "10.89.220.0/24", "lnt-g");
    let web = l.run_d(&[
        "--network",
        "lnt-g",
        "--name",
        "inside",
        &fx.image(),
        "sleep",
        "600",
    ]);
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-g",
        &fx.image(),
        "sh",
        "-c",
        "nslookup outside.test 10.89.220.1; nslookup inside 10.89.220.1; \
         nslookup nowhere.test 10.89.220.1 || echo nowhere-failed",
    ]);
    assert!(out.contains("Address: 192.0.2.77"), "{out}");
    assert!(out.contains("Address: 10.89.220.2"), "{out}");
    assert!(out.contains("nowhere-failed"), "{out}");
    l.ok(&["rm", "-f", &web]);
}

#[test]
fn ip_mac_dns_add_host() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let _net = TestNet::create(&l, "lnt-d", "10.89.214.0/24", "lnt-d");
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-d",
        "--ip",
        "10.89.214.77",
        "--mac-address",
        "02:11:22:33:44:55",
        "--dns",
        "10.89.214.1",
        "--add-host",
        "db.example:10.89.214.99",
        "--hostname",
        "box",
        &fx.image(),
        "sh",
        "-c",
        "ip addr show eth0; cat /etc/hosts /etc/resolv.conf; ip route",
    ]);
    assert!(out.contains("inet 10.89.214.77/24"), "{out}");
    assert!(out.contains("link/ether 02:11:22:33:44:55"), "{out}");
    assert!(out.contains("10.89.214.77\tbox"), "{out}");
    assert!(out.contains("10.89.214.99\tdb.example"), "{out}");
    assert!(out.contains("nameserver 10.89.214.1"), "{out}");
    assert!(out.contains("default via 10.89.214.1"), "{out}");
    // --network-alias: more names, in DNS and in the others' /etc/hosts.
    let aliased = l.run_d(&[
        "--network",
        "lnt-d",
        "--network-alias",
        "api",
        "--network-alias",
        "cache.internal",
        "--ip",
        "10.89.214.50",
        &fx.image(),
        "sleep",
        "600",
    ]);
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-d",
        &fx.image(),
        "sh",
        "-c",
        "cat /etc/hosts; nslookup api 10.89.214.1; nslookup CACHE.internal 10.89.214.1",
    ]);
    assert!(out.contains("10.89.214.50\tapi\n"), "{out}");
    assert!(out.contains("10.89.214.50\tcache.internal\n"), "{out}");
    assert_eq!(out.matches("Address: 10.89.214.50").count(), 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&l.ok(&["inspect", &aliased])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["lnt-d"]["Aliases"],
        serde_json::json!(["api", "cache.internal"])
    );
    l.ok(&["rm", "-f", &aliased]);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    let _net = TestNet::create(&l, "lnt-e", "10.89.215.0/29", "lnt-e");
    let img = fx.image();
    let cases: &[(&[&str], &str)] = &[
        (&["--network", "nosuchnet"], "no such network: nosuchnet"),
        (
            &["--network", "lnt-e", "-p", "80:http"],
            "invalid port mapping \"80:http\"",
        ),
        (
            &["--network", "lnt-e", "-p", "8000-8001:80"],
            "differ in length",
        ),
        (
            &["--network", "none", "-p", "8080:80"],
            "publishing ports needs",
        ),
        (
            &["--network", "lnt-e", "--ip", "10.89.99.2"],
            "10.89.99.2 is not a free host address",
        ),
        (
            &["--network", "lnt-e", "--ip", "10.89.215.1"],
            "10.89.215.1 is not a free host address",
        ),
        (
            &["--network", "lnt-e", "--mac-address", "zz"],
            "--mac-address",
        ),
        (&["--network", "lnt-e", "--dns", "nope"], "--dns"),
        (&["--network", "host", "--ip", "10.89.215.3"], "--ip"),
        (
            &["--network", "none", "--network-alias", "x"],
            "--network-alias: only for bridge networks",
        ),
        (
            &["--network", "lnt-e", "--network-alias", "bad name!"],
            "\"bad name!\" is not a valid host name",
        ),
        (&["--network", "slirp4netns:bogus=1"], "bogus"),
        // Fails after the address was leased: the lease goes back (the /29 below
        // would be one address short otherwise).
        (&["--network", "lnt-e", "--memory", "lots"], "--memory"),
    ];
    for (flags, want) in cases {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[&img, "true"]);
        let o = l.run(&a);
        assert_ne!(o.code, 0, "{a:?} succeeded");
        assert!(o.stderr.contains(want), "{a:?}: {}", o.stderr);
    }
    // The same address twice.
    l.run_d(&[
        "--network",
        "lnt-e",
        "--ip",
        "10.89.215.3",
        &img,
        "sleep",
        "600",
    ]);
    let o = l.run(&[
        "run",
        "--rm",
        "--network",
        "lnt-e",
        "--ip",
        "10.89.215.3",
        &img,
        "true",
    ]);
    assert!(
        o.stderr.contains("10.89.215.3 is already in use"),
        "{}",
        o.stderr
    );
    // A /29 holds five containers: the sixth is refused.
    for _ in 0..4 {
        l.run_d(&["--network", "lnt-e", &img, "sleep", "600"]);
    }
    let o = l.run(&["run", "--rm", "--network", "lnt-e", &img, "true"]);
    assert!(o.stderr.contains("no free address left"), "{}", o.stderr);
    assert_eq!(l.all_ids().len(), 5, "a refused run left a container");
    // Networks.
    for (args, want) in [
        (
            &["network", "create", "--subnet", "10.89.215.0/33", "x"][..],
            "invalid subnet",
        ),
        (
            &["network", "create", "--subnet", "10.89.215.0/24", "x"][..],
            "overlaps",
        ),
        (
            &["network", "create", "--subnet", "10.89.216.0/24", "lnt-e"][..],
            "already exists",
        ),
        (
            &[
                "network",
                "create",
                "--interface-name",
                "much-too-long-name",
                "x",
            ][..],
            "--interface-name",
        ),
        (
            &["network", "rm", "nosuchnet"][..],
            "no such network: nosuchnet",
        ),
        (&["network", "rm", "lnt-e"][..], "in use by container"),
    ] {
        let o = l.run(args);
        assert_ne!(o.code, 0, "{args:?} succeeded");
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
    let o = l.run(&["network", "inspect", "nosuchnet"]);
    assert_eq!(o.code, 1);
    // -f removes the containers with the network.
    let ids = l.all_ids();
    l.ok(&["network", "rm", "-f", "lnt-e"]);
    assert!(l.all_ids().is_empty());
    for id in &ids {
        assert_eq!(leftovers(&l, id), Vec::<String>::new());
    }
    assert!(!link_exists("lnt-e"));
}

#[test]
fn rootful_slirp4netns_and_pasta() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx);
    crate::usermode::host_loopback_and_publish(&l, fx);
}

/// Where only iptables exists (forced here by the config): the same NAT with
/// iptables-restore, and nothing left after rm.
#[test]
fn iptables_fallback() {
    let Some(fx) = fixture() else { return };
    let l = Instance::root(fx).with_config("[network]\nfirewall = \"iptables\"\n");
    let _net = TestNet::create(&l, "lnt-f", "10.89.217.0/24", "lnt-f");
    let _inet = Internet::new(217, "internet-via-iptables");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let web = l.run_d(&[
        "--network",
        "lnt-f",
        "-p",
        &publish,
        &fx.image(),
        "sh",
        "-c",
        &serve_cmd("iptables-published", 80),
    ]);
    http_eventually(&format!("127.0.0.1:{port}"), "iptables-published");
    let out = l.ok(&[
        "run",
        "--rm",
        "--network",
        "lnt-f",
        &fx.image(),
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        "http://198.18.217.2/index.html",
    ]);
    assert_eq!(out.trim(), "internet-via-iptables");
    let chain = format!("LIANA-{}", &web[..12]);
    let save = || {
        String::from_utf8_lossy(
            &Command::new("iptables-save")
                .args(["-t", "nat"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(save().contains(&chain));
    l.ok(&["rm", "-f", &web]);
    assert!(!save().contains(&chain), "{}", save());
    assert_eq!(leftovers(&l, &web), Vec::<String>::new());
}

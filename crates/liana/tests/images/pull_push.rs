use crate::common::*;

#[test]
fn pull_inspect_tag_rmi_prune() {
    let Some(fx) = fixture() else { return };
    let r = Root::new();
    let img = format!("{}/layered:latest", fx.get("PLAIN"));
    let o = r.run(&["pull", "--tls-verify=false", &img]);
    o.ok();
    let id = o.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "pull prints the image id: {}", o.stdout);
    assert!(
        o.stderr.contains("Resolved"),
        "progress lines on a non-tty: {}",
        o.stderr
    );
    r.with_rootfs(&img, check_layered_tree);

    let imgs = r.images_json();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0]["Id"], id.as_str());
    let table = r.run(&["images"]);
    assert!(
        table
            .ok()
            .stdout
            .contains(&format!("{}/layered", fx.get("PLAIN"))),
        "{}",
        table.stdout
    );
    let ins = r.inspect(&img);
    assert_eq!(ins["Id"], id.as_str());
    assert_eq!(ins["Architecture"], "amd64");
    assert_eq!(ins["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(ins["Digest"], manifest_digest(fx, "layered").as_str());
    // short ID and a short name find the image too
    assert_eq!(r.inspect(&id[..12])["Id"], id.as_str());

    r.run(&["tag", &img, "localhost/mine:v1"]).ok();
    assert_eq!(r.inspect("localhost/mine:v1")["Id"], id.as_str());
    assert_eq!(r.inspect("mine:v1")["Id"], id.as_str(), "short name lookup");
    let both = r.inspect(&id);
    assert_eq!(both["RepoTags"].as_array().unwrap().len(), 2);
    // by ID with two names: refused without -f
    r.run(&["rmi", &id]).fails_with(&["2 names", "--force"]);
    r.run(&["rmi", "localhost/mine:v1"]).ok();
    assert_eq!(r.images_json().len(), 1);
    assert!(!r.blobs().is_empty());
    r.run(&["rmi", "-f", &id]).ok();
    assert!(r.images_json().is_empty());
    assert!(
        r.blobs().is_empty(),
        "rmi collects garbage: {:?}",
        r.blobs()
    );
    assert!(r.store().snapshotter().walk().unwrap().is_empty());
    r.run(&["rmi", "nope:latest"]).fails_with(&["nope"]);
    assert_eq!(r.run(&["rmi", "nope:latest"]).code, 1, "not found exits 1");

    // prune: -a removes everything, plain prune only garbage
    r.run(&["pull", "-q", "--tls-verify=false", &img]).ok();
    let p = r.run(&["image", "prune"]);
    assert!(p.ok().stdout.contains("Removed 0 images"), "{}", p.stdout);
    assert_eq!(r.images_json().len(), 1);
    let p = r.run(&["image", "prune", "-a"]);
    assert!(p.ok().stdout.contains("Removed 1 images"), "{}", p.stdout);
    r.assert_empty();
}

#[test]
fn pull_schema2_by_digest_and_cached() {
    let Some(fx) = fixture() else { return };
    let r = Root::new();
    let plain = fx.get("PLAIN");
    r.run(&[
        "pull",
        "--tls-verify=false",
        &format!("{plain}/busybox:v2s2"),
    ])
    .ok();
    let ins = r.inspect(&format!("{plain}/busybox:v2s2"));
    assert_eq!(
        ins["ManifestType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let d = manifest_digest(fx, "busybox");
    let by_digest = format!("{plain}/busybox@{d}");
    let o = r.run(&["pull", "--tls-verify=false", &by_digest]);
    o.ok();
    assert!(
        o.stderr.contains("already exists"),
        "the shared layer is not fetched again: {}",
        o.stderr
    );
    assert_eq!(r.inspect(&by_digest)["Digest"], d.as_str());
    // registries.conf marks the registry insecure: no --tls-verify needed; short names
    // resolve through unqualified-search-registries
    r.set_registries_conf(&format!(
        "unqualified-search-registries = [\"{plain}\"]\n[[registry]]\nlocation = \"{plain}\"\ninsecure = true\n"
    ));
    r.run(&["pull", "layered"]).ok();
    assert!(r.inspect(&format!("{plain}/layered:latest"))["Id"].is_string());
    // a blocked registry is refused before any request
    r.set_registries_conf(&format!(
        "[[registry]]\nlocation = \"{plain}\"\nblocked = true\n"
    ));
    r.run(&["pull", &format!("{plain}/busybox:latest")])
        .fails_with(&["blocked"]);
}

#[test]
fn multiarch_platform_selection() {
    let Some(fx) = fixture() else { return };
    let img = format!("{}/multiarch:latest", fx.get("PLAIN"));
    let r = Root::new();
    r.run(&["pull", "--tls-verify=false", &img]).ok();
    assert_eq!(r.inspect(&img)["Architecture"], "amd64");
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &img,
    ])
    .ok();
    let ins = r.inspect(&img);
    assert_eq!(ins["Architecture"], "arm64");
    assert_eq!(ins["Variant"], "v8");
    let r = Root::new();
    r.run(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/s390x",
        &img,
    ])
    .fails_with(&["multiarch", "linux/s390x", "linux/amd64, linux/arm64/v8"]);
    r.assert_empty();
    r.run(&["pull", "--platform", "bogus", &img])
        .fails_with(&["invalid platform"]);
}

#[test]
fn push_roundtrip_and_mount() {
    let Some(fx) = fixture() else { return };
    let plain = fx.get("PLAIN");
    let r = Root::new();
    r.run(&[
        "pull",
        "-q",
        "--tls-verify=false",
        &format!("{plain}/layered:latest"),
    ])
    .ok();
    let dest = format!("{plain}/pushed/layered:v1");
    r.run(&["tag", &format!("{plain}/layered:latest"), &dest])
        .ok();
    let o = r.run(&["push", "--tls-verify=false", &dest]);
    o.ok();
    assert!(
        o.stderr.contains("mounted") || o.stderr.contains("already exists"),
        "blobs mounted from the source repo: {}",
        o.stderr
    );
    // a real client reads what we pushed
    let sk = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&sk.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&sk.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    // and a fresh store pulls it back to the same image
    let r2 = Root::new();
    r2.run(&["pull", "--tls-verify=false", &dest]).ok();
    assert_eq!(r2.inspect(&dest)["Id"], r.inspect(&dest)["Id"]);
    r2.with_rootfs(&dest, check_layered_tree);
    // push to another destination given on the command line (fresh upload path)
    let other = format!("{plain}/pushed/other:v2");
    r.run(&["push", "--tls-verify=false", &dest, &other]).ok();
    let r3 = Root::new();
    r3.run(&["pull", "--tls-verify=false", &other]).ok();
    // multi-platform image pulled for one platform: the platform manifest is pushed
    r.run(&[
        "pull",
        "-q",
        "--tls-verify=false",
        &format!("{plain}/multiarch:latest"),
    ])
    .ok();
    let mdest = format!("{plain}/pushed/multi:v1");
    r.run(&[
        "push",
        "--tls-verify=false",
        &format!("{plain}/multiarch:latest"),
        &mdest,
    ])
    .ok();
    let r4 = Root::new();
    r4.run(&["pull", "--tls-verify=false", &mdest]).ok();
    assert_eq!(r4.inspect(&mdest)["Architecture"], "amd64");
}

#[test]
fn native_snapshotter_unpacks_the_same_tree() {
    let Some(fx) = fixture() else { return };
    let img = format!("{}/layered:latest", fx.get("PLAIN"));
    let r = Root::new();
    r.run(&[
        "--snapshotter",
        "native",
        "pull",
        "--tls-verify=false",
        &img,
    ])
    .ok();
    let store = liana_images::ImageStore::open(liana_images::StoreOptions {
        snapshotter: liana_images::store::SnapshotterKind::Native,
        ..liana_images::StoreOptions::new(&r.path())
    })
    .unwrap();
    let rec = store.find(&img).unwrap();
    assert_eq!(rec.snapshotter.as_deref(), Some("native"));
    let m = store
        .snapshotter()
        .view("check", rec.snapshot.as_deref())
        .unwrap();
    assert_eq!(m[0].kind, "bind");
    check_layered_tree(&m[0].source);
}

#[test]
fn concurrent_first_pulls_of_one_image_all_succeed() {
    // Several processes pull the same image into an empty store at once: each blob is
    // written by one of them while the others wait on its ingest lock, then find it
    // present (the ingest directory the first writer removed must not fail them).
    let Some(fx) = fixture() else { return };
    let plain = fx.get("PLAIN");
    for round in 0..3 {
        let r = Root::new();
        let image = format!("{plain}/layered:latest");
        let children: Vec<_> = (0..6)
            .map(|_| {
                r.command(&["pull", "-q", "--tls-verify=false", &image])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn liana pull")
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: a concurrent pull failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(r.inspect(&image)["Id"].is_string());
        assert_eq!(r.ingests(), 0, "round {round}: ingests left behind");
    }
}

use crate::common::*;

fn skopeo(args: &[&str]) -> std::process::Output {
    std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo")
}

#[test]
fn save_and_load_every_format() {
    let Some(fx) = fixture() else { return };
    let img = format!("{}/layered:latest", fx.get("PLAIN"));
    let r = Root::new();
    r.run(&["pull", "-q", "--tls-verify=false", &img]).ok();
    let id = r.inspect(&img)["Id"].as_str().unwrap().to_string();
    let out = r.tmp.path();
    let docker = out.join("layered-docker.tar");
    let oci = out.join("layered-oci.tar");
    let ocidir = out.join("layered-oci");
    r.run(&["save", "-o", docker.to_str().unwrap(), &img]).ok();
    r.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        &img,
    ])
    .ok();
    r.run(&[
        "image",
        "save",
        "--format",
        "oci-dir",
        "-o",
        ocidir.to_str().unwrap(),
        &img,
    ])
    .ok();
    // a real client reads our archives
    let s = skopeo(&["inspect", &format!("docker-archive:{}", docker.display())]);
    assert!(
        s.status.success(),
        "skopeo docker-archive: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    let s = skopeo(&["inspect", &format!("oci-archive:{}", oci.display())]);
    assert!(
        s.status.success(),
        "skopeo oci-archive: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    let s = skopeo(&["inspect", &format!("oci:{}:latest", ocidir.display())]);
    assert!(
        s.status.success(),
        "skopeo oci dir: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    for src in [&docker, &oci, &ocidir] {
        let r2 = Root::new();
        let o = r2.run(&["load", "-i", src.to_str().unwrap()]);
        o.ok();
        assert!(
            o.stdout.contains(&img),
            "{} loads as {img}: {}",
            src.display(),
            o.stdout
        );
        assert_eq!(r2.inspect(&img)["Id"], id.as_str(), "{}", src.display());
        r2.with_rootfs(&img, check_layered_tree);
    }
    // we load what a real client wrote
    let theirs = out.join("skopeo-docker.tar");
    let s = skopeo(&[
        "--policy",
        fx.get("POLICY"),
        "copy",
        "-q",
        &format!("oci:{}/layered:latest", fx.get("IMAGES")),
        &format!("docker-archive:{}:example/layered:skopeo", theirs.display()),
    ]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let r3 = Root::new();
    r3.run(&["load", "-i", theirs.to_str().unwrap()]).ok();
    assert_eq!(
        r3.inspect("docker.io/example/layered:skopeo")["Id"],
        id.as_str()
    );
    r3.with_rootfs("example/layered:skopeo", check_layered_tree);
    // garbage in, clear error out, nothing stored
    let junk = out.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let r4 = Root::new();
    r4.run(&["load", "-i", junk.to_str().unwrap()])
        .fails_with(&["junk.tar"]);
    assert!(r4.images_json().is_empty());
}

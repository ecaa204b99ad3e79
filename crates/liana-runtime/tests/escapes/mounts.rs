//! CVE-2021-30465 and mount paths with `..` and symlinks.

use super::*;

// ---------------------------------------------------------------------------------
// CVE-2021-30465: mount destinations swapped for symlinks to host paths
// ---------------------------------------------------------------------------------

#[test]
fn cve_2021_30465_symlinked_mount_destinations_stay_inside() {
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let host_existing = host_dir_with_marker();
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    // Absolute and relative symlinks to host paths, as an image could ship them.
    symlink(&host_target, rootfs.join("mnt1")).unwrap();
    symlink(host_existing.path(), rootfs.join("mnt2")).unwrap();
    symlink(
        format!("../../../../../../..{}", host_target.display()),
        rootfs.join("mnt3"),
    )
    .unwrap();
    for (i, dest) in ["/mnt1/sub", "/mnt2", "/mnt3/other"].iter().enumerate() {
        set_mount(
            &mut b,
            dest,
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                   "options": [format!("size={}k", 100 + i)]}),
        );
    }
    let id = unique_id("cve-2021-30465");
    let r = rt.report(&b, &id);
    assert!(
        !host_target.exists(),
        "created on the host: {}",
        host_target.display()
    );
    assert!(host_existing.path().join("liana-host-marker").exists());
    assert_eq!(
        fs::read_dir(host_existing.path()).unwrap().count(),
        1,
        "the host directory was changed"
    );
    // The mounts are in the container, at the re-rooted targets.
    let targets: Vec<String> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["fstype"] == "tmpfs")
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        format!("{}/sub", host_target.display()),
        host_existing.path().display().to_string(),
        format!("{}/other", host_target.display()),
    ] {
        assert!(targets.contains(&want), "{want} not in {targets:?}");
    }
    assert!(rootfs.join(host_target.strip_prefix("/").unwrap()).is_dir());
    assert_gone(&rt, &b, &id);
}

#[test]
fn cve_2021_30465_destination_swapped_during_set_up() {
    // A volume shared with another container (here, a thread of the test) whose
    // directory is swapped for a symlink to a host path while mounts are being made.
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let volume = tempfile::Builder::new()
        .prefix("liana-volume-")
        .tempdir()
        .unwrap();
    let vol = volume.path().to_owned();
    fs::create_dir(vol.join("d")).unwrap();
    symlink(&host_target, vol.join("alt")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (d, alt) = (cstr(&vol.join("d")), cstr(&vol.join("alt")));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: renameat2 reads two NUL-terminated paths.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        d.as_ptr(),
                        libc::AT_FDCWD,
                        alt.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                if r == 0 {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let mut started = 0;
    for round in 0..8 {
        let mut b = Bundle::new();
        set_mount(
            &mut b,
            "/vol",
            json!({"destination": "/vol", "type": "bind",
                   "source": vol.to_str().unwrap(), "options": ["rbind"]}),
        );
        for i in 0..30 {
            let dest = format!("/vol/d/m{i}");
            set_mount(
                &mut b,
                &dest,
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=64k"]}),
            );
        }
        let id = unique_id(&format!("cve-2021-30465-race{round}"));
        let (code, _, _) = rt.run_container(&b, &id);
        if code == 0 {
            started += 1;
        }
        let _ = rt.run(&["delete", "--force", &id]);
        assert_gone(&rt, &b, &id);
        assert!(
            !host_target.exists(),
            "round {round}: a mount point was created on the host"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 100, "the swapper did not run");
    eprintln!("{started}/8 containers started while the volume was being swapped ({swaps} swaps)");
}

// ---------------------------------------------------------------------------------
// Mount destinations and bind sources with `..` and absolute symlinks
// ---------------------------------------------------------------------------------

#[test]
fn dotdot_and_symlinked_mount_destinations_stay_inside() {
    let rt = Runtime::new();
    let (_g, host_target) = absent_host_path();
    let rel_host = host_target.strip_prefix("/").unwrap().display().to_string();
    let tmpfs = |d: &str| json!({"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]});

    // Absolute and `..` symlinks of the image: re-rooted, the mounts land inside.
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    symlink("/", rootfs.join("rootlink")).unwrap();
    symlink("../../../../..", rootfs.join("uplink")).unwrap();
    for d in [
        format!("/rootlink/{rel_host}/c"),
        format!("/uplink/{rel_host}/d"),
    ] {
        set_mount(&mut b, &d, tmpfs(&d));
    }
    let id = unique_id("dotdot-dest");
    let r = rt.report(&b, &id);
    assert!(!host_target.exists(), "created on the host");
    let targets: Vec<&str> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    for sub in ["c", "d"] {
        let want = format!("{}/{sub}", host_target.display());
        assert!(
            targets.contains(&want.as_str()),
            "{want} not in {targets:?}"
        );
        assert!(rootfs.join(&rel_host).join(sub).is_dir());
    }
    assert_gone(&rt, &b, &id);

    // `..` in the destination itself: refused as a config error, or clamped at the
    // root; never outside.
    for d in [
        format!("/../../../../{rel_host}/a"),
        format!("/tmp/../../../{rel_host}/b"),
    ] {
        let mut b = Bundle::new();
        set_mount(&mut b, &d, tmpfs(&d));
        let id = unique_id("dotdot-dest");
        let (code, out, err) = rt.run_container(&b, &id);
        assert!(!host_target.exists(), "{d}: created on the host");
        if code == 0 {
            let r = parse_report(&out);
            let inside = format!("{}/{}", host_target.display(), &d[d.len() - 1..]);
            assert!(
                r["mounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["target"] == inside.as_str()),
                "{d}: not mounted at {inside}"
            );
        } else {
            assert!(err.contains("destination"), "{d}: {err}");
        }
        assert_gone(&rt, &b, &id);
    }
}

#[test]
fn bind_sources_inside_the_rootfs_stay_inside() {
    bind_sources_stay_inside(Bundle::new());
}

#[test]
fn bind_sources_inside_the_rootfs_stay_inside_with_a_user_namespace() {
    // Bind sources are then opened by the runtime's parent, before the user namespace.
    bind_sources_stay_inside(userns_bundle());
}

fn bind_sources_stay_inside(mut b: Bundle) {
    // A bind source inside the container's rootfs (a path of the image) is resolved in
    // the rootfs: `..` and absolute symlinks there cannot reach host files.
    let rt = Runtime::new();
    let host = host_dir_with_marker();
    let rootfs = b.rootfs();
    fs::create_dir_all(rootfs.join("data/inner")).unwrap();
    fs::write(rootfs.join("data/inner/in-image"), "image").unwrap();
    symlink(host.path(), rootfs.join("data/abs")).unwrap();
    symlink("../../../../../../../..", rootfs.join("data/up")).unwrap();
    let rel_host = host.path().strip_prefix("/").unwrap().display().to_string();
    let sources = [
        format!("{}/data/abs", rootfs.display()),
        format!("{}/data/up/{rel_host}", rootfs.display()),
        format!("{}/../../../../{rel_host}", rootfs.display()),
        "rootfs/data/abs".to_owned(),
        "rootfs/data/up/tmp".to_owned(),
    ];
    for s in &sources {
        set_mount(
            &mut b,
            "/bound",
            json!({"destination": "/bound", "type": "bind", "source": s, "options": ["rbind"]}),
        );
        b.args(&["/bin/sh", "-c", "ls -a /bound; echo done"]);
        let id = unique_id("bind-src");
        let (code, out, err) = rt.run_container(&b, &id);
        assert!(
            !out.contains("liana-host-marker") && !out.contains("liana-it-"),
            "source {s}: a host directory was bound into the container: {out}{err}"
        );
        if code == 0 {
            assert!(out.contains("done"), "{out}{err}");
        }
        assert_gone(&rt, &b, &id);
    }
    // A source inside the image that stays inside works as usual.
    set_mount(
        &mut b,
        "/bound",
        json!({"destination": "/bound", "type": "bind",
               "source": format!("{}/data/inner", rootfs.display()), "options": ["rbind"]}),
    );
    let id = unique_id("bind-src-ok");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in-image"), "{out}");
    assert_gone(&rt, &b, &id);
}

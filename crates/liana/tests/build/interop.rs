//! The built image pushed to a registry and read back by skopeo and podman.

use crate::common::Instance;
use crate::{build, context, fx};

#[test]
fn push_and_pull_back_with_skopeo_and_podman() {
    let Some(fx) = fx() else { return };
    let l = Instance::root(fx);
    let df = format!(
        "FROM {} AS b\nRUN echo built > /built\nFROM {}\nCOPY --from=b /built /built\n\
         RUN rm /bin/ls\nCMD [\"cat\", \"/built\"]\n",
        fx.image(),
        fx.image()
    );
    let ctx = context(&l, "ctx", &[("Dockerfile", &df)]);
    let name = format!("{}/built:interop", fx.env["PLAIN"]);
    build(&l, &ctx, &["-t", &name]).ok("build");
    l.ok(&["push", &name]);
    let policy = &fx.env["POLICY"];
    let oci = l.path().join("oci-copy");
    let o = std::process::Command::new("skopeo")
        .args(["--policy", policy, "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:x", oci.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // podman pulls it into a private store and runs it
    let p = l.path().join("podman");
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .arg("--root")
            .arg(p.join("root"))
            .arg("--runroot")
            .arg(p.join("runroot"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", &fx.registries_conf)
            .output()
            .unwrap()
    };
    let o = podman(&[
        "pull",
        "--tls-verify=false",
        "--signature-policy",
        policy,
        &name,
    ]);
    assert!(
        o.status.success(),
        "podman pull: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // (podman run itself needs rlimits this VM's crun cannot set: inspect instead)
    let o = podman(&["image", "inspect", "--format", "{{.Config.Cmd}}", &name]);
    let _ = podman(&["rmi", "-af"]);
    assert!(
        o.status.success(),
        "podman inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "[cat /built]\n");
    // and liana pulls it back into a fresh store
    let l2 = Instance::root(fx);
    l2.ok(&["pull", &name]);
    assert_eq!(l2.ok(&["run", "--rm", &name]), "built\n");
    assert_eq!(
        l2.ok(&[
            "run",
            "--rm",
            &name,
            "sh",
            "-c",
            "test -e /bin/ls || echo gone"
        ]),
        "gone\n"
    );
}

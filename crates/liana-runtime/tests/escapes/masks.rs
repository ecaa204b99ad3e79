//! maskedPaths and readonlyPaths against CAP_SYS_ADMIN in a user namespace.

use super::*;

// ---------------------------------------------------------------------------------
// maskedPaths and readonlyPaths against CAP_SYS_ADMIN in a user namespace
// ---------------------------------------------------------------------------------

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A rootful container in a new user namespace (0 -> 100000, 65536 ids).
pub(crate) fn userns_bundle() -> Bundle {
    let mut b = Bundle::new();
    Command_chown(&b.rootfs(), 100000);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // /sys/fs/cgroup (v1) cannot be mounted from a user namespace here.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
    });
    b
}

/// [`userns_bundle`] with every capability and no seccomp.
pub(crate) fn userns_all_caps_bundle() -> Bundle {
    let mut b = userns_bundle();
    b.edit(|c| {
        let caps = json!(ALL_CAPS);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["root"]["readonly"] = json!(false);
        c["process"]["noNewPrivileges"] = json!(false);
    });
    b
}

#[allow(non_snake_case)]
fn Command_chown(p: &Path, id: u32) {
    let st = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{id}:{id}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn masks_hold_against_cap_sys_admin_in_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = userns_all_caps_bundle();
    // Each attempt prints ok or errno; the last line is the report.
    let script = r#"
        for p in /proc/kcore /proc/timer_list /proc/keys /sys/firmware /proc/acpi /proc/scsi; do
            echo "umount $p: $(/checker umount $p)"
        done
        for p in /proc/sys /proc/sysrq-trigger /proc/bus /proc/irq /proc/fs; do
            echo "remount-rw $p: $(/checker remount $p rw)"
            echo "umount $p: $(/checker umount $p)"
        done
        mkdir -p /tmp/newproc /tmp/newsys
        echo "mount proc: $(/checker mount proc /tmp/newproc proc)"
        echo "mount sysfs: $(/checker mount sysfs /tmp/newsys sysfs)"
        echo "bind proc: $(/checker mount /proc /tmp/newproc bind)"
        echo "write sysrq: $(/checker write /proc/sysrq-trigger h)"
        echo "write core_pattern: $(/checker write /proc/sys/kernel/core_pattern '|/tmp/x')"
        /checker stat /tmp/newproc/timer_list
        /checker report
    "#;
    b.args(&["/bin/sh", "-c", script]);
    let saved = CorePattern::save();
    let id = unique_id("userns-masks");
    let (code, out, err) = rt.run_container(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(saved.unchanged(), "host core_pattern changed");
    let r = parse_report(out.lines().last().unwrap());
    assert_eq!(r["caps"]["eff"], "000001ffffffffff", "{}", r["caps"]);
    let mounts = r["mounts"].as_array().unwrap();
    let at = |t: &str| {
        mounts
            .iter()
            .filter(|m| m["target"] == t)
            .collect::<Vec<_>>()
    };
    for line in out.lines().filter(|l| l.contains(": ")) {
        assert!(!line.ends_with(": ok"), "attack succeeded: {line}\n{out}");
    }
    // Every mask and read-only bind is still in place (of the files this kernel has).
    let exists = |p: &&str| Path::new(p).exists();
    for p in ["/proc/kcore", "/proc/timer_list", "/proc/keys"]
        .into_iter()
        .filter(exists)
    {
        assert!(!at(p).is_empty(), "{p} unmasked: {out}");
    }
    for p in ["/proc/sys", "/proc/sysrq-trigger"]
        .into_iter()
        .filter(exists)
    {
        let m = at(p);
        assert!(
            m.iter()
                .all(|m| m["options"].as_str().unwrap().starts_with("ro")),
            "{p} writable: {m:?}"
        );
    }
    assert_gone(&rt, &b, &id);
}

#[test]
fn user_namespace_container_owns_what_the_runtime_mounted_for_it() {
    // The mounts of a container with a user namespace are made outside it (so that they
    // can be locked): what they create must still belong to the container's root, and
    // uid=/gid= options must mean container ids.
    let rt = Runtime::new();
    let mut b = userns_bundle();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["root"]["readonly"] = json!(false);
    });
    b.args(&[
        "/bin/sh",
        "-c",
        "stat -c '%n %u:%g' / /dev /dev/shm /dev/mqueue /dev/console $(tty); \
         touch /dev/new && echo dev-writable; mkdir /dev/shm/d && echo shm-writable; \
         mkdir /newdir && echo root-writable; cat /proc/self/uid_map; echo end",
    ]);
    let id = unique_id("userns-owner");
    let mut sock = FdReceiver::new(None);
    rt.ok(&[
        "run",
        "-d",
        "--console-socket",
        sock.path().to_str().unwrap(),
        "--bundle",
        &bundle_arg(&b),
        &id,
    ]);
    let (master, _) = sock.take().expect("no pty master");
    let out = read_until(master.as_fd(), "", 10.0).replace("\r\n", "\n");
    for want in [
        "/ 0:0",
        "/dev 0:0",
        "/dev/shm 0:0",
        "/dev/console 0:5",
        "/dev/pts/0 0:5",
        "dev-writable",
        "shm-writable",
        "root-writable",
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} not in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "100000", "65536"]),
        "{out}"
    );
    let _ = wait_stopped(&rt, &id, 10.0);
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &b, &id);
}

use crate::common::*;

#[test]
fn basic_auth_login_logout() {
    let Some(fx) = fixture() else { return };
    let reg = fx.get("BASIC");
    let img = format!("{reg}/busybox:latest");
    let r = Root::new();
    r.run(&["pull", "--tls-verify=false", &img]).fails_with(&[
        "unauthorized",
        reg,
        "no credentials",
    ]);
    r.assert_empty();
    r.run(&["pull", "--tls-verify=false", "--creds", "liana:wrong", &img])
        .fails_with(&["unauthorized", "with the given credentials"]);
    r.run(&[
        "login",
        "--tls-verify=false",
        "-u",
        "liana",
        "-p",
        "wrong",
        reg,
    ])
    .fails_with(&["unauthorized"]);
    assert!(!r.auth_file().exists(), "failed login stores nothing");
    let mut c = r.command(&[
        "login",
        "--tls-verify=false",
        "-u",
        "liana",
        "--password-stdin",
        reg,
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"liana-secret\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let auth = std::fs::read_to_string(r.auth_file()).unwrap();
    assert!(auth.contains(reg), "{auth}");
    r.run(&["pull", "--tls-verify=false", &img]).ok();
    r.run(&["logout", reg]).ok();
    r.run(&["logout", reg]).fails_with(&["not logged in"]);
    r.run(&["rmi", &img]).ok();
    r.run(&["pull", "--tls-verify=false", &img])
        .fails_with(&["unauthorized"]);
    r.run(&[
        "pull",
        "--tls-verify=false",
        "--creds",
        "liana:liana-secret",
        &img,
    ])
    .ok();
}

#[test]
fn bearer_token_auth() {
    let Some(fx) = fixture() else { return };
    let reg = fx.get("TOKEN");
    let img = format!("{reg}/busybox:latest");
    let r = Root::new();
    // anonymous tokens allow pulls
    r.run(&["pull", "--tls-verify=false", &img]).ok();
    let dest = format!("{reg}/mine/busybox:v1");
    r.run(&["tag", &img, &dest]).ok();
    r.run(&["push", "--tls-verify=false", &dest])
        .fails_with(&["unauthorized", "mine/busybox"]);
    r.run(&[
        "login",
        "--tls-verify=false",
        "-u",
        "liana",
        "-p",
        "nope",
        reg,
    ])
    .fails_with(&["unauthorized"]);
    r.run(&[
        "login",
        "--tls-verify=false",
        "-u",
        "liana",
        "-p",
        "liana-secret",
        reg,
    ])
    .ok();
    r.run(&["push", "--tls-verify=false", &dest]).ok();
    let r2 = Root::new();
    r2.run(&["pull", "--tls-verify=false", &dest]).ok();
    assert_eq!(r2.inspect(&dest)["Id"], r.inspect(&img)["Id"]);
    r2.run(&["pull", "--tls-verify=false", "--creds", "liana:bad", &dest])
        .fails_with(&["unauthorized", "with the given credentials"]);
}

#[test]
fn tls_with_custom_ca() {
    let Some(fx) = fixture() else { return };
    let reg = fx.get("TLS");
    let img = format!("{reg}/multiarch:latest");
    let r = Root::new();
    r.run(&["pull", &img])
        .fails_with(&["tls", reg, "certificate"]);
    r.assert_empty();
    let code = r.run(&["pull", &img]).code;
    assert_eq!(code, 125);
    r.run(&["pull", "--cert-dir", fx.get("TLS_CERTS"), &img])
        .ok();
    let r2 = Root::new();
    r2.run(&["pull", "--tls-verify=false", &img]).ok();
    // insecure in registries.conf also skips verification
    let r3 = Root::new();
    r3.set_registries_conf(&format!(
        "[[registry]]\nlocation = \"{reg}\"\ninsecure = true\n"
    ));
    r3.run(&["pull", &img]).ok();
    // --tls-verify=true overrides registries.conf
    let r4 = Root::new();
    r4.set_registries_conf(&format!(
        "[[registry]]\nlocation = \"{reg}\"\ninsecure = true\n"
    ));
    r4.run(&["pull", "--tls-verify", &img]).fails_with(&["tls"]);
    // a plain-HTTP registry is not reached over HTTPS without --tls-verify=false
    Root::new()
        .run(&["pull", &format!("{}/busybox:latest", fx.get("PLAIN"))])
        .fails_with(&["tls"]);
}

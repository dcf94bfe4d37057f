//! TLS on the platform's one listener: the platform CA pinned by the CLI and by git,
//! refusals on the client side with a clear line, plain HTTP answered with one, the
//! operator's own certificate read again when renewed, TLS 1.2 only on request.

use crate::harness::Platform;
use std::os::unix::fs::PermissionsExt;

/// What `python3`'s ssl says to the platform with at most `version` (`TLSv1_2`…).
fn python_tls(p: &Platform, maximum: &str) -> String {
    let script = [
        "import socket, ssl".to_owned(),
        format!("ctx = ssl.create_default_context(cafile={:?})", p.ca().display().to_string()),
        format!("ctx.maximum_version = ssl.TLSVersion.{maximum}"),
        // Let OpenSSL offer what it would refuse by default (TLS 1.0), to see the
        // platform refuse it.
        "ctx.minimum_version = min(ctx.minimum_version, ctx.maximum_version)".to_owned(),
        "ctx.set_ciphers('DEFAULT:@SECLEVEL=0')".to_owned(),
        "try:".to_owned(),
        format!(
            "    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {})), server_hostname='127.0.0.1')",
            p.port
        ),
        "    print('connected', s.version())".to_owned(),
        "except Exception as e:".to_owned(),
        "    print('refused', e)".to_owned(),
    ]
    .join("\n");
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_platform_speaks_tls_with_its_own_ca_and_clients_pin_it() {
    let p = Platform::start();
    // The CA is made once; its key is the server's alone.
    let key = p.data.join("tls/ca.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = p.server_log();
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    assert!(!log.contains(key_body), "the key is never logged");

    // Plain HTTP to the TLS port: one line saying so, nothing served.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, text) = rt.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/healthz", p.port))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    });
    assert_eq!(status, 400);
    assert_eq!(
        text.trim(),
        "this port speaks HTTPS only: use an https:// URL"
    );
    p.wait_for("the refusal in the log", || {
        p.server_log()
            .contains("plain HTTP on the TLS port: refused")
    });

    // An environment that does not pin this CA is refused before anything is sent.
    let home = p.home.with_file_name("other-home");
    let dev = |args: &[&str]| {
        let out = p.command(args).env("MICRO_HOME", &home).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // (`env add` trusts no CA it is not shown: without a terminal to ask, and no
    // fingerprint given, nothing is added.)
    let (ok, said) = dev(&["env", "add", "plain", &p.url()]);
    assert!(!ok && said.contains("--ca-fingerprint"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(!dev(&["env"]).1.contains("plain"));

    // ... so is one pinning another CA.
    let other = tempfile::tempdir().unwrap();
    let theirs = micro_pki::Ca::load_or_create(other.path()).unwrap();
    let theirs_file = other.path().join("theirs.pem");
    std::fs::write(&theirs_file, theirs.cert_pem()).unwrap();
    assert!(
        dev(&[
            "env",
            "add",
            "wrong",
            &p.url(),
            "--ca-file",
            theirs_file.to_str().unwrap()
        ])
        .0
    );
    let (ok, said) = dev(&[
        "login",
        "--env",
        "wrong",
        "--email",
        "a@b.io",
        "--password",
        "x",
    ]);
    assert!(!ok && said.contains("failed the TLS check"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    // A file that is not a CA is refused at `env add`, and nothing is added.
    let junk = other.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (ok, said) = dev(&[
        "env",
        "add",
        "junk",
        &p.url(),
        "--ca-file",
        junk.to_str().unwrap(),
    ]);
    assert!(!ok && said.contains("--ca-file"), "{said}");
    assert!(!dev(&["env"]).1.contains("junk"));

    // TLS 1.3 only, unless the server allows 1.2.
    let said = python_tls(&p, "TLSv1_2");
    assert!(said.starts_with("refused"), "{said}");
    assert!(python_tls(&p, "TLSv1_3").starts_with("connected TLSv1.3"));
}

#[test]
fn tls_1_2_on_request_and_plain_http_only_on_loopback() {
    let p = Platform::start_with(&[("MICRO_TLS12", "true")]);
    let said = python_tls(&p, "TLSv1_2");
    assert!(said.starts_with("connected TLSv1.2"), "{said}");
    // TLS 1.0 never, whatever the flags: refused by the platform, and logged.
    let said = python_tls(&p, "TLSv1");
    assert!(said.starts_with("refused"), "{said}");
    p.wait_for("the refused handshake in the log", || {
        p.server_log().contains("TLS handshake refused")
    });

    let out = p
        .command(&["server", "--address", "0.0.0.0:0", "--insecure-http"])
        .env("MICRO_DATA_DIR", p.home.with_file_name("other-data"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("--insecure-http serves loopback addresses only"),
        "{said}"
    );
}

#[test]
fn the_operators_certificate_is_read_again_when_renewed() {
    let files = tempfile::tempdir().unwrap();
    let first = micro_pki::Ca::load_or_create(&files.path().join("first")).unwrap();
    let second = micro_pki::Ca::load_or_create(&files.path().join("second")).unwrap();
    let (cert, key) = (files.path().join("tls.crt"), files.path().join("tls.key"));
    let install = |ca: &micro_pki::Ca| {
        let issued = ca.issue_server(&["127.0.0.1".to_owned()], 30).unwrap();
        std::fs::write(&key, issued.key_pem).unwrap();
        std::fs::write(&cert, issued.cert_pem).unwrap();
        crate::harness::owner_only(&key);
    };
    install(&first);
    let pins = |ca: &micro_pki::Ca, name: &str| {
        let path = files.path().join(format!("{name}.pem"));
        std::fs::write(&path, ca.cert_pem()).unwrap();
        path
    };
    let (first_pem, second_pem) = (pins(&first, "first"), pins(&second, "second"));
    // The harness pins the platform CA; this server uses the operator's files instead.
    let p = Platform::start_with(&[
        ("MICRO_TLS_CERT", cert.to_str().unwrap()),
        ("MICRO_TLS_KEY", key.to_str().unwrap()),
        ("MICRO_HARNESS_CA", first_pem.to_str().unwrap()),
    ]);
    let url = p.url();
    let home = p.home.with_file_name("ops-home");
    let run = |args: &[&str]| {
        let out = p.command(args).env("MICRO_HOME", &home).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (name, pem) in [("first", &first_pem), ("second", &second_pem)] {
        assert!(run(&["env", "add", name, &url, "--ca-file", pem.to_str().unwrap()]).0);
    }
    let login = |env: &str| {
        run(&[
            "login",
            "--env",
            env,
            "--email",
            "nobody@x.io",
            "--password",
            "wrong-pass",
        ])
        .1
    };
    // Reaching the platform at all means TLS passed: the answer is about the password.
    assert!(login("first").contains("wrong email or password"));
    assert!(login("second").contains("failed the TLS check"));
    install(&second);
    p.wait_for("the renewed certificate to be served", || {
        login("second").contains("wrong email or password")
    });
    assert!(login("first").contains("failed the TLS check"));
}

/// `micro env add` of a platform with its own CA: trust on first use, as ssh does. The
/// CA's fingerprint is shown and, without a terminal to ask, nothing is added unless it
/// is given; a wrong one is refused; the right one pins the CA, and git and the API
/// trust the platform through it.
#[test]
fn env_add_trusts_a_platforms_own_ca_by_its_fingerprint() {
    let p = Platform::start();
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    let fingerprint = micro_pki::fingerprint(&ca).unwrap();
    let url = p.url();
    let said = p.fails(&["env", "add", "tofu", &url]);
    assert!(
        said.contains(&fingerprint) && said.contains(&format!("--ca-fingerprint {fingerprint}")),
        "{said}"
    );
    assert!(!p.ok(&["env"]).contains("tofu"));
    let wrong = format!("SHA256:{}", "0".repeat(64));
    let said = p.fails(&["env", "add", "tofu", &url, "--ca-fingerprint", &wrong]);
    assert!(said.contains("nothing was added"), "{said}");
    p.ok(&["env", "add", "tofu", &url, "--ca-fingerprint", &fingerprint]);
    // Pinned: the API answers over TLS checked against it (a login refused, not a TLS
    // failure).
    let out = p
        .command(&[
            "login",
            "--env",
            "tofu",
            "--email",
            "nobody@example.com",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(!said.contains("TLS"), "{said}");
}

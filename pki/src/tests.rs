//! Real handshakes between the configurations here, in memory: the good case and each
//! way a connection must fail.

use crate::{Ca, CertSource, client_config, server_config};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<(), String> {
    let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut c = ClientConnection::new(client, name).map_err(|e| e.to_string())?;
    let mut s = ServerConnection::new(server).map_err(|e| e.to_string())?;
    for _ in 0..10 {
        let mut wire = Vec::new();
        c.write_tls(&mut wire).unwrap();
        s.read_tls(&mut &wire[..]).unwrap();
        s.process_new_packets()
            .map_err(|e| format!("server: {e}"))?;
        wire.clear();
        s.write_tls(&mut wire).unwrap();
        c.read_tls(&mut &wire[..]).unwrap();
        c.process_new_packets()
            .map_err(|e| format!("client: {e}"))?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err("no end to the handshake".into())
}

fn names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

#[test]
fn a_pinned_client_trusts_the_server_by_name_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let server = server_config(
        CertSource::Issued(ca.issue_server(&names(), 90).unwrap()),
        false,
        None,
    )
    .unwrap();
    let client = client_config(ca.cert_pem()).unwrap();
    handshake(client.clone(), server.clone(), "localhost").unwrap();
    handshake(client.clone(), server.clone(), "127.0.0.1").unwrap();
    let wrong = handshake(client, server, "example.com").unwrap_err();
    assert!(wrong.contains("not valid for name"), "{wrong}");
}

#[test]
fn another_ca_an_expired_or_not_yet_valid_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ours")).unwrap();
    let theirs = Ca::load_or_create(&dir.path().join("theirs")).unwrap();
    let server = server_config(
        CertSource::Issued(ca.issue_server(&names(), 90).unwrap()),
        false,
        None,
    )
    .unwrap();
    let err = handshake(
        client_config(theirs.cert_pem()).unwrap(),
        server,
        "localhost",
    )
    .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");

    let now = OffsetDateTime::now_utc();
    let client = client_config(ca.cert_pem()).unwrap();
    for (from, until, said) in [
        (now - Duration::days(10), now - Duration::days(1), "expired"),
        (
            now + Duration::days(1),
            now + Duration::days(10),
            "not valid yet",
        ),
    ] {
        let issued = ca.issue(&names(), from, until).unwrap();
        let server = server_config(CertSource::Issued(issued), false, None).unwrap();
        let err = handshake(client.clone(), server, "localhost").unwrap_err();
        assert!(err.contains(said), "{err}");
    }
}

#[test]
fn tls_1_2_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let issued = ca.issue_server(&names(), 90).unwrap();
    let roots = crate::files::roots(ca.cert_pem(), "ca").unwrap();
    let old_client = Arc::new(
        rustls::ClientConfig::builder_with_provider(crate::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let strict = server_config(CertSource::Issued(issued.clone()), false, None).unwrap();
    let err = handshake(old_client.clone(), strict, "localhost").unwrap_err();
    assert!(err.contains("server: "), "the server refuses it: {err}");
    let lenient = server_config(CertSource::Issued(issued), true, None).unwrap();
    handshake(old_client, lenient, "localhost").unwrap();
}

#[test]
fn certificate_files_are_read_again_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ca")).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let write = |name: &str| {
        let issued = ca.issue_server(&[name.to_owned()], 90).unwrap();
        std::fs::write(&key, issued.key_pem).unwrap();
        std::fs::write(&cert, issued.cert_pem).unwrap();
    };
    write("a.test");
    let server = server_config(
        CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        false,
        None,
    )
    .unwrap();
    let client = client_config(ca.cert_pem()).unwrap();
    handshake(client.clone(), server.clone(), "a.test").unwrap();
    // Renewed in place: the next handshake after the recheck interval uses it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write("b.test");
    std::thread::sleep(super::server::RECHECK + std::time::Duration::from_millis(200));
    handshake(client.clone(), server.clone(), "b.test").unwrap();
    // A broken renewal keeps the last good pair.
    std::fs::write(&key, "garbage").unwrap();
    std::thread::sleep(super::server::RECHECK + std::time::Duration::from_millis(200));
    handshake(client, server, "b.test").unwrap();
    // Bad files at start are said at once.
    let err = server_config(CertSource::Files { cert, key }, false, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tls.crt"), "{err}");
}

#[test]
fn a_certificate_checked_on_its_own_against_the_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ours")).unwrap();
    let theirs = Ca::load_or_create(&dir.path().join("theirs")).unwrap();
    let issued = ca.issue_server(&names(), 90).unwrap();
    let der = crate::files::certs(&issued.cert_pem, "leaf")
        .unwrap()
        .remove(0);
    crate::verify_server_cert(ca.cert_pem(), &der, "localhost").unwrap();
    crate::verify_server_cert(ca.cert_pem(), &der, "127.0.0.1").unwrap();
    assert!(crate::verify_server_cert(ca.cert_pem(), &der, "evil.example").is_err());
    assert!(crate::verify_server_cert(theirs.cert_pem(), &der, "localhost").is_err());
}

#[test]
fn a_service_identity_is_presented_checked_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ours")).unwrap();
    let theirs = Ca::load_or_create(&dir.path().join("theirs")).unwrap();
    let server = server_config(
        CertSource::Issued(ca.issue_server(&names(), 90).unwrap()),
        false,
        Some(ca.cert_pem()),
    )
    .unwrap();
    let who = crate::Identity {
        trust_domain: "micro.test".into(),
        namespace: "team".into(),
        service: "api".into(),
        deployment: "d0123".into(),
    };
    let issued = ca.issue_identity(&who, DAY).unwrap();
    let client =
        crate::client_config_with_identity(ca.cert_pem(), &issued.cert_pem, &issued.key_pem)
            .unwrap();
    handshake(client, server.clone(), "localhost").unwrap();
    let der = crate::files::certs(&issued.cert_pem, "id")
        .unwrap()
        .remove(0);
    assert_eq!(crate::identity_of(&der), Some(who.clone()));
    // Without a certificate: through, to be asked for a token.
    handshake(
        client_config(ca.cert_pem()).unwrap(),
        server.clone(),
        "localhost",
    )
    .unwrap();
    // Another CA's identity: refused by the server.
    let forged = theirs.issue_identity(&who, DAY).unwrap();
    let client =
        crate::client_config_with_identity(ca.cert_pem(), &forged.cert_pem, &forged.key_pem)
            .unwrap();
    let err = handshake(client, server, "localhost").unwrap_err();
    assert!(err.starts_with("server: "), "{err}");
    // An expired identity, or one not valid yet: refused by the server.
    let now = OffsetDateTime::now_utc();
    for (from, until) in [
        (now - Duration::days(2), now - Duration::days(1)),
        (now + Duration::days(1), now + Duration::days(2)),
    ] {
        let stale = ca.issue_identity_between(&who, from, until).unwrap();
        let client =
            crate::client_config_with_identity(ca.cert_pem(), &stale.cert_pem, &stale.key_pem)
                .unwrap();
        let server = server_config(
            CertSource::Issued(ca.issue_server(&names(), 90).unwrap()),
            false,
            Some(ca.cert_pem()),
        )
        .unwrap();
        let err = handshake(client, server, "localhost").unwrap_err();
        assert!(err.starts_with("server: "), "{err}");
    }
    // A server certificate names no identity.
    let plain = ca.issue_server(&names(), 1).unwrap();
    let der = crate::files::certs(&plain.cert_pem, "leaf")
        .unwrap()
        .remove(0);
    assert_eq!(crate::identity_of(&der), None);
}

#[test]
fn the_platform_calls_exactly_the_service_it_means_and_shows_its_own_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ours")).unwrap();
    let theirs = Ca::load_or_create(&dir.path().join("theirs")).unwrap();
    let id = |service: &str| crate::Identity {
        trust_domain: "micro.test".into(),
        namespace: "team".into(),
        service: service.into(),
        deployment: "d1".into(),
    };
    let platform = ca.issue_platform_client("micro.test", 1).unwrap();
    // A service serving TLS with its identity, asking callers for certificates.
    let serving = |issued: crate::Issued| {
        server_config(CertSource::Issued(issued), false, Some(ca.cert_pem())).unwrap()
    };
    let api = serving(ca.issue_identity(&id("api"), DAY).unwrap());
    let client = crate::client_config_for_service(ca.cert_pem(), &platform, &id("api")).unwrap();
    // Any address: services are named by URI.
    handshake(client, api.clone(), "127.0.0.1").unwrap();
    let der = crate::files::certs(&platform.cert_pem, "platform")
        .unwrap()
        .remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let uris: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(uris, [crate::platform_uri("micro.test")]);
    // Another service answering where `web` was meant: refused by the platform.
    let client = crate::client_config_for_service(ca.cert_pem(), &platform, &id("web")).unwrap();
    let err = handshake(client, api, "127.0.0.1").unwrap_err();
    assert!(
        err.contains("names spiffe://micro.test/ns/team/svc/api, not"),
        "{err}"
    );
    // The right name from another CA: refused.
    let forged = serving(theirs.issue_identity(&id("api"), DAY).unwrap());
    let client = crate::client_config_for_service(ca.cert_pem(), &platform, &id("api")).unwrap();
    let err = handshake(client, forged, "127.0.0.1").unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

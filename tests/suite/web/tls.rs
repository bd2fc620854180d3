//! The status page over HTTPS with the certificate it makes on first start:
//! the page answers over TLS, and session cookies are marked Secure.

use crate::support::web::*;
use lollipop::admin::Role;

#[test]
fn https_with_a_self_signed_certificate_and_secure_cookies() {
    let school = WebSchool::start_with(|config| config.web.tls = true);
    let certificate = std::fs::read(school.lollipop.dir().join("data/web-cert.pem"))
        .expect("a certificate made on first start");
    let key = school.lollipop.dir().join("data/web-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by others: {mode:o}"
        );
    }
    let client = WebClient::with_tls_root(
        format!("https://localhost:{}", school.web.port()),
        Some(&certificate),
    );
    let reply = school.sign_in(&client, "head", Role::Viewer);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("lollipop_session="))
        .expect("session cookie")
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Over TLS, browsers are told to stay on HTTPS, for an hour only (a
    // re-flashed box has a new certificate).
    let page = client.get("/login");
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=3600")
    );

    // Plain HTTP on the same port is not served.
    let plain = ureq::get(format!("http://127.0.0.1:{}/login", school.web.port())).call();
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
}

/// Whether the page at `port` completes a TLS handshake trusting only `root`.
fn served_with(port: u16, root: &[u8]) -> bool {
    let certificate = ureq::tls::Certificate::from_pem(root).expect("a PEM certificate");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    certificate,
                ])))
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    agent
        .get(format!("https://localhost:{port}/login"))
        .call()
        .is_ok()
}

#[test]
fn a_replaced_certificate_is_served_after_a_reload() {
    let school = WebSchool::start_with(|config| config.web.tls = true);
    let dir = school.lollipop.dir();
    let first = std::fs::read(dir.join("data/web-cert.pem")).expect("first certificate");
    let renewed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a new certificate");
    std::fs::write(dir.join("renewed-cert.pem"), renewed.cert.pem()).expect("write");
    std::fs::write(
        dir.join("renewed-key.pem"),
        renewed.signing_key.serialize_pem(),
    )
    .expect("write");
    let port = school.web.port();
    assert!(served_with(port, &first));
    assert!(!served_with(port, renewed.cert.pem().as_bytes()));

    let outcome = school.lollipop.reload_with(|text| {
        text.replacen(
            "[web]\n",
            "[web]\ntls = true\ncertificate = \"renewed-cert.pem\"\nkey = \"renewed-key.pem\"\n",
            1,
        )
    });
    assert_eq!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded);
    assert!(
        served_with(port, renewed.cert.pem().as_bytes()),
        "new connections get the renewed certificate"
    );
    assert!(!served_with(port, &first));
    let waiting = school.lollipop.running().reloader.waiting_for_restart();
    assert!(
        waiting.is_empty(),
        "nothing waits for a restart: {waiting:?}"
    );
}

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

//! The block page over HTTPS (`[blockpage] https = true`): a device that
//! trusts the appliance's CA gets the block page for a blocked https://
//! site, and no certificate at all for a site it may reach; the CA's key
//! is private to the service and no page gives it out.

use std::net::SocketAddr;
use std::process::Command;

use crate::support::web::*;
use crate::support::{a, answers, free_port};
use lollipop::admin::Role;

fn https_school() -> (WebSchool, SocketAddr) {
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let school = WebSchool::start_with(|config| {
        config.blockpage.https = true;
        config.blockpage.https_listen = vec![toml::Spanned::new(0..0, address.to_string())];
    });
    (school, address)
}

/// `curl https://name/` at `address`, trusting only `ca`: the status and
/// body, or curl's error.
fn curl(address: SocketAddr, name: &str, ca: &std::path::Path) -> Result<(u16, String), String> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{name}:{}:{}", address.port(), address.ip()))
        .args(["--write-out", "\n%{http_code}"])
        .arg(format!("https://{name}:{}/some/page", address.port()))
        .output()
        .map_err(|error| format!("cannot run curl: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').ok_or("no status")?;
    Ok((
        status.trim().parse().map_err(|_| "bad status")?,
        body.to_string(),
    ))
}

#[test]
fn a_blocked_https_site_shows_the_block_page_and_an_allowed_one_gets_no_certificate() {
    let (school, address) = https_school();
    let admin = school.signed_in("head", Role::Admin);
    let pem = admin.get("/settings/block-ca.pem");
    assert_eq!(pem.status, 200, "{}", pem.body);
    assert!(
        pem.body.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        pem.body
    );
    let ca = school.lollipop.dir().join("downloaded-ca.pem");
    std::fs::write(&ca, &pem.body).expect("write the CA");

    // Blocked for this device (gambling; video for ks2): the block page.
    for (name, category) in [("bet365.com", "gambling"), ("www.youtube.com", "video")] {
        let (status, body) = curl(address, name, &ca).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.contains("blocked at school"), "{name}: {body}");
        assert!(body.contains(name), "{name}: {body}");
        assert!(body.contains(category), "{name}: {body}");
    }
    // Allowed, or a name the CA must never sign: the handshake fails.
    for name in ["www.example.com", "www.gov.uk", "childline.org.uk"] {
        let refused = curl(address, name, &ca);
        assert!(refused.is_err(), "{name} was served: {refused:?}");
    }
    // A device that does not trust the CA sees a certificate error, as
    // unmanaged devices will.
    let stranger = school.lollipop.dir().join("stranger.pem");
    let other = rcgen::generate_simple_self_signed(vec!["x.test".to_string()]).expect("cert");
    std::fs::write(&stranger, other.cert.pem()).expect("write");
    assert!(curl(address, "bet365.com", &stranger).is_err());

    // DNS is unchanged by any of it.
    assert_eq!(
        answers(&a(school.ks2(), "bet365.com")),
        vec!["A 0.0.0.0".to_string()]
    );
}

#[test]
fn the_ca_is_name_constrained_and_its_key_is_private_and_never_served() {
    let (school, _) = https_school();
    let data = school.lollipop.dir().join("data");
    let key_path = data.join("block-ca-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("the key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let key = std::fs::read_to_string(&key_path).expect("the key");
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(key_body.len() > 40);

    let admin = school.signed_in("head", Role::Admin);
    let der = admin.get("/settings/block-ca.cer");
    assert_eq!(der.status, 200);
    let der = std::fs::read(data.join("block-ca.pem"))
        .ok()
        .and_then(|pem| {
            rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
                .ok()
                .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        })
        .expect("the CA certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("a certificate");
    let basic = cert
        .basic_constraints()
        .expect("parses")
        .expect("present")
        .value;
    assert!(basic.ca);
    assert_eq!(basic.path_len_constraint, Some(0));
    let usage = cert.key_usage().expect("parses").expect("present").value;
    assert!(usage.key_cert_sign());
    assert!(!usage.digital_signature() && !usage.crl_sign());
    let constraints = cert
        .name_constraints()
        .expect("parses")
        .expect("present")
        .value;
    assert!(constraints.permitted_subtrees.is_none());
    let excluded: Vec<String> = constraints
        .excluded_subtrees
        .iter()
        .flatten()
        .filter_map(|subtree| match subtree.base {
            x509_parser::extensions::GeneralName::DNSName(name) => Some(name.to_string()),
            _ => None,
        })
        .collect();
    for name in [
        "gov.uk",
        "nhs.uk",
        "police.uk",
        "childline.org.uk",
        "samaritans.org",
    ] {
        assert!(
            excluded.iter().any(|e| e == name),
            "{name} not excluded: {excluded:?}"
        );
    }

    // Only an administrator may download even the public half.
    let dsl = school.signed_in("dsl", Role::Dsl);
    assert_eq!(dsl.get("/settings/block-ca.pem").status, 403);
    assert_eq!(school.client().get("/settings/block-ca.pem").status, 303);

    for path in [
        "/",
        "/settings",
        "/settings/block-ca.pem",
        "/settings/block-ca.cer",
        "/api/v1/status",
        "/block-ca-key.pem",
        "/settings/block-ca-key.pem",
        "/static/block-ca-key.pem",
    ] {
        let reply = admin.get(path);
        assert!(!reply.body.contains("PRIVATE KEY"), "{path}");
        assert!(!reply.body.contains(&key_body[..40]), "{path}");
    }
}

#[test]
fn a_damaged_key_turns_the_https_block_page_off_and_nothing_else() {
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let school = WebSchool::start_with(|config| {
        config.blockpage.https = true;
        config.blockpage.https_listen = vec![toml::Spanned::new(0..0, address.to_string())];
        let data = config.resolve_path(&config.server.data_dir);
        std::fs::create_dir_all(&data).expect("data dir");
        let key = data.join("block-ca-key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot a key\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    });
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "no HTTPS block page"
    );
    let page = school.client().get_with("/", &[("Host", "bet365.com")]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("blocked at school"));
    assert_eq!(
        answers(&a(school.ks2(), "bet365.com")),
        vec!["A 0.0.0.0".to_string()]
    );
    let admin = school.signed_in("head", Role::Admin);
    let settings = admin.get("/settings");
    assert!(
        settings.body.contains("block page over HTTPS is off"),
        "{}",
        settings.body
    );
    assert!(settings.body.contains("damaged"), "{}", settings.body);
    assert_eq!(admin.get("/settings/block-ca.pem").status, 404);
    let dashboard = admin.get("/");
    assert!(
        dashboard.body.contains("block page over HTTPS is off"),
        "{}",
        dashboard.body
    );
}

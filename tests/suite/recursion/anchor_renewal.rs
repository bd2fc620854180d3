//! The root trust anchor renewed by the list updater (RFC 7958): a
//! recursing Lollipop that ships the real root's keys cannot validate the
//! test hierarchy; `lollipop lists update` reads the hierarchy root's key
//! digest from an `root-anchors.xml` served on loopback, asks the root
//! server for its keys, keeps the one that matches, and after a reload the
//! same name validates. A digest that matches nothing changes nothing.

use std::process::Command;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use super::{LISTS, with_do};
use crate::support::nsd::Hierarchy;
use crate::support::*;

/// root-anchors.xml listing `ds` (a DS record's text) as valid since 2017.
fn root_anchors(ds: &str) -> String {
    let fields: Vec<&str> = ds.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "DS").expect("a DS record");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TrustAnchor id=\"test\" source=\"test\">\n\
         <Zone>.</Zone>\n<KeyDigest id=\"k\" validFrom=\"2017-02-02T00:00:00+00:00\">\n\
         <KeyTag>{}</KeyTag>\n<Algorithm>{}</Algorithm>\n<DigestType>{}</DigestType>\n\
         <Digest>{}</Digest>\n</KeyDigest>\n</TrustAnchor>\n",
        fields[at + 1],
        fields[at + 2],
        fields[at + 3],
        fields[at + 4..].concat()
    )
}

#[test]
fn the_list_updater_renews_the_trust_anchor_from_ianas_digests() {
    let hierarchy = Hierarchy::start(61);
    let ds = Command::new("ldns-key2ds")
        .args(["-n", "-2"])
        .arg(&hierarchy.trust_anchor)
        .output()
        .expect("ldns-key2ds runs (apt-get install ldnsutils)");
    let ds = String::from_utf8_lossy(&ds.stdout).to_string();
    let http = TestHttp::start();
    // First a digest of some other key: nothing may change.
    http.serve(
        "/root-anchors.xml",
        200,
        &root_anchors(
            ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
        ),
    );
    // The shipped lists, so the shipped anchor is the one in force.
    let config = TestConfig::new()
        .server(&format!(
            "lists_dir = \"{}/lists\"",
            env!("CARGO_MANIFEST_DIR")
        ))
        .listen("127.0.0.1:0")
        .table(
            "resolver",
            &format!(
                "mode = \"recursive\"\nroot_hints = \"{}\"\nallow_servers = [\"127.0.61.0/24\"]\ntrust_anchor_url = \"{}\"",
                hierarchy.root_hints.display(),
                http.url("/root-anchors.xml")
            ),
        )
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let unused = TestUpstream::start();
    let lollipop = TestLollipop::start(&config, &unused, LISTS);
    let config_path = lollipop.dir().join("lollipop.toml");

    // The shipped anchor (the real root's keys) cannot vouch for the test root.
    let reply = ask(
        lollipop.address(),
        "www.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );

    let out = lollipop_cli(&config_path, &["lists", "update"]);
    assert!(out.contains("DNSSEC root trust anchor: FAILED"), "{out}");
    assert!(out.contains("matches a digest"), "{out}");
    let renewed = lollipop.dir().join("data/sources/root.key");
    assert!(!renewed.exists(), "nothing written without a match");
    let status = lollipop_cli(&config_path, &["lists", "status"]);
    assert!(status.contains("lists/dns/root.key"), "{status}");
    assert!(status.contains("last error:"), "{status}");

    // IANA's file names the hierarchy root's key: renewed, and used.
    http.serve("/root-anchors.xml", 200, &root_anchors(&ds));
    let out = lollipop_cli(&config_path, &["lists", "update"]);
    assert!(
        out.contains("DNSSEC root trust anchor: updated, 1 entries"),
        "{out}"
    );
    assert!(renewed.exists(), "{out}");
    let status = lollipop_cli(&config_path, &["lists", "status"]);
    assert!(status.contains("data/sources/root.key"), "{status}");
    assert!(status.contains("1 keys, file changed"), "{status}");
    assert!(status.contains("renewed from http://"), "{status}");
    assert!(!status.contains("last error:"), "{status}");

    // As `run` does after a list update that changed something.
    let outcome = lollipop.reload_with(|text| text);
    assert_eq!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded);
    let reply = ask(
        lollipop.address(),
        "www.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert!(
        reply.metadata.authentic_data,
        "validated with the renewed key: {reply:?}"
    );

    // Again: the same key, so no change.
    let out = lollipop_cli(&config_path, &["lists", "update"]);
    assert!(
        out.contains("DNSSEC root trust anchor: not modified"),
        "{out}"
    );
}

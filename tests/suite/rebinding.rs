//! DNS-rebinding protection over real sockets: a public name the upstream
//! answers with a private address loses it, while the domains the config
//! allows and the school's own zones keep theirs.

use hickory_server::proto::op::ResponseCode;

use crate::support::*;

#[test]
fn a_private_address_for_a_public_name_is_filtered_but_allowed_and_local_names_pass() {
    let upstream = TestUpstream::start();
    let config = TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        .table("resolver", "timeout_ms = 1500\nattempts = 1")
        .table("rebinding", "allow_domains = [\"corp.example.org\"]")
        // home.arpa stays on site unless forwarded: here, to the test
        // upstream standing for the school's router.
        .section("[[zones]]\ndomain = \"home.arpa\"\nservers = [\"{upstream}\"]\n")
        .blocklist("ks2", &[], "")
        .toml();
    let lollipop = TestLollipop::start(&config, &upstream, &[]);

    let filtered = a(lollipop.address(), "evil.example.");
    assert_eq!(filtered.metadata.response_code, ResponseCode::NoError);
    assert!(answers(&filtered).is_empty(), "{:?}", answers(&filtered));
    let (code, text) = extended_error(&filtered).expect("EDE on the filtered answer");
    assert_eq!(code, 15, "Blocked");
    assert!(text.contains("private address for a public name"), "{text}");

    let allowed = a(lollipop.address(), "intranet.corp.example.org.");
    assert_eq!(answers(&allowed), ["A 10.1.2.3"]);
    let local = a(lollipop.address(), "nas.home.arpa.");
    assert_eq!(answers(&local), ["A 192.168.1.20"]);
    let public = a(lollipop.address(), "www.example.com.");
    assert_eq!(answers(&public), ["A 192.0.2.10"]);

    assert!(
        metrics_text(&lollipop).contains("lollipop_rebinding_dropped_total 1"),
        "{}",
        metrics_text(&lollipop)
    );
}

//! DNSSEC validation when forwarding: Lollipop forwards to an upstream that
//! does not validate (Debian's Unbound, iterating only, through the test
//! hierarchy) and checks the signatures itself against the hierarchy's
//! root key: validated answers and denials get AD, tampered data SERVFAIL
//! with EDE 6, a missing key EDE 9, expired signatures EDE 7; unsigned zones answer as before.

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use super::{LISTS, with_do};
use crate::support::nsd::{self, Hierarchy};
use crate::support::unbound::Unbound;
use crate::support::*;

#[test]
fn a_validating_forwarder_checks_what_its_upstream_passes_on() {
    let hierarchy = Hierarchy::start(59);
    let upstream = Unbound::start_not_validating(&hierarchy);
    let config = TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream(&upstream.address.to_string())
        .table(
            "resolver",
            &format!(
                "mode = \"forward\"\ndnssec = \"validate\"\ntrust_anchor = \"{}\"",
                hierarchy.trust_anchor.display()
            ),
        )
        .table("blocking", "answer = \"null\"")
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let unused = TestUpstream::start();
    let lollipop = TestLollipop::start(&config, &unused, LISTS);

    // The upstream itself passes the tampered record on.
    let reply = ask(
        upstream.address,
        "bad.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(answers(&reply)[0], "A 192.0.2.67", "{reply:?}");

    // Validated here: AD for a DO client, with the signature.
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
    assert_eq!(answers(&reply)[0], format!("A {}", nsd::WWW_SIGNED));
    assert!(reply.metadata.authentic_data, "AD: {reply:?}");
    assert!(
        reply
            .answers
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG),
        "RRSIG for DO: {reply:?}"
    );

    // Tampered: SERVFAIL with EDE 6, no data.
    let reply = ask(
        lollipop.address(),
        "bad.signed.test.",
        RecordType::A,
        with_do(),
    );
    servfail_with(&reply, 6);
    assert!(answers(&reply).is_empty(), "{reply:?}");

    // A signature by a key the zone does not publish: EDE 9.
    let reply = ask(
        lollipop.address(),
        "nokey.signed.test.",
        RecordType::A,
        with_do(),
    );
    servfail_with(&reply, 9);

    // Expired signatures: EDE 7.
    let reply = ask(
        lollipop.address(),
        "www.expired.test.",
        RecordType::A,
        with_do(),
    );
    servfail_with(&reply, 7);

    // A signed zone's NXDOMAIN and NODATA are validated too.
    let reply = ask(
        lollipop.address(),
        "nope.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "{reply:?}"
    );
    assert!(reply.metadata.authentic_data, "AD on NXDOMAIN: {reply:?}");
    let reply = ask(
        lollipop.address(),
        "www.signed.test.",
        RecordType::TXT,
        with_do(),
    );
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert!(answers(&reply).is_empty(), "{reply:?}");
    assert!(reply.metadata.authentic_data, "AD on NODATA: {reply:?}");

    // An unsigned zone answers, without AD; its NXDOMAIN stays NXDOMAIN.
    let reply = ask(
        lollipop.address(),
        "www.plain.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(answers(&reply), [format!("A {}", nsd::WWW_PLAIN)]);
    assert!(!reply.metadata.authentic_data, "{reply:?}");
    let reply = a(lollipop.address(), "nope.plain.test.");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "{reply:?}"
    );

    // Filtering is unchanged: a blocked name is answered here.
    let reply = a(lollipop.address(), "casino.signed.test.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"], "{reply:?}");
}

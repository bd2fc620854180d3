//! DNSSEC validation when forwarding: Lollipop forwards to an upstream that
//! does not validate (Debian's Unbound, iterating only, through the test
//! hierarchy) and checks the signatures itself against the hierarchy's
//! root key: validated answers and denials get AD, tampered data SERVFAIL
//! with EDE 6, a missing key EDE 9, expired signatures EDE 7; unsigned zones answer as before.

use hickory_server::proto::rr::RecordType;

use super::{LISTS, assert_dnssec_verdicts, with_do};
use crate::support::nsd::Hierarchy;
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

    // Validated here, as in recursion: AD, the signature for DO, and each
    // kind of Bogus with its EDE.
    let reply = ask(
        lollipop.address(),
        "www.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert!(
        reply
            .answers
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG),
        "RRSIG for DO: {reply:?}"
    );
    assert_dnssec_verdicts(lollipop.address());

    // Filtering is unchanged: a blocked name is answered here.
    let reply = a(lollipop.address(), "casino.signed.test.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"], "{reply:?}");
}

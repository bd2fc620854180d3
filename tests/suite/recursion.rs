//! Recursive mode over real sockets: Lollipop recursing from its own root
//! hints through a hierarchy of NSD servers on loopback (`support::nsd`),
//! validating against the hierarchy's root key. Answers, negative answers
//! and CNAME chains across zones come back as from a forwarder; filtering
//! is the same (a blocked name is never asked, a CNAME to a blocked name is
//! blocked); a silent zone gets SERVFAIL with a reason in time; validated
//! answers get AD for clients that ask, tampered ones SERVFAIL with EDE 6;
//! Debian's Unbound, given the same hints and key, agrees name for name; a
//! reload switches between forwarding and recursion.
//!
//! `checking` shows CD (checking disabled) clients given what failed
//! validation, DNSSEC before the clock is trusted and signatures not yet
//! valid; `forwarding_validated` the same checks made while forwarding.
//!
//! The recursor only asks port 53, so the hierarchy binds 127.0.<net>.x:53
//! (the tests run as root); each test has its own `net`. Needs Debian's
//! `nsd`, `ldnsutils` and `unbound`.

use std::time::{Duration, Instant};

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

use crate::support::nsd::{self, Hierarchy};
use crate::support::scripted::{Behaviour, ScriptedUpstream};
use crate::support::*;

mod anchor_renewal;
mod checking;
mod forwarding_validated;

/// The school's domain controller, for `[[zones]]` (a scripted server).
const DC_ADDRESS: &str = "10.0.10.20";

pub(crate) const LISTS: &[(&str, &str)] =
    &[("gambling.txt", "games.silent.test\ncasino.signed.test\n")];

pub(crate) fn start(hierarchy: &Hierarchy) -> TestLollipop {
    start_with(hierarchy, "")
}

pub(crate) fn start_with(hierarchy: &Hierarchy, resolver_keys: &str) -> TestLollipop {
    start_with_zones(hierarchy, resolver_keys, "")
}

/// Lollipop recursing through `hierarchy`, with more `[resolver]` keys and
/// `[[zones]]` if given.
fn start_with_zones(hierarchy: &Hierarchy, resolver_keys: &str, zones: &str) -> TestLollipop {
    let config = TestConfig::new()
        .listen("127.0.0.1:0")
        .section(zones)
        .table(
            "resolver",
            &format!("{}\n{resolver_keys}", hierarchy.resolver_keys()),
        )
        .table("blocking", "answer = \"null\"")
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let unused = TestUpstream::start();
    TestLollipop::start(&config, &unused, LISTS)
}

/// One UDP exchange waiting up to `wait`, through interruptions: the other
/// recursion test ends its NSDs meanwhile, and a signal must not pass for
/// silence.
fn exchange_patiently(server: std::net::SocketAddr, query: &Message, wait: Duration) -> Vec<u8> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket
        .send_to(&query.to_bytes().expect("encode"), server)
        .expect("send");
    let deadline = Instant::now() + wait;
    let mut buffer = vec![0u8; 65_535];
    let mut errors = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match socket.recv_from(&mut buffer) {
            Ok((len, _)) => return buffer[..len].to_vec(),
            Err(error) => errors.push(error.kind()),
        }
    }
    panic!("no answer within {wait:?} ({errors:?})");
}

pub(crate) fn with_do() -> Ask {
    Ask {
        dnssec_ok: true,
        ..Ask::default()
    }
}

/// What a validating Lollipop answers for the hierarchy's names asked with
/// DO, recursing or forwarding: the RCODE, the EDE of a SERVFAIL, and AD.
const VERDICTS: &[(&str, RecordType, ResponseCode, Option<u16>, bool)] = &[
    (
        "www.signed.test.",
        RecordType::A,
        ResponseCode::NoError,
        None,
        true,
    ),
    (
        "bad.signed.test.",
        RecordType::A,
        ResponseCode::ServFail,
        Some(6),
        false,
    ),
    (
        "nokey.signed.test.",
        RecordType::A,
        ResponseCode::ServFail,
        Some(9),
        false,
    ),
    (
        "www.expired.test.",
        RecordType::A,
        ResponseCode::ServFail,
        Some(7),
        false,
    ),
    (
        "nope.signed.test.",
        RecordType::A,
        ResponseCode::NXDomain,
        None,
        true,
    ),
    (
        "www.signed.test.",
        RecordType::TXT,
        ResponseCode::NoError,
        None,
        true,
    ),
    (
        "www.plain.test.",
        RecordType::A,
        ResponseCode::NoError,
        None,
        false,
    ),
    (
        "nope.plain.test.",
        RecordType::A,
        ResponseCode::NXDomain,
        None,
        false,
    ),
];

/// Asks `server` each of [`VERDICTS`] and checks the answer.
pub(crate) fn assert_dnssec_verdicts(server: std::net::SocketAddr) {
    for &(name, record_type, code, extended, authentic) in VERDICTS {
        let reply = ask(server, name, record_type, with_do());
        match extended {
            Some(extended) => {
                servfail_with(&reply, extended);
                assert!(
                    answers(&reply).is_empty(),
                    "no data with a SERVFAIL: {reply:?}"
                );
            }
            None => assert_eq!(reply.metadata.response_code, code, "{name}: {reply:?}"),
        }
        assert_eq!(
            reply.metadata.authentic_data, authentic,
            "AD for {name} {record_type}: {reply:?}"
        );
    }
}

#[test]
fn recursion_answers_from_the_root_hints_and_filters_as_forwarding_does() {
    let hierarchy = Hierarchy::start(53);
    let lollipop = start(&hierarchy);

    // An A record, from the root hints down (cold: nothing cached).
    let started = Instant::now();
    let reply = a(lollipop.address(), "www.plain.test.");
    let cold = started.elapsed();
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&reply), [format!("A {}", nsd::WWW_PLAIN)]);
    eprintln!("cold recursion of www.plain.test (validating, debug build): {cold:?}");

    // A name below an empty non-terminal (`ent.plain.test` has no records
    // of its own): QNAME minimisation must not stop there.
    let reply = a(lollipop.address(), "host.ent.plain.test.");
    assert_eq!(
        answers(&reply),
        [format!("A {}", nsd::WWW_PLAIN)],
        "{reply:?}"
    );

    // A delegation without glue: the server's own name is looked up first.
    let reply = a(lollipop.address(), "www.glueless.test.");
    assert_eq!(
        answers(&reply),
        [format!("A {}", nsd::WWW_GLUELESS)],
        "{reply:?}"
    );

    // A lame delegation (its server answers REFUSED): SERVFAIL saying why.
    let started = Instant::now();
    let reply = a(lollipop.address(), "www.lame.test.");
    let text = servfail_with(&reply, 22);
    assert!(text.contains("www.lame.test"), "{text}");
    eprintln!(
        "lame delegation: SERVFAIL after {:?}, EDE 22: {text}",
        started.elapsed()
    );

    // The school's zones are still asked first, and private names never
    // leave: a [[zones]] domain goes to its server, not to the recursor.
    let dc = ScriptedUpstream::answering(
        Behaviour::Answer { ttl: 60 },
        DC_ADDRESS.parse().expect("ip"),
    );
    let zoned = start_with_zones(
        &hierarchy,
        "",
        &format!(
            "[[zones]]\ndomain = \"corp.test\"\nservers = [\"{}\"]",
            dc.address
        ),
    );
    let reply = a(zoned.address(), "dc01.corp.test.");
    assert_eq!(answers(&reply), [format!("A {DC_ADDRESS}")], "{reply:?}");
    assert_eq!(dc.names(), ["dc01.corp.test."]);
    let reply = a(zoned.address(), "printer.local.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let reply = a(zoned.address(), "www.plain.test.");
    assert_eq!(answers(&reply), [format!("A {}", nsd::WWW_PLAIN)]);

    // A missing name: NXDOMAIN with the zone's SOA.
    let reply = a(lollipop.address(), "nope.plain.test.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        reply
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        "{reply:?}"
    );

    // A CNAME chain across zones: plain → signed → plain.
    let reply = a(lollipop.address(), "chain.plain.test.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        answers(&reply),
        [
            "CNAME alias.signed.test.".to_string(),
            "CNAME www.plain.test.".to_string(),
            format!("A {}", nsd::WWW_PLAIN)
        ]
    );

    // A blocked name is blocked, and its zone's server never asked.
    let reply = a(lollipop.address(), "games.silent.test.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    assert!(extended_error(&reply).is_some());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        hierarchy
            .silent_queries
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the blocked name's zone was asked"
    );

    // A CNAME whose target is blocked is blocked.
    let reply = a(lollipop.address(), "tobad.plain.test.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"], "{reply:?}");
    assert!(extended_error(&reply).is_some());

    // A zone whose server is silent: SERVFAIL, with a reason, within 5 s.
    let query = query_message("www.silent.test.", RecordType::A, Ask::default());
    let started = Instant::now();
    let bytes = exchange_patiently(lollipop.address(), &query, Duration::from_secs(8));
    let waited = started.elapsed();
    let reply = Message::from_bytes(&bytes).expect("decodes");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    let text = servfail_with(&reply, 22);
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    assert!(
        hierarchy
            .silent_queries
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the silent zone's server was asked"
    );
    eprintln!("silent zone answered SERVFAIL after {waited:?}: {text}");
}

#[test]
fn validated_answers_get_ad_and_tampered_ones_servfail_with_ede_6() {
    let hierarchy = Hierarchy::start(54);
    let lollipop = start(&hierarchy);

    let started = Instant::now();
    let reply = ask(
        lollipop.address(),
        "www.signed.test.",
        RecordType::A,
        with_do(),
    );
    eprintln!(
        "cold validated recursion of www.signed.test (debug build): {:?}",
        started.elapsed()
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    // The answer and, since DO was set, its signature.
    let types: Vec<RecordType> = reply.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::A, RecordType::RRSIG], "{reply:?}");
    assert_eq!(answers(&reply)[0], format!("A {}", nsd::WWW_SIGNED));
    assert!(reply.metadata.authentic_data, "AD for DO: {reply:?}");

    // Not for a client that asked for neither DO nor AD, nor the RRSIG.
    let reply = a(lollipop.address(), "www.signed.test.");
    assert_eq!(answers(&reply), [format!("A {}", nsd::WWW_SIGNED)]);
    assert!(!reply.metadata.authentic_data, "{reply:?}");
    // For one that set AD (RFC 6840 5.7).
    let mut query = query_message("www.signed.test.", RecordType::A, Ask::default());
    query.metadata.authentic_data = true;
    let bytes =
        exchange_udp(lollipop.address(), &query.to_bytes().expect("encode")).expect("reply");
    let reply = Message::from_bytes(&bytes).expect("decodes");
    assert!(reply.metadata.authentic_data, "AD for AD: {reply:?}");

    // Each kind of answer and Bogus, with its EDE and AD (the same checks
    // as when forwarding with validation).
    assert_dnssec_verdicts(lollipop.address());

    // With validation off, the tampered record is served as it is, and
    // nothing gets AD.
    let unvalidated = start_with(&hierarchy, "dnssec = \"off\"");
    let reply = ask(
        unvalidated.address(),
        "bad.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert_eq!(answers(&reply), ["A 192.0.2.67"], "{reply:?}");
    let reply = ask(
        unvalidated.address(),
        "www.signed.test.",
        RecordType::A,
        with_do(),
    );
    assert!(!reply.metadata.authentic_data, "{reply:?}");

    // Negative answers without validation: NXDOMAIN and NODATA as given.
    let reply = a(unvalidated.address(), "nope.plain.test.");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "{reply:?}"
    );
    let reply = ask(
        unvalidated.address(),
        "www.plain.test.",
        RecordType::TXT,
        Ask::default(),
    );
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert!(answers(&reply).is_empty(), "{reply:?}");

    let reply = ask(
        lollipop.address(),
        "nope.signed.test.",
        RecordType::A,
        with_do(),
    );
    // With its proof of non-existence for the DO client.
    assert!(
        reply
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::NSEC),
        "NSEC for DO: {reply:?}"
    );
}

/// The record sets (without signatures, sorted), RCODE and AD of a reply.
fn outcome(reply: &Message) -> (ResponseCode, Vec<String>, bool) {
    let mut records: Vec<String> = reply
        .answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .map(|r| format!("{} {} {}", r.name.to_lowercase(), r.record_type(), r.data))
        .collect();
    records.sort();
    (
        reply.metadata.response_code,
        records,
        reply.metadata.authentic_data,
    )
}

#[test]
fn lollipop_and_unbound_agree_on_every_name_of_the_hierarchy() {
    let hierarchy = Hierarchy::start(55);
    let lollipop = start(&hierarchy);
    let unbound = crate::support::unbound::Unbound::start(&hierarchy);
    let names = [
        ("www.plain.test.", RecordType::A),
        ("www.plain.test.", RecordType::TXT),
        ("nope.plain.test.", RecordType::A),
        ("chain.plain.test.", RecordType::A),
        ("host.ent.plain.test.", RecordType::A),
        ("ent.plain.test.", RecordType::A),
        ("www.signed.test.", RecordType::A),
        ("www.signed.test.", RecordType::TXT),
        ("nope.signed.test.", RecordType::A),
        ("alias.signed.test.", RecordType::A),
        ("bad.signed.test.", RecordType::A),
        ("www.expired.test.", RecordType::A),
        ("www.glueless.test.", RecordType::A),
        ("www.lame.test.", RecordType::A),
        ("nope.test.", RecordType::A),
        // Zone apexes: the parent answers with a referral, not the data.
        ("plain.test.", RecordType::SOA),
        ("signed.test.", RecordType::A),
        ("signed.test.", RecordType::SOA),
        ("test.", RecordType::SOA),
        ("test.", RecordType::NS),
    ];
    let mut differences = Vec::new();
    let (mut our_time, mut their_time) = (Duration::ZERO, Duration::ZERO);
    for (name, record_type) in names {
        for dnssec_ok in [false, true] {
            let how = Ask {
                dnssec_ok,
                ..Ask::default()
            };
            let started = Instant::now();
            let ours = outcome(&ask(lollipop.address(), name, record_type, how));
            our_time += started.elapsed();
            let started = Instant::now();
            let theirs = outcome(&ask(unbound.address, name, record_type, how));
            their_time += started.elapsed();
            if ours != theirs {
                differences.push(format!(
                    "{name} {record_type} DO={dnssec_ok}: Lollipop {ours:?}, Unbound {theirs:?}"
                ));
            }
        }
    }
    // A figure to watch, not a check: Lollipop here is a debug build.
    eprintln!(
        "{} questions, each name new to both: Lollipop {our_time:?}, Unbound {their_time:?}",
        names.len() * 2
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn a_reload_switches_between_forwarding_and_recursion() {
    let hierarchy = Hierarchy::start(56);
    let upstream = TestUpstream::start();
    let config = TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        .table("resolver", "timeout_ms = 1500\nattempts = 1")
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let lollipop = TestLollipop::start(&config, &upstream, LISTS);
    // Forwarding: the test upstream does not know the hierarchy's names.
    let before = a(lollipop.address(), "www.plain.test.");
    assert_ne!(answers(&before), [format!("A {}", nsd::WWW_PLAIN)]);

    let keys = hierarchy.resolver_keys();
    let outcome =
        lollipop.reload_with(|text| text.replace("[resolver]\n", &format!("[resolver]\n{keys}\n")));
    assert!(
        matches!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded),
        "{outcome:?}"
    );
    let after = a(lollipop.address(), "www.plain.test.");
    assert_eq!(
        answers(&after),
        [format!("A {}", nsd::WWW_PLAIN)],
        "{after:?}"
    );

    // And back: the upstream (and a fresh cache) again.
    let outcome = lollipop.reload_with(|text| text.replace(&format!("{keys}\n"), ""));
    assert!(
        matches!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded),
        "{outcome:?}"
    );
    let back = a(lollipop.address(), "www.plain.test.");
    assert_eq!(answers(&back), answers(&before), "{back:?}");
}

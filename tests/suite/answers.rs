//! End-to-end answers over real sockets: blocked, allowed, walled garden,
//! locked, safe search, circumvention, CNAME cloaking, EDE, EDNS, truncation,
//! access control and malformed queries.

use crate::support::*;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

/// A school with one listener per profile, so each test picks the profile
/// by the address it asks.
fn config() -> String {
    TestConfig::school()
        .server("tcp_idle_timeout_secs = 2")
        .listen_for("127.0.0.1:0", "ks2")
        .listen_for("127.0.0.1:0", "under5")
        .listen_for("127.0.0.1:0", "staff")
        .list("test-under5", "under5.txt", "under5-allow")
        .list("test-bypass", "bypass.txt", "bypass")
        .blocklist(
            "ks2",
            &["gambling", "video", "bypass"],
            r#"allow_domains = ["ok.bet365.com"]
deny_domains = ["news.example.org"]
safe_search = true
youtube = "strict""#,
        )
        .profile(
            "under5",
            r#"mode = "allowlist"
allow_categories = ["under5-allow"]
block_categories = ["gambling"]
safe_search = true
youtube = "strict""#,
        )
        .blocklist(
            "staff",
            &["gambling"],
            r#"allow_domains = ["news.example.org"]
safe_search = true
youtube = "moderate""#,
        )
        .toml()
}

const LISTS: &[(&str, &str)] = &[
    ("gambling.txt", "# gambling\nbet365.com\n"),
    ("video.txt", "youtube.com\n"),
    ("under5.txt", "cbeebies.com\nbbc.co.uk\n"),
    ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
    ("bypass.txt", "dns.google\ncloudflare-dns.com\n"),
];

struct School {
    _upstream: TestUpstream,
    lollipop: TestLollipop,
}

impl School {
    fn start() -> School {
        let upstream = TestUpstream::start();
        let lollipop = TestLollipop::start(&config(), &upstream, LISTS);
        School {
            _upstream: upstream,
            lollipop,
        }
    }
    fn ks2(&self) -> std::net::SocketAddr {
        self.lollipop.addresses[0]
    }
    fn under5(&self) -> std::net::SocketAddr {
        self.lollipop.addresses[1]
    }
    fn staff(&self) -> std::net::SocketAddr {
        self.lollipop.addresses[2]
    }
}

#[test]
fn allowed_names_come_from_the_upstream() {
    let school = School::start();
    let reply = a(school.ks2(), "www.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&reply), ["A 192.0.2.10"]);
    assert!(reply.metadata.recursion_available);
    assert_eq!(extended_error(&reply), None);

    let reply = ask(
        school.ks2(),
        "www.example.com.",
        RecordType::AAAA,
        Ask::default(),
    );
    assert_eq!(answers(&reply), ["AAAA 2001:db8::10"]);

    let reply = a(school.ks2(), "missing.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        reply
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        "negative answers carry the upstream's SOA"
    );
}

#[test]
fn blocked_names_get_null_addresses_with_an_extended_error() {
    let school = School::start();
    for name in ["bet365.com.", "www.bet365.com.", "deep.sub.BET365.com."] {
        let reply = a(school.ks2(), name);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(answers(&reply), ["A 0.0.0.0"], "{name}");
        assert_eq!(reply.answers[0].ttl, 30);
        let (code, text) = extended_error(&reply).expect("EDE present");
        assert_eq!(code, 17, "Filtered");
        assert!(text.contains("gambling") && text.contains("ks2"), "{text}");
    }
    let reply = ask(
        school.ks2(),
        "bet365.com.",
        RecordType::AAAA,
        Ask::default(),
    );
    assert_eq!(answers(&reply), ["AAAA ::"]);
    // HTTPS (type 65) and other types: no records, still with the EDE.
    for record_type in [RecordType::HTTPS, RecordType::SVCB, RecordType::MX] {
        let reply = ask(school.ks2(), "bet365.com.", record_type, Ask::default());
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty(), "{record_type}");
        assert!(extended_error(&reply).is_some(), "{record_type}");
    }
    // A name that only looks like the blocked one is not blocked.
    let reply = a(school.ks2(), "notbet365.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(extended_error(&reply), None);
}

#[test]
fn profile_allow_beats_a_less_specific_block_and_deny_blocks() {
    let school = School::start();
    // ok.bet365.com is allowed for ks2 although bet365.com is gambling.
    let reply = a(school.ks2(), "ok.bet365.com.");
    assert!(extended_error(&reply).is_none(), "allowed: {reply:?}");
    assert_ne!(answers(&reply), ["A 0.0.0.0"]);
    // news.example.org is on ks2's deny list but staff's allow list.
    let reply = a(school.ks2(), "news.example.org.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    let (_, text) = extended_error(&reply).expect("EDE");
    assert!(text.contains("ks2"), "{text}");
    let reply = a(school.staff(), "news.example.org.");
    assert_eq!(answers(&reply), ["A 192.0.2.15"]);
}

#[test]
fn the_walled_garden_allows_only_its_list() {
    let school = School::start();
    let reply = a(school.under5(), "www.cbeebies.com.");
    assert_eq!(answers(&reply), ["A 192.0.2.12"]);
    let reply = a(school.under5(), "www.bbc.co.uk.");
    assert_eq!(answers(&reply), ["A 192.0.2.11"]);
    let reply = a(school.under5(), "www.example.com.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    let (code, text) = extended_error(&reply).expect("EDE");
    assert_eq!(code, 17);
    assert!(
        text.contains("approved list") && text.contains("under5"),
        "{text}"
    );
}

#[test]
fn locked_categories_block_every_profile_with_ede_blocked() {
    let school = School::start();
    for server in [school.ks2(), school.under5(), school.staff()] {
        let reply = a(server, "abuse.example.com.");
        assert_eq!(answers(&reply), ["A 0.0.0.0"]);
        let (code, text) = extended_error(&reply).expect("EDE");
        assert_eq!(code, 15, "Blocked");
        assert!(text.contains("iwf"), "{text}");
    }
}

#[test]
fn safe_search_rewrites_to_the_enforcement_host() {
    let school = School::start();
    let reply = a(school.ks2(), "www.google.co.uk.");
    assert_eq!(
        answers(&reply),
        ["CNAME forcesafesearch.google.com.", "A 216.239.38.120"]
    );
    let reply = ask(
        school.ks2(),
        "www.google.com.",
        RecordType::AAAA,
        Ask::default(),
    );
    assert_eq!(
        answers(&reply),
        [
            "CNAME forcesafesearch.google.com.",
            "AAAA 2001:4860:4802:32::78"
        ]
    );
    let reply = ask(
        school.ks2(),
        "www.google.com.",
        RecordType::HTTPS,
        Ask::default(),
    );
    assert_eq!(answers(&reply)[0], "CNAME forcesafesearch.google.com.");
    let reply = a(school.staff(), "www.bing.com.");
    assert_eq!(
        answers(&reply),
        ["CNAME strict.bing.com.", "A 204.79.197.220"]
    );
    let reply = a(school.staff(), "duckduckgo.com.");
    assert_eq!(
        answers(&reply),
        ["CNAME safe.duckduckgo.com.", "A 52.142.124.215"]
    );
    // YouTube: staff get moderate; ks2 blocks video outright.
    let reply = a(school.staff(), "www.youtube.com.");
    assert_eq!(
        answers(&reply),
        ["CNAME restrictmoderate.youtube.com.", "A 216.239.38.119"]
    );
    let reply = a(school.ks2(), "www.youtube.com.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
}

#[test]
fn circumvention_controls_answer_before_the_lists() {
    let school = School::start();
    for server in [school.ks2(), school.staff()] {
        let reply = a(server, "use-application-dns.net.");
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        let reply = a(server, "mask.icloud.com.");
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        let reply = ask(
            server,
            "mask-h2.icloud.com.",
            RecordType::AAAA,
            Ask::default(),
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        let reply = ask(
            server,
            "_dns.resolver.arpa.",
            RecordType::SVCB,
            Ask::default(),
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
    }
    // Public DoH resolvers are in the bypass category, blocked for children.
    let reply = a(school.ks2(), "dns.google.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    let (_, text) = extended_error(&reply).expect("EDE");
    assert!(text.contains("bypass"), "{text}");
}

#[test]
fn cname_cloaking_is_caught_in_the_upstream_answer() {
    let school = School::start();
    let reply = a(school.ks2(), "promo.example.net.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"], "alias of a gambling site");
    let (_, text) = extended_error(&reply).expect("EDE");
    assert!(text.contains("gambling"), "{text}");
    let reply = a(school.ks2(), "cdn.example.net.");
    assert_eq!(
        answers(&reply),
        ["CNAME www.example.com.", "A 192.0.2.10"],
        "an innocent alias passes"
    );
}

#[test]
fn edns_payload_is_clamped_and_do_is_echoed() {
    let school = School::start();
    let reply = ask(
        school.ks2(),
        "www.example.com.",
        RecordType::A,
        Ask {
            edns: Some(4096),
            dnssec_ok: true,
            ..Ask::default()
        },
    );
    let edns = reply.edns.as_ref().expect("OPT in reply");
    assert_eq!(edns.max_payload(), 1232);
    assert!(edns.flags().dnssec_ok);
    let reply = ask(
        school.ks2(),
        "www.example.com.",
        RecordType::A,
        Ask {
            edns: None,
            ..Ask::default()
        },
    );
    assert!(reply.edns.is_none(), "no OPT unless the query had one");
    assert_eq!(answers(&reply), ["A 192.0.2.10"]);
}

#[test]
fn edns_version_above_zero_gets_badvers() {
    let school = School::start();
    let reply = ask(
        school.ks2(),
        "www.example.com.",
        RecordType::A,
        Ask {
            edns_version: 1,
            ..Ask::default()
        },
    );
    // 16 is BADVERS in an answer with OPT (the decoder names it BADSIG,
    // which shares the number).
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert_eq!(reply.edns.as_ref().expect("OPT").version(), 0);
    assert!(reply.answers.is_empty());
    let out = dig(
        school.ks2(),
        &["+edns=1", "+noednsnegotiation", "www.example.com"],
    );
    assert!(out.contains("status: BADVERS"), "{out}");
}

#[test]
fn big_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let school = School::start();
    let small = Ask {
        edns: None,
        ..Ask::default()
    };
    let reply = ask(school.ks2(), "big.example.com.", RecordType::TXT, small);
    assert!(reply.metadata.truncation, "TC set over UDP at 512 bytes");
    let reply = ask(
        school.ks2(),
        "big.example.com.",
        RecordType::TXT,
        Ask { tcp: true, ..small },
    );
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 8);
    // dig retries over TCP by itself and gets all eight.
    let out = dig(school.ks2(), &["+noedns", "big.example.com", "TXT"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert_eq!(out.matches("\tTXT\t").count(), 8, "{out}");
}

#[test]
fn dig_sees_the_block_and_its_reason() {
    let school = School::start();
    let out = dig(school.ks2(), &["bet365.com", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("0.0.0.0"), "{out}");
    assert!(out.contains("EDE: 17 (Filtered)"), "{out}");
    assert!(
        out.contains("category gambling blocked for profile ks2"),
        "{out}"
    );
    let out = dig(school.ks2(), &["+tcp", "www.example.com", "A"]);
    assert!(out.contains("192.0.2.10"), "{out}");
}

#[test]
fn malformed_queries_get_an_error_or_silence_and_the_server_keeps_answering() {
    let school = School::start();
    let server = school.ks2();
    use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
    use hickory_server::proto::rr::Name;
    use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

    // No question: FORMERR.
    let empty = Message::new(7, MessageType::Query, OpCode::Query);
    let reply = exchange_udp(server, &empty.to_bytes().expect("encode")).expect("reply");
    let reply = Message::from_bytes(&reply).expect("decodes");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    // Two questions: FORMERR.
    let mut two = Message::new(8, MessageType::Query, OpCode::Query);
    two.add_query(Query::query(
        Name::from_ascii("a.example.com.").expect("n"),
        RecordType::A,
    ));
    two.add_query(Query::query(
        Name::from_ascii("b.example.com.").expect("n"),
        RecordType::A,
    ));
    let reply = exchange_udp(server, &two.to_bytes().expect("encode")).expect("reply");
    let reply = Message::from_bytes(&reply).expect("decodes");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    // A label length pointing past the end of the packet: FORMERR or silence.
    let mut bad_label = query_message("www.example.com.", RecordType::A, Ask::default())
        .to_bytes()
        .expect("encode");
    bad_label[12] = 63;
    if let Some(reply) = exchange_udp(server, &bad_label) {
        let reply = Message::from_bytes(&reply).expect("decodes");
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }

    // Garbage of every short length, and random bytes: never a crash.
    for len in 0..40 {
        let garbage: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let quick = std::time::Duration::from_millis(50);
        let _ = exchange_udp_within(server, &garbage, quick);
        let _ = exchange_tcp_within(server, &garbage, quick);
    }
    // A response sent to us is ignored (no reflection).
    let mut response = query_message("www.example.com.", RecordType::A, Ask::default());
    response.metadata.message_type = MessageType::Response;
    assert!(exchange_udp(server, &response.to_bytes().expect("encode")).is_none());

    // A non-IN class: NOTIMP.
    let mut chaos = query_message("version.bind.", RecordType::TXT, Ask::default());
    chaos.queries[0].set_query_class(hickory_server::proto::rr::DNSClass::CH);
    let reply = exchange_udp(server, &chaos.to_bytes().expect("encode")).expect("reply");
    let reply = Message::from_bytes(&reply).expect("decodes");
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    // Still answering.
    assert_eq!(answers(&a(server, "www.example.com.")), ["A 192.0.2.10"]);
}

#[test]
fn a_compressed_question_is_answered_with_the_question_written_out() {
    let school = School::start();
    let server = school.ks2();
    use hickory_server::proto::op::Message;
    use hickory_server::proto::serialize::binary::BinDecodable;
    // The question's name is a pointer to offset 11 of the query's own
    // header (a zero byte: the root name). Echoed as it came, the pointer
    // would point into the response's header.
    let query = [
        0x51, 0x52, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 11, 0, 2, 0, 1,
    ];
    for reply in [
        exchange_udp(server, &query).expect("a UDP reply"),
        exchange_tcp_within(server, &query, std::time::Duration::from_secs(5))
            .expect("a TCP reply"),
    ] {
        assert_eq!(&reply[..2], &[0x51, 0x52]);
        assert_eq!(&reply[4..6], &[0, 1], "one question");
        assert_eq!(
            &reply[12..17],
            &[0, 0, 2, 0, 1],
            "the root name, NS, IN, written out"
        );
        assert!(!reply.windows(2).any(|w| w == [0xc0, 11]), "{reply:?}");
        let message = Message::from_bytes(&reply).expect("decodes");
        assert!(message.queries[0].name().is_root());
    }
    // Still answering.
    assert_eq!(answers(&a(server, "www.example.com.")), ["A 192.0.2.10"]);
}

#[test]
fn a_malformed_cookie_gets_formerr_and_is_counted_not_logged() {
    let school = School::start();
    let server = school.ks2();
    use hickory_server::proto::op::Message;
    use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
    let no_edns = Ask {
        edns: None,
        ..Ask::default()
    };
    let mut query = query_message("www.example.com.", RecordType::A, no_edns)
        .to_bytes()
        .expect("encode");
    // One OPT record carrying a 5-byte cookie (RFC 7873 allows 8 or 16-40).
    query[11] = 1;
    query.extend_from_slice(&[
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 9, 0, 10, 0, 5, 1, 2, 3, 4, 5,
    ]);
    for _ in 0..3 {
        let reply = exchange_udp(server, &query).expect("a reply");
        let reply = Message::from_bytes(&reply).expect("decodes");
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }
    let running = school.lollipop.running();
    let lists = running.pipeline.settings().policy.lists.clone();
    let text = running.metrics.render(&lists, &running.journal.stats());
    assert!(
        text.contains("lollipop_malformed_queries_total 3"),
        "{text}"
    );
    // Still answering.
    assert_eq!(answers(&a(server, "www.example.com.")), ["A 192.0.2.10"]);
}

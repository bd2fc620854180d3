//! Forwarding: plain UDP/TCP, DNS-over-TLS and DNS-over-HTTPS to a test
//! upstream on loopback, failover past a dead server, and the cache.

use crate::support::*;
use hickory_server::proto::op::ResponseCode;

fn config(upstreams: &str) -> String {
    TestConfig::new()
        .listen("127.0.0.1:0")
        .table("resolver", "timeout_ms = 500\nattempts = 2")
        .section(upstreams)
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml()
}

const LISTS: &[(&str, &str)] = &[("gambling.txt", "bet365.com\n")];

#[test]
fn forwards_over_dns_over_tls() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config(&format!(
            "[[upstream]]\naddress = \"{{upstream_tls}}\"\nprotocol = \"tls\"\ntls_name = \"{TLS_NAME}\"\nca_file = \"{{ca}}\"\n"
        )),
        &upstream,
        LISTS,
    );
    let reply = a(lollipop.address(), "www.example.com.");
    assert_eq!(answers(&reply), ["A 192.0.2.10"]);
    assert!(upstream.query_count() >= 1);
}

#[test]
fn forwards_over_dns_over_https() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config(&format!(
            "[[upstream]]\naddress = \"{{upstream_https}}\"\nprotocol = \"https\"\ntls_name = \"{TLS_NAME}\"\nca_file = \"{{ca}}\"\n"
        )),
        &upstream,
        LISTS,
    );
    let reply = a(lollipop.address(), "www.example.com.");
    assert_eq!(answers(&reply), ["A 192.0.2.10"]);
    let reply = a(lollipop.address(), "missing.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config(
            "[[upstream]]\naddress = \"{upstream_tls}\"\nprotocol = \"tls\"\ntls_name = \"wrong.test\"\nca_file = \"{ca}\"\n",
        ),
        &upstream,
        LISTS,
    );
    let reply = a(lollipop.address(), "www.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        upstream.query_count(),
        0,
        "no query sent over an unverified link"
    );
}

#[test]
fn fails_over_from_a_dead_upstream() {
    let upstream = TestUpstream::start();
    // A port with nothing behind it: UDP is refused, TCP resets.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dead_address = dead.local_addr().expect("addr");
    drop(dead);
    let lollipop = TestLollipop::start(
        &config(&format!(
            "[[upstream]]\naddress = \"{dead_address}\"\nprotocol = \"udp\"\n\n[[upstream]]\naddress = \"{{upstream}}\"\nprotocol = \"udp\"\n"
        )),
        &upstream,
        LISTS,
    );
    for name in ["www.example.com.", "www.bbc.co.uk.", "news.example.org."] {
        let reply = a(lollipop.address(), name);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(reply.answers.len(), 1, "{name}");
    }
}

#[test]
fn all_upstreams_down_is_servfail_and_blocks_still_answer() {
    let upstream = TestUpstream::start();
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dead_address = dead.local_addr().expect("addr");
    drop(dead);
    let lollipop = TestLollipop::start(
        &config(&format!(
            "[[upstream]]\naddress = \"{dead_address}\"\nprotocol = \"udp\"\n"
        )),
        &upstream,
        LISTS,
    );
    let reply = a(lollipop.address(), "www.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    let reply = a(lollipop.address(), "bet365.com.");
    assert_eq!(
        answers(&reply),
        ["A 0.0.0.0"],
        "filtering needs no upstream"
    );
}

#[test]
fn repeated_questions_are_answered_from_the_cache() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config("[[upstream]]\naddress = \"{upstream}\"\nprotocol = \"udp\"\n"),
        &upstream,
        LISTS,
    );
    let first = a(lollipop.address(), "www.example.com.");
    let after_first = upstream.query_count();
    for _ in 0..20 {
        let again = a(lollipop.address(), "www.example.com.");
        assert_eq!(answers(&again), answers(&first));
    }
    assert_eq!(
        upstream.query_count(),
        after_first,
        "no new upstream queries"
    );
    // Blocked names never reach the upstream at all.
    let before = upstream.query_count();
    a(lollipop.address(), "www.bet365.com.");
    assert_eq!(upstream.query_count(), before);
}

#[test]
fn a_flood_beyond_the_in_flight_limit_gets_servfail_at_once() {
    use hickory_server::proto::op::Message;
    use hickory_server::proto::rr::RecordType;
    use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
    use std::time::{Duration, Instant};
    let upstream = TestUpstream::start();
    // An upstream that never answers: lookups wait out the timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent_address = silent.local_addr().expect("addr");
    let lollipop = TestLollipop::start(
        &config(&format!(
            "[[upstream]]\naddress = \"{silent_address}\"\nprotocol = \"udp\"\n"
        ))
        .replace("attempts = 2", "attempts = 1\nmax_in_flight = 2")
        .replace("timeout_ms = 500", "timeout_ms = 3000"),
        &upstream,
        LISTS,
    );
    // Two lookups occupy both slots...
    let waiting: Vec<std::net::UdpSocket> = ["a.example.com.", "b.example.com."]
        .iter()
        .map(|name| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            let q = query_message(name, RecordType::A, Ask::default());
            socket
                .send_to(&q.to_bytes().expect("encode"), lollipop.address())
                .expect("send");
            socket
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...so a third is refused service at once rather than queued.
    let started = Instant::now();
    let reply = a(lollipop.address(), "c.example.com.");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Blocked names need no slot.
    assert_eq!(
        answers(&a(lollipop.address(), "bet365.com.")),
        ["A 0.0.0.0"]
    );
    for socket in waiting {
        socket
            .set_read_timeout(Some(Duration::from_secs(6)))
            .expect("timeout");
        let mut buf = [0u8; 1500];
        let (len, _) = socket.recv_from(&mut buf).expect("the waiting lookups end");
        let reply = Message::from_bytes(&buf[..len]).expect("decodes");
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
}

//! The other blocked-answer modes (NXDOMAIN, block page) and the TCP idle
//! timeout, over real sockets.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::*;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

fn config(blocking: &str) -> String {
    TestConfig::new()
        .server("tcp_idle_timeout_secs = 1")
        .listen("127.0.0.1:0")
        .table("blocking", blocking)
        .upstream("{upstream}")
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml()
}

const LISTS: &[(&str, &str)] = &[("gambling.txt", "bet365.com\n")];

#[test]
fn nxdomain_mode_answers_nxdomain_with_the_reason() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&config("answer = \"nxdomain\""), &upstream, LISTS);
    for record_type in [RecordType::A, RecordType::AAAA, RecordType::HTTPS] {
        let reply = ask(
            lollipop.address(),
            "www.bet365.com.",
            record_type,
            Ask::default(),
        );
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{record_type}"
        );
        assert!(reply.answers.is_empty());
        let (code, text) = extended_error(&reply).expect("EDE");
        assert_eq!(code, 17);
        assert!(text.contains("gambling"), "{text}");
    }
    assert_eq!(
        answers(&a(lollipop.address(), "www.example.com.")),
        ["A 192.0.2.10"]
    );
}

#[test]
fn blockpage_mode_points_at_the_block_page() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config("answer = \"blockpage\"\nblock_page_ipv4 = \"10.0.0.2\"\nttl_secs = 10"),
        &upstream,
        LISTS,
    );
    let reply = a(lollipop.address(), "www.bet365.com.");
    assert_eq!(answers(&reply), ["A 10.0.0.2"]);
    assert_eq!(reply.answers[0].ttl, 10);
    assert!(extended_error(&reply).is_some());
    // No IPv6 block page configured: AAAA gets no records, so the browser
    // falls back to the IPv4 block page.
    let reply = ask(
        lollipop.address(),
        "www.bet365.com.",
        RecordType::AAAA,
        Ask::default(),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    assert!(extended_error(&reply).is_some());
}

#[test]
fn blockpage_mode_without_an_address_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = TestUpstream::start();
    let text = expand(&config("answer = \"blockpage\""), &upstream, dir.path());
    let errors = lollipop::config::Config::parse(&text, Default::default())
        .expect_err("blockpage needs an address");
    assert!(errors.to_string().contains("block_page_ipv4"), "{errors}");
}

#[test]
fn idle_tcp_connections_are_closed() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&config("answer = \"null\""), &upstream, LISTS);
    let mut stream = std::net::TcpStream::connect(lollipop.address()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let opened = Instant::now();
    let mut buf = [0u8; 16];
    let read = stream.read(&mut buf);
    let waited = opened.elapsed();
    assert!(
        matches!(read, Ok(0)) || read.is_err() && waited < Duration::from_secs(9),
        "the server closes an idle connection: {read:?} after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "not before the 1 s idle timeout: {waited:?}"
    );
}

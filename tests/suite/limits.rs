//! The abuse limits over real sockets (`[limits]`): a flooding client is
//! limited while another keeps being answered, trusted forwarders are not,
//! a /24 shares one bucket, ANY gets the small RFC 8482 answer (a blocked
//! name still its block answer), TCP connections are capped per client,
//! pipelined TCP answers are not held back by a slow one, and the status
//! page cuts off slow and surplus connections. Each test sets its own
//! small limits; clients are told apart by their loopback source address.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

use crate::support::*;

const LISTS: &[(&str, &str)] = &[
    ("gambling.txt", "bet365.com\n"),
    ("video.txt", "youtube.com\n"),
    ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
];

/// One listener for a ks2 that blocks gambling, with `limits` as the
/// `[limits]` table.
fn config(limits: &str) -> String {
    TestConfig::school()
        .server("tcp_idle_timeout_secs = 10")
        .listen("127.0.0.1:0")
        .blocklist("ks2", &["gambling"], "")
        .table("limits", limits)
        .toml()
}

fn start(limits: &str) -> (TestUpstream, TestLollipop) {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&config(limits), &upstream, LISTS);
    (upstream, lollipop)
}

fn encoded(name: &str, record_type: RecordType) -> Vec<u8> {
    query_message(name, record_type, Ask::default())
        .to_bytes()
        .expect("encode")
}

/// What came back for a burst of queries from one source.
#[derive(Debug, Default)]
struct Outcome {
    answered: usize,
    truncated: usize,
}

/// Sends `count` queries for `name` from `source` as fast as it can, then
/// collects replies until a second passes without one.
fn flood(server: SocketAddr, source: &str, name: &str, count: usize) -> Outcome {
    let socket = UdpSocket::bind((source, 0)).expect("bind the flooding source");
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut outcome = Outcome::default();
    let mut buffer = vec![0u8; 4096];
    // In rounds, so the client's own receive buffer never overflows.
    for round in (0..count).step_by(50) {
        for _ in round..count.min(round + 50) {
            socket
                .send_to(&encoded(name, RecordType::A), server)
                .expect("send");
        }
        while let Ok((length, _)) = socket.recv_from(&mut buffer) {
            let reply = Message::from_bytes(&buffer[..length]).expect("reply decodes");
            if reply.metadata.truncation {
                outcome.truncated += 1;
            } else if !reply.answers.is_empty() {
                outcome.answered += 1;
            }
            if outcome.answered + outcome.truncated == count {
                break;
            }
        }
    }
    outcome
}

/// Asks once from `source` over UDP; None when nothing came back.
fn ask_from(server: SocketAddr, source: &str, name: &str) -> Option<Message> {
    let socket = UdpSocket::bind((source, 0)).expect("bind the source");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    socket
        .send_to(&encoded(name, RecordType::A), server)
        .expect("send");
    let mut buffer = vec![0u8; 4096];
    let (length, _) = socket.recv_from(&mut buffer).ok()?;
    Message::from_bytes(&buffer[..length]).ok()
}

#[test]
fn a_flooding_client_is_limited_while_another_keeps_being_answered() {
    let (_upstream, lollipop) =
        start("per_address_qps = 1\nper_address_burst = 20\nper_network_qps = 0\nslip = 4");
    let server = lollipop.address();
    // Cached before the flood, so only the limit decides.
    assert!(ask_from(server, "127.0.0.5", "www.example.com").is_some());

    let flooder = std::thread::spawn(move || flood(server, "127.0.0.2", "www.example.com", 600));
    let mut answered = 0;
    for _ in 0..20 {
        if let Some(reply) = ask_from(server, "127.0.0.3", "www.example.com")
            && reply.metadata.response_code == ResponseCode::NoError
            && !reply.answers.is_empty()
        {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let flooded = flooder.join().expect("flooder");

    assert_eq!(answered, 20, "every lookup of the quiet client is answered");
    assert!(
        flooded.answered < 150,
        "most of the flood is not answered: {flooded:?}"
    );
    assert!(
        flooded.truncated > 0,
        "some of the flood is told to use TCP: {flooded:?}"
    );
    let limits = &lollipop.running().metrics.limits;
    assert!(limits.dropped.get() > 0 && limits.slipped.get() > 0);
    let lists = lollipop.running().pipeline.settings().policy.lists.clone();
    let text = lollipop
        .running()
        .metrics
        .render(&lists, &lollipop.log_stats());
    assert!(
        text.contains("lollipop_rate_limited_total{action=\"dropped\"}"),
        "{text}"
    );
    // The stage that answers a repeated question from its bytes was on
    // (the quiet client's repeats were answered by it), and the flood, the
    // same question, was still limited: the limit comes before it.
    assert!(
        lollipop.running().metrics.repeated.get() > 0,
        "the quiet client's repeats were answered from their bytes:\n{text}"
    );
}

#[test]
fn a_trusted_forwarder_is_never_limited() {
    let (_upstream, lollipop) = start(
        "per_address_qps = 1\nper_address_burst = 20\nper_network_qps = 1\nper_network_burst = 20\ntrusted_forwarders = [\"127.0.0.2\"]",
    );
    let flooded = flood(lollipop.address(), "127.0.0.2", "www.example.com", 300);
    assert_eq!(flooded.answered, 300, "{flooded:?}");
    // The same flood from an address not listed is limited.
    let other = flood(lollipop.address(), "127.0.0.3", "www.example.com", 300);
    assert!(other.answered < 100, "{other:?}");
}

#[test]
fn the_network_limit_binds_a_whole_slash_24() {
    let (_upstream, lollipop) = start(
        "per_address_qps = 1000\nper_address_burst = 1000\nper_network_qps = 1\nper_network_burst = 30\nslip = 0",
    );
    let server = lollipop.address();
    let from_one_24: usize = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|source| flood(server, source, "www.example.com", 20).answered)
        .sum();
    assert!(
        (30..45).contains(&from_one_24),
        "60 asked from one /24 sharing a burst of 30: {from_one_24} answered"
    );
    // Another /24 has its own bucket.
    let elsewhere = flood(server, "127.0.1.2", "www.example.com", 20);
    assert_eq!(elsewhere.answered, 20, "{elsewhere:?}");
}

#[test]
fn tcp_queries_over_the_limit_are_refused() {
    let (_upstream, lollipop) =
        start("per_address_qps = 1\nper_address_burst = 5\nper_network_qps = 0");
    let mut codes = Vec::new();
    for _ in 0..12 {
        let reply = exchange_tcp(
            lollipop.address(),
            &encoded("www.example.com", RecordType::A),
        )
        .expect("a TCP reply");
        codes.push(
            Message::from_bytes(&reply)
                .expect("decodes")
                .metadata
                .response_code,
        );
    }
    let refused = codes
        .iter()
        .filter(|&&c| c == ResponseCode::Refused)
        .count();
    assert!(refused >= 5, "{codes:?}");
    assert_eq!(codes[0], ResponseCode::NoError);
    assert!(lollipop.running().metrics.limits.refused.get() >= 5);
}

#[test]
fn any_gets_one_hinfo_record_and_a_blocked_name_still_its_block_answer() {
    let (upstream, lollipop) = start("");
    let before = upstream.query_count();
    for tcp in [false, true] {
        let ask_any = Ask {
            tcp,
            ..Ask::default()
        };
        let reply = ask(
            lollipop.address(),
            "www.example.com",
            RecordType::ANY,
            ask_any,
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&reply).len(), 1, "{:?}", answers(&reply));
        assert_eq!(reply.answers[0].record_type(), RecordType::HINFO);
        assert!(format!("{}", reply.answers[0].data).contains("RFC8482"));

        let blocked = ask(lollipop.address(), "bet365.com", RecordType::ANY, ask_any);
        assert!(answers(&blocked).is_empty(), "{:?}", answers(&blocked));
        let (_, text) = extended_error(&blocked).expect("the block's reason");
        assert!(text.contains("gambling"), "{text}");
    }
    assert_eq!(upstream.query_count(), before, "ANY asks no upstream");
}

/// A TCP connection to `server` from `source`.
fn connect_from(server: SocketAddr, source: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&local.into()).expect("bind the source");
    socket.connect(&server.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

/// Sends one query on `stream` and reads one reply; None if the
/// connection was closed instead.
fn tcp_exchange(stream: &mut TcpStream, name: &str) -> Option<Message> {
    let query = encoded(name, RecordType::A);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).ok()?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).ok()?;
    Message::from_bytes(&reply).ok()
}

#[test]
fn tcp_connections_over_the_per_client_cap_are_closed_and_others_still_answered() {
    let (_upstream, lollipop) = start("tcp_max_connections = 20\ntcp_max_per_client = 3");
    let server = lollipop.address();
    let mut streams: Vec<TcpStream> = (0..6).map(|_| connect_from(server, "127.0.0.2")).collect();
    let answered = streams
        .iter_mut()
        .filter_map(|stream| tcp_exchange(stream, "www.example.com"))
        .count();
    assert_eq!(answered, 3, "three connections kept, three closed");
    assert_eq!(lollipop.running().metrics.limits.dns_tcp_closed.get(), 3);
    let mut other = connect_from(server, "127.0.0.3");
    assert!(tcp_exchange(&mut other, "www.example.com").is_some());
}

#[test]
fn a_slow_upstream_answer_does_not_hold_back_a_quick_one_on_the_same_connection() {
    // An upstream that never answers: the first question waits for the
    // time-out while the blocked one behind it is answered at once.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("silent upstream");
    let text = TestConfig::new()
        .server("tcp_idle_timeout_secs = 10")
        .table("blocking", "answer = \"null\"")
        .upstream(&silent.local_addr().expect("addr").to_string())
        .table("resolver", "timeout_ms = 3000\nattempts = 1")
        .list("test-gambling", "gambling.txt", "gambling")
        .listen("127.0.0.1:0")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&text, &upstream, LISTS);
    let mut stream = connect_from(lollipop.address(), "127.0.0.1");
    // The slow answer comes after the upstream's time-out (and any retry).
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let slow = query_message("slow.example.org", RecordType::A, Ask::default());
    let quick = query_message("bet365.com", RecordType::A, Ask::default());
    for message in [&slow, &quick] {
        let bytes = message.to_bytes().expect("encode");
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).expect("send");
    }
    let mut read_reply = || {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).expect("a reply");
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut reply).expect("a reply");
        Message::from_bytes(&reply).expect("decodes")
    };
    let first = read_reply();
    assert_eq!(
        first.metadata.id, quick.metadata.id,
        "the quick answer comes first"
    );
    let second = read_reply();
    assert_eq!(second.metadata.id, slow.metadata.id);
    assert_eq!(second.metadata.response_code, ResponseCode::ServFail);
}

/// Whether the server closed `stream` (EOF or reset) rather than letting
/// the read time out.
fn closed_by_server(stream: &mut impl Read) -> bool {
    let mut buffer = [0u8; 256];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            // A response (e.g. 408) before the close is still a close.
            Ok(_) => continue,
            Err(error) => {
                return !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            }
        }
    }
}

fn slow_page(tls: bool) -> web::WebSchool {
    web::WebSchool::start_with(move |config| {
        config.web.tls = tls;
        config.limits.web_header_read_timeout_secs = 1;
    })
}

#[test]
fn a_slowloris_connection_to_the_page_is_closed_after_the_header_read_time() {
    let school = slow_page(false);
    let mut slow = TcpStream::connect(school.web).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    slow.write_all(b"GET /login HT")
        .expect("half a request line");
    assert!(
        closed_by_server(&mut slow),
        "the half-sent request is cut off"
    );
    // Nothing sent at all is cut off too.
    let mut silent = TcpStream::connect(school.web).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(closed_by_server(&mut silent));
    assert_eq!(school.client().get("/login").status, 200);
}

#[test]
fn a_slowloris_connection_over_tls_is_closed_after_the_header_read_time() {
    let school = slow_page(true);
    // No handshake at all.
    let mut silent = TcpStream::connect(school.web).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(
        closed_by_server(&mut silent),
        "a silent TLS client is cut off"
    );

    // A handshake, then half a request line.
    let certificate = std::fs::read(school.lollipop.dir().join("data/web-cert.pem"))
        .expect("the certificate made on first start");
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for der in rustls::pki_types::CertificateDer::pem_slice_iter(&certificate) {
        roots.add(der.expect("a certificate")).expect("a root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(tls), name).expect("client");
    let tcp = TcpStream::connect(school.web).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(b"GET /login HT")
        .expect("half a request over TLS");
    stream.flush().expect("flush");
    assert!(
        closed_by_server(&mut stream),
        "the half-sent request is cut off"
    );
}

#[test]
fn the_page_answers_while_idle_connections_hold_and_closes_those_over_the_cap() {
    let school = web::WebSchool::start_with(|config| {
        config.limits.web_max_connections = 8;
        config.limits.web_header_read_timeout_secs = 30;
    });
    let mut idle: Vec<TcpStream> = (0..7)
        .map(|_| TcpStream::connect(school.web).expect("connect"))
        .collect();
    assert_eq!(
        school.client().get("/login").status,
        200,
        "answered with seven idle connections open"
    );
    // Beyond the cap a new connection is closed at once; the held ones
    // never number more than the cap (the page request's own connection
    // may still hold one).
    let mut closed = false;
    for _ in 0..4 {
        let mut extra = TcpStream::connect(school.web).expect("connect");
        extra
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        if closed_by_server(&mut extra) {
            closed = true;
            break;
        }
        idle.push(extra);
    }
    assert!(closed, "a connection over the cap is closed");
    assert!(idle.len() <= 8, "{} held", idle.len());
    assert!(school.lollipop.running().metrics.limits.web_closed.get() >= 1);
}

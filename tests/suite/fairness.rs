//! Fairness between clients: one device flooding lookups that never end
//! (random names under a domain whose servers are down) may hold only its
//! share of the upstream lookups in flight, so the rest of the school's
//! uncached lookups are still answered.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

use crate::support::*;

/// The flood: this many queries, in bursts, over about two seconds.
const FLOOD_QUERIES: usize = 2_000;
const FLOOD_BURST: usize = 50;
/// The well-behaved client's distinct names.
const POLITE_NAMES: usize = 100;

fn config() -> String {
    TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        // A small pool, so the flood would fill it many times over; the
        // per-client share is left at its default.
        .table(
            "resolver",
            "timeout_ms = 1500\nattempts = 1\nmax_in_flight = 64",
        )
        .blocklist("ks2", &[], "")
        .toml()
}

/// Sends the flood from 127.0.0.2 without waiting for answers, and counts
/// the answers that come back refused with the "too many lookups" EDE.
fn flood(server: SocketAddr, done: Arc<AtomicBool>, refused: Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buf = vec![0u8; 4096];
    let mut drain = |socket: &UdpSocket| {
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            if let Ok(reply) = Message::from_bytes(&buf[..len])
                && reply.metadata.response_code == ResponseCode::ServFail
                && extended_error(&reply).is_some_and(|(_, text)| text.contains("too many lookups"))
            {
                refused.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let seed = std::process::id();
    for burst in 0..FLOOD_QUERIES / FLOOD_BURST {
        for i in 0..FLOOD_BURST {
            let name = format!("r{seed}-{burst}-{i}.{SILENT_ZONE}");
            let query = query_message(&name, RecordType::A, Ask::default());
            let _ = socket.send_to(&query.to_bytes().expect("encode"), server);
        }
        drain(&socket);
        std::thread::sleep(Duration::from_millis(30));
    }
    while !done.load(Ordering::SeqCst) {
        drain(&socket);
    }
}

#[test]
fn a_client_flooding_a_silent_domain_leaves_other_clients_lookups_answered() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&config(), &upstream, &[]);
    let server = lollipop.address();
    let done = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flooder = {
        let (done, refused) = (done.clone(), refused.clone());
        std::thread::spawn(move || flood(server, done, refused))
    };
    // Let the flood fill what it can before the other client asks.
    std::thread::sleep(Duration::from_millis(300));

    let polite = UdpSocket::bind("127.0.0.3:0").expect("bind 127.0.0.3");
    polite
        .set_read_timeout(Some(Duration::from_secs(4)))
        .expect("timeout");
    let mut codes = Vec::new();
    let mut buf = vec![0u8; 4096];
    for i in 0..POLITE_NAMES {
        let query = query_message(
            &format!("p{i}-{}.fair.test.", std::process::id()),
            RecordType::A,
            Ask::default(),
        );
        polite
            .send_to(&query.to_bytes().expect("encode"), server)
            .expect("send");
        let code = match polite.recv_from(&mut buf) {
            Ok((len, _)) => Message::from_bytes(&buf[..len])
                .map(|reply| format!("{:?}", reply.metadata.response_code))
                .unwrap_or_else(|_| "undecodable".into()),
            Err(_) => "no answer".into(),
        };
        codes.push(code);
        std::thread::sleep(Duration::from_millis(15));
    }
    done.store(true, Ordering::SeqCst);
    flooder.join().expect("flooder");

    let answered = codes.iter().filter(|code| *code == "NoError").count();
    assert_eq!(
        answered, POLITE_NAMES,
        "every lookup of the well-behaved client is answered: {codes:?}"
    );
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "the flooder's lookups beyond its share are refused with the EDE"
    );
    let metrics = metrics_text(&lollipop);
    let counted = metrics
        .lines()
        .find_map(|line| line.strip_prefix("lollipop_upstream_refused_client_share_total "))
        .and_then(|count| count.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(counted > 0, "refusals are counted in /metrics:\n{metrics}");
}

//! The answer paths that need no upstream round trip: a response-cache hit
//! on its own, a cached answer written to the wire from its stored bytes,
//! and `Pipeline::answer` for a cached allowed name and for a blocked name
//! (decision, answer, counters and the block log's queue).
//!
//! The upstream is a thread on loopback answering every A question with one
//! address, asked once to fill the cache.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use lollipop::config::{Config, ConfigOrigin};
use lollipop::dns::codec::{self, Incoming, Transport};
use lollipop::dns::resolve::answer::{Answer, UpstreamAnswer};
use lollipop::dns::resolve::cache::{CachePolicy, Lookup, ResponseCache};
use lollipop::dns::resolve::settings::Client;

/// Answers every question with `name A 192.0.2.1`, TTL one hour.
fn start_upstream() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
    let port = socket.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            let Some(reply) = reply_to(&buffer[..len]) else {
                continue;
            };
            let _ = socket.send_to(&reply, from);
        }
    });
    port
}

fn reply_to(query: &[u8]) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    end += 5;
    let mut reply = query.get(..end)?.to_vec();
    reply[2] = 0x84 | (query[2] & 0x01);
    reply[3] = 0x80;
    reply[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
    Some(reply)
}

fn ready<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked answer had to wait"),
    }
}

fn cache_hit(c: &mut Criterion) {
    let cache = Arc::new(ResponseCache::new(
        8 << 20,
        CachePolicy::default(),
        Arc::default(),
    ));
    let name = Name::from_ascii("www.example.org.").expect("name");
    let Lookup::Ask(asking) = cache.lookup(cache.key(&name, RecordType::A), &name, RecordType::A)
    else {
        panic!("an empty cache asks");
    };
    asking.finish(
        &name,
        RecordType::A,
        UpstreamAnswer::new(
            ResponseCode::NoError,
            vec![Record::from_rdata(
                name.clone(),
                3600,
                RData::A(A::new(192, 0, 2, 1)),
            )],
            Vec::new(),
        ),
    );
    c.bench_function("cache hit (key and lookup)", |b| {
        b.iter(|| {
            let name = black_box(&name);
            match cache.lookup(cache.key(name, RecordType::A), name, RecordType::A) {
                Lookup::Hit(answer) => answer,
                _ => panic!("should hit"),
            }
        })
    });
}

fn pipeline(c: &mut Criterion) {
    let port = start_upstream();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("block.txt"), "blocked.example\n").expect("list");
    let text = format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1:{port}"
protocol = "udp"
[web]
enabled = false
[[lists]]
name = "bench"
path = "{list}"
category = "malware"
[profiles.ks2]
mode = "blocklist"
block_categories = ["malware"]
"#,
        data = dir.path().join("data").display(),
        list = dir.path().join("block.txt").display(),
    );
    let config = Config::parse(&text, ConfigOrigin::default()).expect("config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let running = runtime
        .block_on(async { lollipop::service::start(config) })
        .expect("start");
    let pipeline = running.pipeline.clone();
    let client = Client {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        listener: Some(0),
    };
    let allowed = Name::from_ascii("www.example.org.").expect("name");
    let blocked = Name::from_ascii("www.blocked.example.").expect("name");
    let first = runtime.block_on(pipeline.answer(&allowed, RecordType::A, client));
    assert_eq!(first.answer_records().count(), 1, "the upstream answered");

    let _inside = runtime.enter();
    let mut group = c.benchmark_group("pipeline answer");
    group.bench_function("cached allowed name", |b| {
        b.iter(|| ready(pipeline.answer(black_box(&allowed), RecordType::A, client)))
    });
    group.bench_function("blocked name", |b| {
        b.iter(|| ready(pipeline.answer(black_box(&blocked), RecordType::A, client)))
    });
    group.finish();
}

/// A plain query read and its cached answer written: the first response
/// stores the records' wire form, every later one copies it.
fn cached_response(c: &mut Criterion) {
    let name = Name::from_ascii("www.example.org.").expect("name");
    let upstream = Arc::new(UpstreamAnswer::new(
        ResponseCode::NoError,
        vec![Record::from_rdata(
            name,
            3600,
            RData::A(A::new(192, 0, 2, 1)),
        )],
        Vec::new(),
    ));
    let answer = Answer::from_upstream(upstream);
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    query.extend_from_slice(b"\x03www\x07example\x03org\x00\x00\x01\x00\x01");
    query.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    c.bench_function("cached answer read and written on the wire", |b| {
        b.iter(|| {
            let Incoming::Question(plain) = codec::read(black_box(&query)) else {
                panic!("a plain query");
            };
            codec::respond(&plain, &answer, Transport::Udp, |bytes| {
                black_box(bytes.len())
            })
        })
    });
}

criterion_group!(benches, cache_hit, cached_response, pipeline);
criterion_main!(benches);

//! When the upstreams go wrong, clients are still answered, in time and with
//! a reason: against a scripted upstream on loopback that goes silent,
//! answers late, replies with the wrong ID, answers SERVFAIL or closes its
//! port. Covers the answer deadline, failover, serve-stale (RFC 8767),
//! failure caching (RFC 9520), prefetch and the Extended DNS Errors.

use std::time::{Duration, Instant};

use hickory_server::proto::op::ResponseCode;

use crate::support::scripted::{Behaviour, SCRIPTED_ADDRESS, ScriptedUpstream};
use crate::support::*;

/// RFC 8914 info codes.
const EDE_STALE_ANSWER: u16 = 3;
const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;
const EDE_NETWORK_ERROR: u16 = 23;

/// A config forwarding to `upstreams` (plain UDP), with `resolver` settings.
fn config(upstreams: &[&ScriptedUpstream], resolver: &str) -> String {
    let mut config = TestConfig::new()
        .listen("127.0.0.1:0")
        .table("resolver", resolver)
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "");
    for upstream in upstreams {
        config = config.section(&format!(
            "[[upstream]]\naddress = \"{}\"\nprotocol = \"udp\"\n",
            upstream.address
        ));
    }
    config.toml()
}

fn start(upstreams: &[&ScriptedUpstream], resolver: &str) -> (TestUpstream, TestLollipop) {
    let unused = TestUpstream::start();
    let lists = [("gambling.txt", "bet365.com\n")];
    let lollipop = TestLollipop::start(&config(upstreams, resolver), &unused, &lists);
    (unused, lollipop)
}

/// Asks for `name` A, waiting up to 10 s; the reply and how long it took.
fn timed(lollipop: &TestLollipop, name: &str) -> (hickory_server::proto::op::Message, Duration) {
    let message = query_message(
        name,
        hickory_server::proto::rr::RecordType::A,
        Ask::default(),
    );
    let bytes =
        hickory_server::proto::serialize::binary::BinEncodable::to_bytes(&message).expect("encode");
    let started = Instant::now();
    let reply = exchange_udp_within(lollipop.address(), &bytes, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no reply for {name} within 10 s"));
    let took = started.elapsed();
    let reply = hickory_server::proto::op::Message::from_vec(&reply).expect("reply decodes");
    (reply, took)
}

#[test]
fn a_silent_or_forging_upstream_gets_servfail_with_a_reason_before_5_s_and_few_sends() {
    for behaviour in [Behaviour::Silent, Behaviour::WrongId] {
        let upstream = ScriptedUpstream::start(behaviour);
        // The shipped defaults: 2 s between sends, 2 attempts, 4 s deadline.
        let (_unused, lollipop) = start(&[&upstream], "");
        let (reply, took) = timed(&lollipop, "www.silent-upstream.example.");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{behaviour:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{behaviour:?}: answered after {took:?}"
        );
        let (code, text) = extended_error(&reply).expect("a SERVFAIL says why");
        assert_eq!(code, EDE_NO_REACHABLE_AUTHORITY, "{behaviour:?}: {text}");
        assert!(
            answers(&reply).is_empty(),
            "a forged reply is never believed"
        );
        let ids = upstream.ids_for("www.silent-upstream.example.");
        assert!(
            (1..=2).contains(&ids.len()),
            "{behaviour:?}: sent {} times (attempts = 2)",
            ids.len()
        );
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "no ID is sent twice: {ids:?}");
    }
}

#[test]
fn a_slow_upstreams_late_answer_is_still_taken() {
    let upstream = ScriptedUpstream::start(Behaviour::Late(Duration::from_millis(2500)));
    // A new send after 1 s; the first send's answer comes at 2.5 s.
    let (_unused, lollipop) = start(&[&upstream], "timeout_ms = 1000");
    let (reply, took) = timed(&lollipop, "www.slow-upstream.example.");
    assert_eq!(answers(&reply), [format!("A {SCRIPTED_ADDRESS}")]);
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[test]
fn a_closed_upstream_is_failed_over_at_once_and_all_closed_is_a_network_error() {
    let closed = ScriptedUpstream::start(Behaviour::Closed);
    let working = ScriptedUpstream::start(Behaviour::Answer { ttl: 60 });
    // With 3 s between sends, only failing over at once answers quickly.
    let (_unused, lollipop) = start(&[&closed, &working], "timeout_ms = 3000");
    let (reply, took) = timed(&lollipop, "www.failover.example.");
    assert_eq!(answers(&reply), [format!("A {SCRIPTED_ADDRESS}")]);
    assert!(took < Duration::from_secs(2), "failed over after {took:?}");

    let other = ScriptedUpstream::start(Behaviour::Closed);
    let (_unused, lollipop) = start(&[&closed, &other], "timeout_ms = 3000");
    let (reply, took) = timed(&lollipop, "www.all-closed.example.");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let (code, text) = extended_error(&reply).expect("EDE");
    assert_eq!(code, EDE_NETWORK_ERROR, "{text}");
    assert!(text.contains("connection refused"), "{text}");
}

#[test]
fn a_cached_answer_is_served_stale_when_the_upstream_goes_silent_or_closes() {
    let upstream = ScriptedUpstream::start(Behaviour::Answer { ttl: 1 });
    let (_unused, lollipop) = start(&[&upstream], "");
    let name = "www.stale.example.";
    let (fresh, _) = timed(&lollipop, name);
    assert_eq!(answers(&fresh), [format!("A {SCRIPTED_ADDRESS}")]);
    assert!(extended_error(&fresh).is_none());

    upstream.set(Behaviour::Silent);
    std::thread::sleep(Duration::from_millis(1500));
    let (stale, took) = timed(&lollipop, name);
    assert_eq!(
        answers(&stale),
        [format!("A {SCRIPTED_ADDRESS}")],
        "the stale answer"
    );
    assert_eq!(stale.answers[0].ttl, 30, "served with the stale TTL");
    let (code, text) = extended_error(&stale).expect("EDE 3");
    assert_eq!(code, EDE_STALE_ANSWER, "{text}");
    // Waited for the upstream about 1.8 s (stale_answer_after_ms), no more.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A closed port: the stale answer comes at once, not after 1.8 s.
    let name = "www.stale-closed.example.";
    upstream.set(Behaviour::Answer { ttl: 1 });
    timed(&lollipop, name);
    upstream.set(Behaviour::Closed);
    std::thread::sleep(Duration::from_millis(1500));
    let (stale, took) = timed(&lollipop, name);
    assert_eq!(answers(&stale), [format!("A {SCRIPTED_ADDRESS}")]);
    assert_eq!(extended_error(&stale).map(|e| e.0), Some(EDE_STALE_ANSWER));
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(metrics_text(&lollipop).contains("lollipop_stale_answers_total 2"));
}

#[test]
fn a_failure_is_remembered_for_a_few_seconds_not_asked_again_at_once() {
    let upstream = ScriptedUpstream::start(Behaviour::ServFail);
    let (_unused, lollipop) = start(&[&upstream], "attempts = 1");
    let name = "www.failing.example.";
    let (first, _) = timed(&lollipop, name);
    assert_eq!(first.metadata.response_code, ResponseCode::ServFail);
    let (code, text) = extended_error(&first).expect("EDE");
    assert_eq!(code, EDE_NO_REACHABLE_AUTHORITY, "{text}");
    assert!(text.contains("answered SERVFAIL"), "{text}");
    let sent = upstream.ids_for(name).len();
    for _ in 0..5 {
        let (again, took) = timed(&lollipop, name);
        assert_eq!(again.metadata.response_code, ResponseCode::ServFail);
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    assert_eq!(
        upstream.ids_for(name).len(),
        sent,
        "answered from the failure cache"
    );

    // Turned off, every query asks again.
    let upstream = ScriptedUpstream::start(Behaviour::ServFail);
    let (_unused, lollipop) = start(&[&upstream], "attempts = 1\nfailure_cache_secs = 0");
    for _ in 0..3 {
        timed(&lollipop, name);
    }
    assert_eq!(upstream.ids_for(name).len(), 3);
}

#[test]
fn a_popular_answer_is_refreshed_before_it_runs_out() {
    let upstream = ScriptedUpstream::start(Behaviour::Answer { ttl: 10 });
    let (_unused, lollipop) = start(&[&upstream], "");
    let name = "www.popular.example.";
    for _ in 0..3 {
        timed(&lollipop, name);
    }
    assert_eq!(upstream.ids_for(name).len(), 1);
    // In the last tenth of its TTL, a hit starts a refresh in the background.
    std::thread::sleep(Duration::from_millis(9_200));
    let (hit, took) = timed(&lollipop, name);
    assert_eq!(answers(&hit), [format!("A {SCRIPTED_ADDRESS}")]);
    assert!(took < Duration::from_millis(500), "{took:?}");
    wait_until("the refresh reaches the upstream", || {
        upstream.ids_for(name).len() == 2
    });
    // After the old TTL ran out, the refreshed answer is still fresh.
    std::thread::sleep(Duration::from_millis(1_500));
    let (later, _) = timed(&lollipop, name);
    assert!(extended_error(&later).is_none(), "not stale");
    assert!(later.answers[0].ttl > 5, "{}", later.answers[0].ttl);
    assert_eq!(upstream.ids_for(name).len(), 2);
}

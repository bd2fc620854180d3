//! The store of answers given again: what it keeps, within what budget,
//! what it drops, and what a blocked answer's repeat records.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::RecordType;

use crate::policy::Explanation;

use super::super::cache::Lease;
use super::*;

fn keep() -> Keep {
    Keep {
        profile: 0,
        lease: None,
        counts_down: false,
        blocked: None,
    }
}

/// A query of `name` as the key holds it (its bytes after the ID).
fn query(name: &str) -> Vec<u8> {
    let mut bytes = vec![1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        bytes.push(label.len() as u8);
        bytes.extend(label.bytes());
    }
    bytes.extend([0, 0, 1, 0, 1]);
    bytes
}

/// A response to `query` (after its ID) of `len` bytes: its header, the
/// question, and filling.
fn response(query: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = vec![0xAB, 0xCD, 0x81, 0x80];
    bytes.extend_from_slice(&query[2..]);
    bytes.resize(len.max(bytes.len()), 0x55);
    bytes
}

/// Asks `repeats` for `name`'s answer; whether it was given, checking the
/// bytes given against `expected`.
fn asked(repeats: &Repeats, name: &str, expected: Option<&[u8]>) -> bool {
    let query = query(name);
    let key = repeats.key(&query, Some(0), 0, 1);
    repeats
        .answer(&key, [9, 9], Instant::now(), |bytes| {
            assert_eq!(bytes[..2], [9, 9]);
            if let Some(expected) = expected {
                assert_eq!(bytes[2..], expected[2..]);
            }
        })
        .is_some()
}

fn remember(repeats: &Repeats, name: &str, len: usize) {
    let query = query(name);
    let key = repeats.key(&query, Some(0), 0, 1);
    let response = response(&query, len);
    repeats.remember(&key, keep(), &response, Some(Vec::new()), Instant::now());
}

#[test]
fn questions_asked_in_turn_beyond_the_budget_still_get_most_of_their_repeats() {
    // Room for about 1,300 of these answers; 2,000 asked in turn, as the
    // bench asks its 30,000 names, each kept if there is room when it is
    // not answered.
    let budget = 512 * 1024;
    let repeats = Repeats::new(budget);
    let names: Vec<String> = (0..2_000).map(|i| format!("n{i}.example")).collect();
    let mut answered_last_pass = 0;
    for pass in 0..6 {
        let mut answered = 0;
        for (i, name) in names.iter().enumerate() {
            if asked(&repeats, name, None) {
                answered += 1;
            } else {
                remember(&repeats, name, 60 + i % 200);
            }
            assert!(repeats.bytes() <= budget, "{} bytes held", repeats.bytes());
        }
        if pass == 0 {
            assert_eq!(answered, 0);
        }
        answered_last_pass = answered;
    }
    let kept = repeats.len();
    assert!(kept < names.len(), "all {kept} kept: the budget is too big");
    // Dropping the oldest first would answer none; the store answers
    // nearly every answer it keeps.
    assert!(
        answered_last_pass * 10 >= kept * 9,
        "{answered_last_pass} answered of {kept} kept"
    );
    assert!(answered_last_pass * 2 > names.len(), "{answered_last_pass}");
}

#[test]
fn the_budget_holds_for_every_size_of_answer_and_a_smaller_budget_drops_at_once() {
    let budget = 1024 * 1024;
    let repeats = Repeats::new(budget);
    let mut seed = 7u32;
    for i in 0..20_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = 30 + (seed >> 8) as usize % (MAX_RESPONSE - 30);
        remember(&repeats, &format!("n{}.example", i % 3_000), len);
        assert!(repeats.bytes() <= budget, "{} bytes held", repeats.bytes());
    }
    assert!(repeats.len() > 100);
    let kept = repeats.len();
    repeats.set_budget(256 * 1024);
    assert!(
        repeats.bytes() <= 256 * 1024,
        "{} bytes held",
        repeats.bytes()
    );
    assert!(!repeats.is_empty() && repeats.len() < kept);
    remember(&repeats, "new.example", 100);
    assert!(repeats.bytes() <= 256 * 1024);
    repeats.set_budget(0);
    assert!(repeats.is_empty());
    assert_eq!(repeats.bytes(), 0);
    assert_eq!(repeats.budget(), 0);
}

#[test]
fn an_answer_is_given_back_byte_for_byte_only_to_its_own_question() {
    let repeats = Repeats::new(1 << 20);
    let query = query("n1.example");
    let response = response(&query, 90);
    let key = repeats.key(&query, Some(0), 0, 1);
    repeats.remember(&key, keep(), &response, Some(Vec::new()), Instant::now());
    assert!(asked(&repeats, "n1.example", Some(&response)));
    // Another generation, profile or listener is another question.
    for key in [
        repeats.key(&query, Some(0), 0, 2),
        repeats.key(&query, Some(0), 1, 1),
        repeats.key(&query, Some(1), 0, 1),
        repeats.key(&query, None, 0, 1),
    ] {
        assert!(
            repeats
                .answer(&key, [0, 0], Instant::now(), |_| {})
                .is_none()
        );
    }
    // A response that does not repeat the question is not kept.
    let other = repeats.key(&query, Some(0), 0, 3);
    let mut changed = response.clone();
    changed[13] = b'X';
    repeats.remember(&other, keep(), &changed, Some(Vec::new()), Instant::now());
    assert_eq!(repeats.len(), 1);
}

#[test]
fn an_answer_is_kept_only_with_its_ttls_places_and_if_they_count_down_a_lease() {
    let repeats = Repeats::new(1 << 20);
    let query = query("www.example");
    let key = repeats.key(&query, None, 0, 1);
    let response = response(&query, 40);
    let counting = || Keep {
        counts_down: true,
        ..keep()
    };
    // No lease: nothing says how long it holds.
    repeats.remember(&key, counting(), &response, Some(vec![30]), Instant::now());
    // Too long for a UDP answer.
    let long = response_of_len(&query, MAX_RESPONSE + 1);
    repeats.remember(&key, keep(), &long, Some(Vec::new()), Instant::now());
    // Truncated, or not walked: no places for its TTLs.
    repeats.remember(&key, keep(), &response, None, Instant::now());
    assert!(repeats.is_empty());
}

fn response_of_len(query: &[u8], len: usize) -> Vec<u8> {
    response(query, len)
}

#[test]
fn an_answer_on_a_lease_counts_down_and_leaves_when_the_lease_ends_or_its_entry_goes() {
    let repeats = Repeats::new(1 << 20);
    let start = Instant::now();
    // An answer with one record whose TTL (300) is at offset 40.
    let query = query("leased.example");
    let mut response = response(&query, 60);
    response[40..44].copy_from_slice(&300u32.to_be_bytes());
    let key = repeats.key(&query, None, 0, 1);
    let hits = Arc::new(AtomicU32::new(0));
    let lease = Lease::for_tests(&hits, start, start + Duration::from_secs(100));
    let leased = |lease: Lease| Keep {
        lease: Some(lease),
        counts_down: true,
        ..keep()
    };
    repeats.remember(
        &key,
        leased(lease.clone()),
        &response,
        Some(vec![40]),
        start,
    );
    let ttl_at = |now: Instant| {
        let mut ttl = None;
        repeats.answer(&key, [0, 0], now, |bytes| {
            ttl = Some(u32::from_be_bytes([
                bytes[40], bytes[41], bytes[42], bytes[43],
            ]));
        });
        ttl
    };
    assert_eq!(ttl_at(start + Duration::from_millis(500)), Some(300));
    assert_eq!(ttl_at(start + Duration::from_secs(30)), Some(270));
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 2);
    // Its time is up: not given, and dropped.
    assert_eq!(ttl_at(start + Duration::from_secs(100)), None);
    assert!(repeats.is_empty());
    // Kept again, then the cache's entry is replaced: dropped too.
    repeats.remember(&key, leased(lease), &response, Some(vec![40]), start);
    assert_eq!(repeats.len(), 1);
    drop(hits);
    assert_eq!(ttl_at(start + Duration::from_secs(1)), None);
    assert!(repeats.is_empty());
}

#[test]
fn a_full_store_makes_room_first_from_answers_whose_settings_or_lease_are_gone() {
    // Room for about 500 answers of 100 bytes.
    let budget = 256 * 1024;
    let repeats = Repeats::new(budget);
    let start = Instant::now();
    let hits = Arc::new(AtomicU32::new(0));
    for i in 0..2_000 {
        let query = query(&format!("n{i}.example"));
        let key = repeats.key(&query, None, 0, 1);
        let lease = Lease::for_tests(&hits, start, start + Duration::from_secs(60));
        let keep = Keep {
            lease: Some(lease),
            ..keep()
        };
        repeats.remember(&key, keep, &response(&query, 100), Some(Vec::new()), start);
    }
    let full = repeats.len();
    assert!(full > 100, "{full}");
    // Every answer is asked again: each holds its place.
    for i in 0..2_000 {
        let query = query(&format!("n{i}.example"));
        let key = repeats.key(&query, None, 0, 1);
        repeats.answer(&key, [0, 0], start, |_| {});
    }
    // New settings: the answers of the old ones, asked again as they
    // were, give way to new ones at once.
    for i in 0..2 * full {
        let query = query(&format!("g{i}.example"));
        let key = repeats.key(&query, None, 0, 2);
        repeats.remember(
            &key,
            keep(),
            &response(&query, 100),
            Some(Vec::new()),
            start,
        );
    }
    let answered = |prefix: &str, count: usize, generation: u64| {
        (0..count)
            .filter(|i| {
                let query = query(&format!("{prefix}{i}.example"));
                let key = repeats.key(&query, None, 0, generation);
                repeats.answer(&key, [0, 0], start, |_| {}).is_some()
            })
            .count()
    };
    assert_eq!(answered("n", 2_000, 1), 0);
    let generation_two = answered("g", 2 * full, 2);
    assert!(
        generation_two * 10 >= full * 9,
        "{generation_two} of {full}"
    );
}

#[test]
fn a_blocked_answers_repeat_records_the_name_type_and_rule_it_was_kept_with() {
    let repeats = Repeats::new(1 << 20);
    let cases = [
        // A list's hit on a parent: the rule is the name's end.
        ("www.blocked.example", Some("blocked.example")),
        // The name itself, in its case as asked.
        ("Blocked.Example", Some("Blocked.Example")),
        // A rule that is no part of the name (a name rule's), and none.
        ("casino-games.example", Some("name rule: 'casino'")),
        ("quiet.example", None),
    ];
    for (name, rule) in cases {
        let explanation = Explanation::blocked_for_tests("ks2", "gambling", rule);
        let query = query(name);
        let key = repeats.key(&query, Some(0), 0, 1);
        let keep = Keep {
            blocked: Some(Arc::new(BlockedLookup {
                name: name.to_owned(),
                record_type: RecordType::A,
                explanation,
            })),
            ..keep()
        };
        repeats.remember(
            &key,
            keep,
            &response(&query, 80),
            Some(Vec::new()),
            Instant::now(),
        );
        let repeated = repeats
            .answer(&key, [0, 0], Instant::now(), |_| {})
            .expect("kept");
        let blocked = repeated.blocked.expect("blocked");
        assert_eq!(blocked.name, name);
        assert_eq!(blocked.rule.as_deref(), rule);
        assert_eq!(blocked.record_type, RecordType::A);
        assert_eq!(blocked.explanation.rule, None);
        assert_eq!(blocked.explanation.category.as_deref(), Some("gambling"));
    }
    // A name the question does not spell as the log writes it (escaped in
    // the log) keeps its text.
    let query = query("sp ace.example");
    let key = repeats.key(&query, Some(0), 0, 1);
    let keep = Keep {
        blocked: Some(Arc::new(BlockedLookup {
            name: "sp\\032ace.example".to_owned(),
            record_type: RecordType::A,
            explanation: Explanation::blocked_for_tests("ks2", "gambling", Some("example")),
        })),
        ..keep()
    };
    repeats.remember(
        &key,
        keep,
        &response(&query, 80),
        Some(Vec::new()),
        Instant::now(),
    );
    let repeated = repeats.answer(&key, [0, 0], Instant::now(), |_| {});
    let blocked = repeated.and_then(|r| r.blocked).expect("kept");
    assert_eq!(blocked.name, "sp\\032ace.example");
    assert_eq!(blocked.rule.as_deref(), Some("example"));
}

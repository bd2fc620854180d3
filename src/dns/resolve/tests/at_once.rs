//! The pipeline's synchronous part: an answer it gives at once is the one
//! the whole pipeline gives, and a question it sends on to wait has had
//! nothing counted or begun, so the rest follows as if it had not looked.

use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::dns::resolve::pipeline::{AtOnce, Waiting, resolve_at_once};

fn at_once<'s>(fixture: &'s Fixture, domain: &str, record_type: RecordType) -> AtOnce<'s> {
    let qname = name(&format!("{domain}."));
    let question = Question {
        client: PUPIL,
        name: &qname,
        record_type,
        clock: &fixture.clock,
        checking_disabled: false,
    };
    resolve_at_once(
        &fixture.settings,
        &OverrideSet::default(),
        reversed(domain),
        question,
    )
}

fn ready<'s>(at_once: AtOnce<'s>, domain: &str) -> (Verdict<'s>, Answer) {
    match at_once {
        AtOnce::Ready(verdict, answer) => (verdict, answer),
        AtOnce::MustWait(..) => panic!("{domain} had to wait"),
    }
}

/// What a client is told: code, records, extended error and explanation.
fn told(answer: &Answer) -> (ResponseCode, Vec<String>, Option<String>, bool) {
    (
        answer.code,
        addresses(answer),
        answer.extended_error.as_ref().map(|e| e.text.to_string()),
        answer.explanation.is_some(),
    )
}

#[test]
fn special_blocked_and_any_answers_are_ready_at_once_and_the_same_as_the_pipelines() {
    let fixture = fixture();
    let none = OverrideSet::default();
    for (domain, record_type) in [
        ("use-application-dns.net", RecordType::A),
        ("www.casino.example", RecordType::A),
        ("www.casino.example", RecordType::HTTPS),
        ("www.school.example", RecordType::ANY),
    ] {
        let (verdict, answer) = ready(at_once(&fixture, domain, record_type), domain);
        let (whole, whole_answer) = ask_type(&fixture, &none, PUPIL, domain, record_type);
        assert_eq!(told(&answer), told(&whole_answer), "{domain} {record_type}");
        assert_eq!(verdict.is_blocked(), whole.is_blocked(), "{domain}");
    }
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0, "nothing asked");
}

#[test]
fn a_name_not_cached_must_wait_with_nothing_counted_then_is_ready_at_once_from_the_cache() {
    let fixture = fixture();
    let AtOnce::MustWait(verdict, Waiting::Name) =
        at_once(&fixture, "www.school.example", RecordType::A)
    else {
        panic!("an uncached name was answered at once");
    };
    assert!(!verdict.is_blocked());
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0);
    assert_eq!(fixture.stats.cache_misses.load(Relaxed), 0);
    assert_eq!(fixture.stats.cache_hits.load(Relaxed), 0);

    let (_, answer) = ask(
        &fixture,
        &OverrideSet::default(),
        PUPIL,
        "www.school.example",
    );
    assert_eq!(addresses(&answer), ["192.0.2.1"]);
    assert_eq!(fixture.stats.cache_misses.load(Relaxed), 1, "one miss");

    let (_, cached) = ready(
        at_once(&fixture, "www.school.example", RecordType::A),
        "www.school.example",
    );
    assert_eq!(told(&cached), told(&answer));
    assert_eq!(fixture.stats.cache_hits.load(Relaxed), 1);
    assert_eq!(fixture.count.load(Ordering::SeqCst), 1, "asked once in all");
}

#[test]
fn a_cached_answer_at_once_still_passes_the_cname_recheck_and_the_rebinding_guard() {
    let fixture = fixture();
    let none = OverrideSet::default();
    for domain in ["cloaked.example", "evil.example"] {
        assert!(matches!(
            at_once(&fixture, domain, RecordType::A),
            AtOnce::MustWait(_, Waiting::Name)
        ));
        ask(&fixture, &none, PUPIL, domain);
    }
    let (verdict, answer) = ready(
        at_once(&fixture, "cloaked.example", RecordType::A),
        "cloaked.example",
    );
    assert!(verdict.alias.is_some() && verdict.is_blocked());
    assert_eq!(addresses(&answer), ["0.0.0.0"]);
    let explanation = answer.explanation.as_ref().expect("explanation");
    assert_eq!(explanation.rule.as_deref(), Some("tracker.example"));

    let (_, answer) = ready(
        at_once(&fixture, "evil.example", RecordType::A),
        "evil.example",
    );
    assert!(addresses(&answer).is_empty(), "{:?}", addresses(&answer));
    let error = answer.extended_error.as_ref().expect("EDE");
    assert_eq!(&*error.text, "Lollipop: private address for a public name");
    assert_eq!(fixture.count.load(Ordering::SeqCst), 2);
}

#[test]
fn a_safe_search_rewrite_waits_for_its_target_then_is_ready_at_once() {
    let fixture = fixture();
    let AtOnce::MustWait(_, Waiting::Rewritten(target)) =
        at_once(&fixture, "www.google.com", RecordType::A)
    else {
        panic!("the rewrite's target is not cached yet");
    };
    assert_eq!(
        target.to_ascii().trim_end_matches('.'),
        "forcesafesearch.google.com"
    );
    let (_, answer) = ask(&fixture, &OverrideSet::default(), PUPIL, "www.google.com");
    let (verdict, cached) = ready(
        at_once(&fixture, "www.google.com", RecordType::A),
        "www.google.com",
    );
    assert!(verdict.rewrite.is_some());
    assert_eq!(told(&cached), told(&answer));
    assert_eq!(addresses(&cached).len(), 2, "the CNAME and the address");
    assert_eq!(fixture.count.load(Ordering::SeqCst), 1);
}

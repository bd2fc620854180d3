//! The pipeline's stages, one test each, without a socket: a fixed
//! upstream answers from a table and counts what it was asked, so each
//! test shows what a stage decided, what the client got, and whether the
//! upstream was asked at all. Check is held to the same verdicts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use crate::clock::Clock;
use crate::config::{Config, ConfigOrigin};
use crate::journal::LookupTally;
use crate::metrics::{ProfileCounters, UpstreamStats};
use crate::name::ReversedName;
use crate::policy::Policy;
use crate::policy::decision::Decision;
use crate::policy::for_tests::compiled_lists;
use crate::policy::overrides::OverrideSet;
use crate::policy::rules::{OverrideRow, OverrideScope, OverrideTarget};
use crate::policy::safesearch::SafeSearchMap;
use crate::policy::special::SpecialAnswer;

use super::answer::{Answer, UpstreamAnswer};
use super::pipeline::{Question, decide, resolve};
use super::rebinding::RebindingGuard;
use super::settings::{Client, Settings};
use super::upstream::{self, CachedUpstream, Upstream, UpstreamLimits, UpstreamTiming};
use super::verdict::Verdict;

mod at_once;
mod guards;

use super::table::{TableUpstream, a, cname, name};

struct Fixture {
    settings: Settings,
    /// The cache's hit and miss counts among them.
    stats: Arc<UpstreamStats>,
    asked: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    clock: Clock,
    _dir: tempfile::TempDir,
}

const PUPIL: Client = Client {
    address: IpAddr::V4(Ipv4Addr::new(10, 0, 20, 5)),
    listener: None,
};
const OTHER_PUPIL: Client = Client {
    address: IpAddr::V4(Ipv4Addr::new(10, 0, 30, 5)),
    listener: None,
};

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("gambling.txt"),
        "casino.example\ntracker.example\n",
    )
    .expect("list");
    let text = format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[web]
enabled = false
public_url = "https://filter.school.example:8443/"
[[lists]]
name = "gambling"
path = "{list}"
category = "gambling"
[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]
safe_search = true
[rebinding]
allow_domains = ["corp.example.org"]
"#,
        data = dir.path().join("data").display(),
        list = dir.path().join("gambling.txt").display(),
    );
    let config = Config::parse(&text, ConfigOrigin::default()).expect("config");
    let lists = compiled_lists(&config, dir.path());
    let safe_search = Arc::new(SafeSearchMap::embedded().expect("safe search map"));
    let policy = Policy::build(&config, lists, safe_search, &[]).expect("policy");

    let mut records = HashMap::new();
    records.insert(
        ("www.school.example.".into(), RecordType::A),
        vec![a("www.school.example.", 1)],
    );
    // Private addresses for public names, and for the school's own.
    for (owner, address) in [
        ("evil.example.", [192, 168, 1, 10]),
        ("intranet.corp.example.org.", [10, 1, 2, 3]),
        ("nas.home.arpa.", [192, 168, 1, 20]),
        ("printer.", [10, 0, 0, 9]),
        ("filter.school.example.", [10, 0, 0, 1]),
    ] {
        records.insert(
            (owner.into(), RecordType::A),
            vec![Record::from_rdata(
                name(owner),
                300,
                RData::A(A(Ipv4Addr::from(address))),
            )],
        );
    }
    records.insert(
        ("mixed.example.".into(), RecordType::A),
        vec![
            a("mixed.example.", 4),
            Record::from_rdata(name("mixed.example."), 300, RData::A(A::new(127, 0, 0, 1))),
        ],
    );
    records.insert(
        ("cloaked.example.".into(), RecordType::A),
        vec![
            cname("cloaked.example.", "tracker.example."),
            a("tracker.example.", 9),
        ],
    );
    records.insert(
        ("forcesafesearch.google.com.".into(), RecordType::A),
        vec![a("forcesafesearch.google.com.", 7)],
    );
    records.insert(
        ("casino.example.".into(), RecordType::A),
        vec![a("casino.example.", 3)],
    );
    let upstream = TableUpstream {
        records,
        ..TableUpstream::default()
    };
    let (asked, count) = (upstream.asked.clone(), upstream.count.clone());
    let stats = Arc::new(UpstreamStats::default());
    let limits = UpstreamLimits {
        cache_bytes: 1 << 20,
        max_in_flight: 16,
        max_in_flight_per_client: 16,
    };
    let upstream = CachedUpstream::new(
        Box::new(upstream),
        limits,
        UpstreamTiming::default(),
        stats.clone(),
    );
    Fixture {
        settings: Settings {
            policy,
            upstream: Arc::new(upstream),
            upstream_share_exempt: Vec::new(),
            rebinding: RebindingGuard::from_config(&config, stats.clone()),
            blocking: config.blocking.clone(),
            circumvention: config.circumvention,
            limits: config.limits.query_limits(),
            listeners: vec!["127.0.0.1:0".into()],
            full_query_log: false,
            tcp_idle_timeout: std::time::Duration::from_secs(10),
            counters: ProfileCounters::default(),
            lookups: LookupTally::default(),
        },
        stats,
        asked,
        count,
        clock: Clock::set_at(1_000_000),
        _dir: dir,
    }
}

fn reversed(domain: &str) -> ReversedName {
    ReversedName::from_domain(domain).expect("reversed")
}

fn unlock(domain: &str, network: &str) -> OverrideSet {
    unlock_until(domain, network, i64::MAX)
}

fn unlock_until(domain: &str, network: &str, expires_at: i64) -> OverrideSet {
    OverrideSet::new(&[OverrideRow {
        id: 42,
        target: OverrideTarget::Domain(domain.into()),
        scope: OverrideScope::Network(network.parse().expect("network")),
        reason: "a lesson on probability".into(),
        granted_by: "ms.khan".into(),
        starts_at: 0,
        expires_at,
        ended_at: None,
        ended_by: None,
    }])
}

fn ask<'s>(
    fixture: &'s Fixture,
    overrides: &OverrideSet,
    client: Client,
    domain: &str,
) -> (Verdict<'s>, Answer) {
    ask_type(fixture, overrides, client, domain, RecordType::A)
}

fn ask_type<'s>(
    fixture: &'s Fixture,
    overrides: &OverrideSet,
    client: Client,
    domain: &str,
    record_type: RecordType,
) -> (Verdict<'s>, Answer) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let qname = name(&format!("{domain}."));
    let question = Question {
        client,
        name: &qname,
        record_type,
        clock: &fixture.clock,
        checking_disabled: false,
    };
    runtime.block_on(resolve(
        &fixture.settings,
        overrides,
        reversed(domain),
        question,
    ))
}

fn addresses(answer: &Answer) -> Vec<String> {
    answer
        .answer_records()
        .map(|record| record.data.to_string())
        .collect()
}

#[test]
fn a_special_name_is_answered_here_and_never_asked_upstream() {
    let fixture = fixture();
    let (verdict, answer) = ask(
        &fixture,
        &OverrideSet::default(),
        PUPIL,
        "use-application-dns.net",
    );
    assert!(matches!(verdict.special, Some(SpecialAnswer::NxDomain(_))));
    assert!(!verdict.is_blocked());
    assert_eq!(answer.code, ResponseCode::NXDomain);
    assert!(answer.extended_error.is_some());
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0);
}

#[test]
fn a_blocked_name_gets_the_null_address_with_its_reason_and_no_upstream_question() {
    let fixture = fixture();
    let (verdict, answer) = ask(
        &fixture,
        &OverrideSet::default(),
        PUPIL,
        "www.casino.example",
    );
    assert!(matches!(verdict.decision, Decision::Blocked { .. }));
    assert!(verdict.is_blocked() && verdict.unlock.is_none());
    assert_eq!(addresses(&answer), ["0.0.0.0"]);
    let error = answer.extended_error.as_ref().expect("EDE");
    assert_eq!(error.code, crate::dns::protocol::EDE_FILTERED);
    assert!(error.text.contains("gambling"), "{}", error.text);
    assert_eq!(answer.explanation.as_ref().map(|e| e.blocked), Some(true));
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0);
}

#[test]
fn an_allowed_name_is_answered_by_the_upstream_then_from_the_cache() {
    let fixture = fixture();
    let (verdict, answer) = ask(
        &fixture,
        &OverrideSet::default(),
        PUPIL,
        "www.school.example",
    );
    assert!(!verdict.is_blocked() && verdict.asks_upstream());
    assert_eq!(addresses(&answer), ["192.0.2.1"]);
    assert!(answer.explanation.is_none());
    let (_, again) = ask(
        &fixture,
        &OverrideSet::default(),
        PUPIL,
        "www.school.example",
    );
    assert_eq!(addresses(&again), ["192.0.2.1"]);
    assert_eq!(
        fixture.count.load(Ordering::SeqCst),
        1,
        "the repeat came from the cache"
    );
}

#[test]
fn an_unlock_releases_the_name_for_its_room_only() {
    let fixture = fixture();
    let overrides = unlock("casino.example", "10.0.20.0/24");
    let (verdict, answer) = ask(&fixture, &overrides, PUPIL, "casino.example");
    assert_eq!(verdict.unlock, Some(42));
    assert!(!verdict.is_blocked());
    assert_eq!(addresses(&answer), ["192.0.2.3"]);
    let (verdict, answer) = ask(&fixture, &overrides, OTHER_PUPIL, "casino.example");
    assert_eq!(verdict.unlock, None);
    assert!(verdict.is_blocked());
    assert_eq!(addresses(&answer), ["0.0.0.0"]);
}

#[test]
fn an_unlock_ends_at_its_time_on_the_pipelines_clock() {
    let fixture = fixture();
    let overrides = unlock_until("casino.example", "10.0.20.0/24", 1_060_000);
    let (verdict, _) = ask(&fixture, &overrides, PUPIL, "casino.example");
    assert_eq!(verdict.unlock, Some(42));
    fixture.clock.set(1_060_000);
    let (verdict, answer) = ask(&fixture, &overrides, PUPIL, "casino.example");
    assert_eq!(verdict.unlock, None);
    assert_eq!(addresses(&answer), ["0.0.0.0"]);
}

#[test]
fn safe_search_asks_for_the_enforcement_host_and_answers_with_a_cname() {
    let fixture = fixture();
    let (verdict, answer) = ask(&fixture, &OverrideSet::default(), PUPIL, "www.google.com");
    let rewrite = verdict.rewrite.expect("a rewrite");
    assert_eq!(rewrite.target, "forcesafesearch.google.com");
    let records: Vec<_> = answer
        .answer_records()
        .map(|r| r.data.to_string().trim_end_matches('.').to_string())
        .collect();
    assert_eq!(records, ["forcesafesearch.google.com", "192.0.2.7"]);
    let asked = fixture.asked.lock().expect("asked").clone();
    assert_eq!(
        asked,
        ["forcesafesearch.google.com."],
        "only the target is asked"
    );
}

#[test]
fn an_alias_to_a_blocked_name_blocks_the_answer_and_an_unlock_of_the_unblocked_name_does_not_lift_it()
 {
    let fixture = fixture();
    let (verdict, answer) = ask(&fixture, &OverrideSet::default(), PUPIL, "cloaked.example");
    let (alias, _) = verdict.alias.as_deref().expect("the alias gave it away");
    assert_eq!(alias.as_bytes(), b"example.tracker");
    assert!(verdict.is_blocked());
    assert_eq!(addresses(&answer), ["0.0.0.0"]);
    let explanation = answer.explanation.as_ref().expect("explanation");
    assert_eq!(explanation.rule.as_deref(), Some("tracker.example"));

    let overrides = unlock("cloaked.example", "10.0.20.0/24");
    // The unlock is for the name asked; it was not blocked itself, so the
    // alias is judged on its own and still blocks.
    let (verdict, _) = ask(&fixture, &overrides, PUPIL, "cloaked.example");
    assert!(verdict.alias.is_some());
}

#[test]
fn check_runs_the_same_stages_as_the_answer() {
    let fixture = fixture();
    let overrides = unlock("casino.example", "10.0.20.0/24");
    for domain in [
        "use-application-dns.net",
        "www.casino.example",
        "casino.example",
        "www.school.example",
        "www.google.com",
    ] {
        for client in [PUPIL, OTHER_PUPIL] {
            let profile = fixture
                .settings
                .policy
                .profile_for(client.address, client.listener);
            let checked = decide(
                &fixture.settings,
                &overrides,
                Some(client),
                profile,
                reversed(domain),
                &fixture.clock,
            );
            let (answered, _) = ask(&fixture, &overrides, client, domain);
            assert_eq!(checked.is_blocked(), answered.is_blocked(), "{domain}");
            assert_eq!(checked.unlock, answered.unlock, "{domain}");
            assert_eq!(checked.special, answered.special, "{domain}");
            assert_eq!(
                checked.rewrite.map(|r| r.target),
                answered.rewrite.map(|r| r.target),
                "{domain}"
            );
        }
    }
}

#[test]
fn any_is_answered_with_one_hinfo_record_and_never_asked_upstream() {
    let fixture = fixture();
    let none = OverrideSet::default();
    let (verdict, answer) = ask_type(
        &fixture,
        &none,
        PUPIL,
        "www.school.example",
        RecordType::ANY,
    );
    assert!(!verdict.is_blocked());
    assert_eq!(answer.code, ResponseCode::NoError);
    let records: Vec<&Record> = answer.answer_records().collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record_type(), RecordType::HINFO);
    let RData::HINFO(hinfo) = &records[0].data else {
        panic!("not HINFO: {:?}", records[0].data);
    };
    assert_eq!((&*hinfo.cpu, &*hinfo.os), (&b"RFC8482"[..], &b""[..]));
    assert_eq!(records[0].ttl, 3600);
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0);
}

#[test]
fn a_blocked_name_asked_any_still_gets_the_block_answer() {
    let fixture = fixture();
    let none = OverrideSet::default();
    let (verdict, answer) = ask_type(&fixture, &none, PUPIL, "casino.example", RecordType::ANY);
    assert!(verdict.is_blocked());
    assert!(answer.explanation.is_some());
    assert!(answer.extended_error.is_some());
    assert!(
        answer
            .answer_records()
            .all(|r| r.record_type() != RecordType::HINFO)
    );
    assert_eq!(fixture.count.load(Ordering::SeqCst), 0);
}

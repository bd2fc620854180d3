//! The stage that answers a repeated question from its bytes, held to the
//! whole pipeline: two pipelines built alike, one with the stage and one
//! without, are given the same random run of queries (clients of three
//! profiles on two listeners, A/AAAA/HTTPS/ANY, RD, CD, DO, EDNS sizes and
//! letter case), interleaved with reloads to a stricter policy and back,
//! the swap a rule of time makes, staff unlocks granted, expiring and
//! revoked, and time moving on past TTLs and cache expiry. Every response
//! must be byte for byte the same, and so must what each recorded: the
//! block events, the counters behind /metrics and the hourly lookups. Two
//! more pipelines, with and without the stage and with no output that
//! wants the block events (so the stage's repeats of a block are folded
//! into counts for the block log), write their block logs as they go: the
//! rows and hourly figures must be the same.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use proptest::prelude::*;

use crate::clock::Clock;
use crate::config::{Config, ConfigOrigin};
use crate::dns::codec::{self, Transport};
use crate::dns::resolve::cache;
use crate::dns::resolve::pipeline::Pipeline;
use crate::dns::resolve::rebinding::RebindingGuard;
use crate::dns::resolve::recorder::{BlockOutput, Recorder};
use crate::dns::resolve::settings::{Client, Settings};
use crate::dns::resolve::table::{TableUpstream, a, cname, name};
use crate::dns::resolve::upstream::{CachedUpstream, UpstreamLimits, UpstreamTiming};
use crate::journal::{BlockEvent, Journal, JournalConfig, JournalTask};
use crate::lists::store::CompiledLists;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::policy::for_tests::compiled_lists;
use crate::policy::overrides::OverrideSet;
use crate::policy::rules::{OverrideRow, OverrideScope, OverrideTarget};
use crate::policy::safesearch::SafeSearchMap;

use super::udp::answer_at_once;

/// The policies a run swaps between: as configured, stricter (video
/// blocked for KS2 too), and KS2's lunchtime (games allowed), as a rule of
/// time puts in force.
const POLICIES: [&str; 3] = [
    "block_categories = [\"gambling\", \"games\"]",
    "block_categories = [\"gambling\", \"games\", \"video\"]",
    "block_categories = [\"gambling\"]",
];

const NAMES: [&str; 10] = [
    "www.school.example",
    "video.example",
    "games.example",
    "casino.example",
    "cloaked.example",
    "short.example",
    "nothere.example",
    "use-application-dns.net",
    "www.google.com",
    "mixed.example",
];

/// Who asks: KS2 pupils (two devices), a staff laptop (by network), and a
/// pupil's device on the staff room's listener.
const CLIENTS: [(Ipv4Addr, usize); 4] = [
    (Ipv4Addr::new(10, 0, 20, 5), 0),
    (Ipv4Addr::new(10, 0, 20, 6), 0),
    (Ipv4Addr::new(10, 0, 30, 5), 0),
    (Ipv4Addr::new(10, 0, 40, 7), 1),
];

const START_MS: i64 = 1_800_000_000_000;

fn config_text(dir: &Path, ks2_blocks: &str) -> String {
    format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[listen]]
address = "127.0.0.2:0"
profile = "staff"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[web]
enabled = false
public_url = "https://filter.school.example:8443/"
[[lists]]
name = "gambling"
path = "{dir}/gambling.txt"
category = "gambling"
[[lists]]
name = "games"
path = "{dir}/games.txt"
category = "games"
[[lists]]
name = "video"
path = "{dir}/video.txt"
category = "video"
[[clients]]
network = "10.0.30.0/24"
profile = "staff"
[profiles.ks2]
mode = "blocklist"
{ks2_blocks}
safe_search = true
[profiles.staff]
mode = "blocklist"
block_categories = ["gambling"]
"#,
        data = dir.join("data").display(),
        dir = dir.display(),
    )
}

/// What every side's policies are built from: the configs and the lists.
struct Inputs {
    configs: Vec<Config>,
    lists: Arc<CompiledLists>,
    safe_search: Arc<SafeSearchMap>,
    dir: tempfile::TempDir,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, names) in [
        ("gambling.txt", "casino.example\ntracker.example\n"),
        ("games.txt", "games.example\n"),
        ("video.txt", "video.example\n"),
    ] {
        std::fs::write(dir.path().join(file), names).expect("list");
    }
    let configs: Vec<Config> = POLICIES
        .iter()
        .map(|blocks| {
            Config::parse(&config_text(dir.path(), blocks), ConfigOrigin::default())
                .unwrap_or_else(|errors| panic!("{errors}"))
        })
        .collect();
    Inputs {
        lists: compiled_lists(&configs[0], dir.path()),
        configs,
        safe_search: Arc::new(SafeSearchMap::embedded().expect("safe search map")),
        dir,
    }
}

fn upstream_table() -> TableUpstream {
    let mut records = HashMap::new();
    for (owner, last) in [
        ("www.school.example.", 1),
        ("video.example.", 2),
        ("games.example.", 3),
        ("casino.example.", 4),
        ("forcesafesearch.google.com.", 5),
    ] {
        records.insert((owner.into(), RecordType::A), vec![a(owner, last)]);
    }
    records.insert(
        ("cloaked.example.".into(), RecordType::A),
        vec![
            cname("cloaked.example.", "tracker.example."),
            a("tracker.example.", 9),
        ],
    );
    // Popular and short-lived: refreshed early by the cache.
    records.insert(
        ("short.example.".into(), RecordType::A),
        vec![Record::from_rdata(
            name("short.example."),
            20,
            RData::A(A::new(192, 0, 2, 20)),
        )],
    );
    // A private address for a public name: the rebinding guard drops it.
    records.insert(
        ("mixed.example.".into(), RecordType::A),
        vec![
            a("mixed.example.", 6),
            Record::from_rdata(name("mixed.example."), 300, RData::A(A::new(10, 0, 0, 9))),
        ],
    );
    TableUpstream {
        records,
        ..TableUpstream::default()
    }
}

#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<BlockEvent>>>);

impl BlockOutput for Collected {
    fn blocked(&self, event: &BlockEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }
}

/// An hour's blocked lookups of one profile and category.
type BlockedHour = (i64, String, Option<String>, i64);

/// One way of answering: a pipeline with or without the stage, and what
/// it recorded.
struct Side {
    pipeline: Pipeline,
    upstream: Arc<CachedUpstream>,
    metrics: Arc<Metrics>,
    journal: Journal,
    events: Collected,
    /// Where its block log is written, when its writer runs.
    log: Option<std::path::PathBuf>,
    runtime: tokio::runtime::Runtime,
    _task: Option<JournalTask>,
}

impl Side {
    /// A side with the stage or without (`repeats`); `logged`: its block
    /// log's writer runs, on the clock the lookups are recorded by, and no
    /// output takes the block events.
    fn new(inputs: &Inputs, repeats: bool, clock: &Clock, tag: &str, logged: bool) -> Side {
        let metrics = Arc::new(Metrics::default());
        let upstream = Arc::new(CachedUpstream::new(
            Box::new(upstream_table()),
            UpstreamLimits {
                cache_bytes: 1 << 20,
                max_in_flight: 16,
                max_in_flight_per_client: 16,
            },
            UpstreamTiming::default(),
            metrics.upstream.clone(),
        ));
        let path = inputs.dir.path().join(format!("{tag}.db"));
        let mut journal_config = JournalConfig::new(&path);
        if logged {
            journal_config.clock = clock.clone();
            journal_config.flush_interval = Duration::from_millis(1);
        }
        let (journal, task) = Journal::open(
            journal_config,
            crate::journal::DeviceDirectory::new(Vec::new()).with_arp_path(None),
        )
        .expect("journal");
        let events = Collected::default();
        let recorder = Recorder::new(journal.clone(), metrics.clone(), clock.clone());
        let recorder = if logged {
            recorder
        } else {
            recorder.with_output(events.clone())
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let task = if logged {
            runtime.spawn(task.run());
            None
        } else {
            Some(task)
        };
        let settings = settings_for(inputs, 0, &upstream, &metrics);
        let pipeline = Pipeline::new(settings, recorder, clock.clone());
        let pipeline = if repeats {
            pipeline
        } else {
            pipeline.without_repeats()
        };
        Side {
            pipeline,
            upstream,
            metrics,
            journal,
            events,
            log: logged.then_some(path),
            runtime,
            _task: task,
        }
    }

    /// Lets a running block log's writer write what it was sent, so the
    /// next repeats find their rows written (and their counts open).
    fn settle_log(&self) {
        if self.log.is_none() {
            return;
        }
        self.runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.journal.stats().pending > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }

    /// The block log's rows as the head teacher reads them, and its hourly
    /// figures of blocked lookups, once everything recorded is written
    /// (allowed lookups are taken into the hour it is when the writer
    /// takes them, which the test's clock may have moved past).
    fn logged(&self) -> (Vec<String>, Vec<BlockedHour>) {
        let Some(path) = &self.log else {
            return Default::default();
        };
        self.runtime.block_on(self.journal.flush());
        let rows = crate::journal::query_blocked(path, &Default::default())
            .expect("rows")
            .into_iter()
            .map(|row| {
                format!(
                    "{} {} {} {} {} {} {:?} {:?} {}",
                    row.at_unix_ms,
                    row.last_at_unix_ms,
                    row.count,
                    row.client_ip,
                    row.name,
                    row.query_type,
                    row.listener,
                    row.rule,
                    row.action
                )
            })
            .collect();
        let reader = crate::journal::JournalReader::open(path).expect("reader");
        let hourly = reader
            .hourly(0, i64::MAX)
            .expect("hourly")
            .into_iter()
            .filter(|h| h.blocked > 0)
            .map(|h| (h.hour_unix_ms, h.profile, h.category, h.blocked))
            .collect();
        (rows, hourly)
    }

    /// The response to `datagram` from `client`, as the UDP reader gives
    /// it: at once, or from the pipeline's task when it must wait.
    fn ask(&self, datagram: &[u8], client: Client) -> Vec<u8> {
        let _inside = self.runtime.enter();
        let mut response = Vec::new();
        let waiting = answer_at_once(
            &self.pipeline,
            &self.metrics,
            datagram,
            client,
            |bytes: &[u8]| response = bytes.to_vec(),
        );
        if let Some(query) = waiting {
            let answer = self.runtime.block_on(self.pipeline.answer_checking(
                &query.name,
                query.record_type,
                client,
                query.checking_disabled(),
            ));
            codec::respond(&query, &answer, Transport::Udp, |bytes| {
                response = bytes.to_vec()
            });
        }
        self.settle();
        response
    }

    /// Lets the refreshes begun in the background finish.
    fn settle(&self) {
        for _ in 0..4 {
            self.runtime.block_on(tokio::task::yield_now());
        }
    }

    fn swap(&self, inputs: &Inputs, policy: usize) {
        self.pipeline
            .swap(settings_for(inputs, policy, &self.upstream, &self.metrics));
    }

    /// Everything recorded, as text to compare.
    fn recorded(&self) -> (Vec<BlockEvent>, Vec<(String, u64)>, String) {
        let events = self.events.0.lock().expect("events").clone();
        let lists = &self.pipeline.settings().policy.lists;
        // Every counter but the stage's own; not the upstream's timings
        // nor the lists' ages (read from the clock when rendered), and in
        // one order (some families come out in a hash map's).
        let mut counters: Vec<String> = self
            .metrics
            .render(lists, &self.journal.stats())
            .lines()
            .filter(|line| {
                !line.starts_with('#')
                    && !line.contains("duration_seconds")
                    && !line.contains("age_seconds")
                    && !line.starts_with("lollipop_repeated_answers")
            })
            .map(str::to_owned)
            .collect();
        counters.sort();
        (events, self.journal.lookups_counted(), counters.join("\n"))
    }
}

fn settings_for(
    inputs: &Inputs,
    policy: usize,
    upstream: &Arc<CachedUpstream>,
    metrics: &Metrics,
) -> Settings {
    let config = &inputs.configs[policy];
    Settings {
        policy: Policy::build(
            config,
            inputs.lists.clone(),
            inputs.safe_search.clone(),
            &[],
        )
        .expect("policy"),
        upstream: upstream.clone(),
        upstream_share_exempt: Vec::new(),
        rebinding: RebindingGuard::from_config(config, metrics.upstream.clone()),
        blocking: config.blocking.clone(),
        circumvention: config.circumvention,
        limits: config.limits.query_limits(),
        listeners: vec!["127.0.0.1:0".into(), "127.0.0.2:0".into()],
        full_query_log: false,
        tcp_idle_timeout: Duration::from_secs(10),
        counters: Default::default(),
        lookups: Default::default(),
    }
}

/// A staff unlock of `domain` for the KS2 network until `expires_at`.
fn unlock(domain: &str, expires_at: i64) -> OverrideSet {
    OverrideSet::new(&[OverrideRow {
        id: 7,
        target: OverrideTarget::Domain(domain.into()),
        scope: OverrideScope::Network("10.0.20.0/24".parse().expect("network")),
        reason: "a lesson on probability".into(),
        granted_by: "ms.khan".into(),
        starts_at: 0,
        expires_at,
        ended_at: None,
        ended_by: None,
    }])
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    Ask {
        client: usize,
        name: usize,
        record_type: usize,
        /// Bits: RD, CD, EDNS, DO, EDNS payload 4096, upper case, ID.
        flags: u8,
    },
    /// Time moves on this many seconds.
    Wait(u64),
    /// A reload or a rule of time puts policy N in force.
    Swap(usize),
    /// A staff unlock of casino.example (for good, or for 10 s), or of
    /// games.example; or every unlock ended.
    Unlock(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        // Few enough ways of asking that most questions are repeats.
        12 => (
            0..CLIENTS.len(),
            0..NAMES.len(),
            prop::sample::select(vec![0usize, 0, 0, 1, 2, 3]),
            prop::sample::select(vec![1u8, 1, 1, 0, 1 | 4, 2 | 4 | 8, 1 | 4 | 16 | 32, 1 | 64]),
        )
            .prop_map(|(client, name, record_type, flags)| Step::Ask {
                client,
                name,
                record_type,
                flags,
            }),
        3 => prop::sample::select(vec![1u64, 1, 2, 9, 19, 61, 301, 3600]).prop_map(Step::Wait),
        1 => (0..POLICIES.len()).prop_map(Step::Swap),
        1 => (0..4usize).prop_map(Step::Unlock),
    ]
}

/// A query as a client writes it.
fn datagram(name: &str, record_type: RecordType, flags: u8) -> Vec<u8> {
    let mut bytes = vec![0x12, 0x34 ^ (flags >> 6), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    if flags & 1 != 0 {
        bytes[2] |= 0x01;
    }
    if flags & 2 != 0 {
        bytes[3] |= 0x10;
    }
    for label in name.split('.') {
        bytes.push(label.len() as u8);
        if flags & 32 != 0 {
            bytes.extend(label.to_ascii_uppercase().bytes());
        } else {
            bytes.extend(label.bytes());
        }
    }
    bytes.push(0);
    bytes.extend(u16::from(record_type).to_be_bytes());
    bytes.extend([0, 1]);
    if flags & 4 != 0 {
        bytes[11] = 1;
        let payload: u16 = if flags & 16 != 0 { 4096 } else { 1232 };
        bytes.push(0);
        bytes.extend(41u16.to_be_bytes());
        bytes.extend(payload.to_be_bytes());
        bytes.extend([0, 0, if flags & 8 != 0 { 0x80 } else { 0 }, 0, 0, 0]);
    }
    bytes
}

/// Runs `steps` on both sides; the questions the stage answered.
fn run(steps: &[Step]) -> Result<u64, TestCaseError> {
    let inputs = inputs();
    let clock = Clock::set_at(START_MS);
    let on = Side::new(&inputs, true, &clock, "on", false);
    let off = Side::new(&inputs, false, &clock, "off", false);
    let folding = Side::new(&inputs, true, &clock, "folding", true);
    let logged = Side::new(&inputs, false, &clock, "logged", true);
    let mut now = Instant::now();
    cache::hold_time(Some(now));
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::HTTPS,
        RecordType::ANY,
    ];
    let mut hits_possible = 0;
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Ask {
                client,
                name,
                record_type,
                flags,
            } => {
                let (address, listener) = CLIENTS[client];
                let client = Client {
                    address: IpAddr::V4(address),
                    listener: Some(listener),
                };
                let query = datagram(NAMES[name], types[record_type], flags);
                let with = on.ask(&query, client);
                let without = off.ask(&query, client);
                for side in [&folding, &logged] {
                    prop_assert_eq!(&side.ask(&query, client), &without);
                    side.settle_log();
                }
                prop_assert_eq!(
                    &with,
                    &without,
                    "step {}: {:?} answered differently with the stage on",
                    i,
                    step
                );
                hits_possible += 1;
            }
            Step::Wait(secs) => {
                now += Duration::from_secs(secs);
                cache::hold_time(Some(now));
                clock.advance(Duration::from_secs(secs));
            }
            Step::Swap(policy) => {
                for side in [&on, &off, &folding, &logged] {
                    side.swap(&inputs, policy);
                }
            }
            Step::Unlock(kind) => {
                let overrides = || match kind {
                    0 => unlock("casino.example", i64::MAX),
                    1 => unlock("casino.example", clock.now_unix_ms() + 10_000),
                    2 => unlock("games.example", i64::MAX),
                    _ => OverrideSet::default(),
                };
                for side in [&on, &off, &folding, &logged] {
                    side.pipeline.set_overrides(overrides());
                }
            }
        }
    }
    cache::hold_time(None);
    let (on_events, on_lookups, on_metrics) = on.recorded();
    let (off_events, off_lookups, off_metrics) = off.recorded();
    prop_assert_eq!(on_events, off_events, "block events differ");
    prop_assert_eq!(on_lookups, off_lookups, "hourly lookups differ");
    prop_assert_eq!(on_metrics, off_metrics, "/metrics differs");
    let (folded_rows, folded_hours) = folding.logged();
    let (logged_rows, logged_hours) = logged.logged();
    prop_assert_eq!(folded_rows, logged_rows, "block log rows differ");
    prop_assert_eq!(folded_hours, logged_hours, "hourly figures differ");
    prop_assert!(off.pipeline.repeats().is_none());
    let hits = on.metrics.repeated.get();
    prop_assert!(hits <= hits_possible);
    prop_assert_eq!(off.metrics.repeated.get(), 0);
    Ok(hits)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_repeated_question_gets_what_the_whole_pipeline_gives_and_records(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        run(&steps)?;
    }
}

/// The run the random ones are built around, spelt out: a name asked
/// again is given from the stage (it holds answers then), and after each
/// change it is still what the whole pipeline gives.
#[test]
fn the_stage_answers_repeats_and_follows_every_change() {
    let ask = |name, flags| Step::Ask {
        client: 0,
        name,
        record_type: 0,
        flags,
    };
    let steps = vec![
        ask(0, 1),
        ask(0, 1),
        ask(1, 1),
        ask(1, 1),
        ask(3, 1),
        ask(3, 1),
        ask(3, 1),
        ask(3, 1),
        Step::Wait(2),
        ask(0, 1),
        ask(1, 1),
        Step::Swap(1),
        ask(1, 1),
        ask(1, 1),
        Step::Unlock(0),
        ask(3, 1),
        ask(3, 1),
        Step::Unlock(3),
        ask(3, 1),
        Step::Swap(2),
        ask(2, 1),
        ask(2, 1),
        ask(2, 2 | 4 | 8),
        ask(2, 2 | 4 | 8),
        ask(5, 1),
        Step::Wait(9),
        ask(5, 1),
        ask(5, 1),
        Step::Wait(9),
        ask(5, 1),
        ask(5, 1),
        Step::Wait(301),
        ask(0, 1),
        ask(0, 1),
    ];
    let folded_before = crate::journal::COUNTED_HERE.with(|n| n.get());
    match run(&steps) {
        // Asked again with nothing changed between: www.school.example,
        // video.example, casino.example, games.example twice, short.example
        // (its refresh window shuts the stage out for a while), and more.
        Ok(hits) => assert!(hits >= 6, "the stage answered only {hits} repeats"),
        Err(error) => panic!("{error}"),
    }
    // casino.example's third and fourth asking went into its row's count
    // (the second made the row's count), not as events.
    let folded = crate::journal::COUNTED_HERE.with(|n| n.get()) - folded_before;
    assert!(folded >= 2, "{folded} repeats folded");
}

/// A reload that brings a response cache of another size resizes the
/// store of answers given again with it (a quarter of the cache's).
#[test]
fn a_reload_with_another_cache_size_resizes_the_store() {
    let inputs = inputs();
    let clock = Clock::system();
    let side = Side::new(&inputs, true, &clock, "resize", false);
    let repeats = || side.pipeline.repeats().expect("the stage is on");
    assert_eq!(repeats().budget(), (1 << 20) / 4);
    let smaller = Arc::new(CachedUpstream::new(
        Box::new(upstream_table()),
        UpstreamLimits {
            cache_bytes: 1 << 18,
            max_in_flight: 16,
            max_in_flight_per_client: 16,
        },
        UpstreamTiming::default(),
        side.metrics.upstream.clone(),
    ));
    side.pipeline
        .swap(settings_for(&inputs, 0, &smaller, &side.metrics));
    assert_eq!(repeats().budget(), (1 << 18) / 4);
    assert!(repeats().bytes() <= repeats().budget());
}

//! What the fuzz targets share: the in-process resolver the whole
//! request-to-response target asks (built once), and the list reader the
//! list-parser targets run. Nothing here touches the network.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use hickory_resolver::proto::rr::RecordType;
use lollipop::clock::Clock;
use lollipop::config::{Config, ConfigOrigin, ListFormat};
use lollipop::dns::codec::{self, FORMERR, Incoming, Transport};
use lollipop::dns::resolve::answer::Answer;
use lollipop::dns::resolve::pipeline::Pipeline;
use lollipop::dns::resolve::recorder::Recorder;
use lollipop::dns::resolve::settings::Client;
use lollipop::dns::resolve::table::{TableUpstream, a, cname};
use lollipop::dns::resolve::upstream::{CachedUpstream, UpstreamLimits};
use lollipop::journal::{DeviceDirectory, Journal, JournalConfig};
use lollipop::lists::compile::compile;
use lollipop::lists::parse::{LineParser, LineResult};
use lollipop::lists::store::CompiledLists;
use lollipop::metrics::{Metrics, UpstreamStats};
use lollipop::name::{ReversedName, normalise_domain, reverse_domain};


/// A pupil (the blocklist profile) and a nursery device (the allowlist
/// profile): the query ID's lowest bit picks one.
const PUPIL: Client = Client {
    address: IpAddr::V4(Ipv4Addr::new(10, 0, 20, 5)),
    listener: None,
};
const NURSERY: Client = Client {
    address: IpAddr::V4(Ipv4Addr::new(10, 0, 30, 5)),
    listener: None,
};

/// A small school: two profiles, a few blocked and allowed names, special
/// names and safe search on, and an upstream answering from memory.
struct Harness {
    runtime: tokio::runtime::Runtime,
    pipeline: Pipeline,
    _dir: tempfile::TempDir,
}

fn must<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("the fuzz harness could not {what}: {error}"),
    }
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(build_harness)
}

fn build_harness() -> Harness {
    let dir = must("make a temporary directory", tempfile::tempdir());
    let write = |file: &str, text: &str| {
        must("write a list", std::fs::write(dir.path().join(file), text));
    };
    write(
        "gambling.txt",
        "casino.example\ntracker.example\n*.bet.example\n",
    );
    write(
        "adult.txt",
        "0.0.0.0 adult.example\n0.0.0.0 www.adult.example\n",
    );
    write(
        "ads.txt",
        "||ads.example^\n@@||good.ads.example^\n||important.example^$important\n",
    );
    write("nursery.txt", "cbeebies.example\nschool.example\n");
    let text = format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[clients]]
network = "10.0.30.0/24"
profile = "under5"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[web]
enabled = false
[blocking]
answer = "null"
locked_categories = ["adult"]
[[lists]]
name = "gambling"
path = "{dir}/gambling.txt"
category = "gambling"
[[lists]]
name = "adult"
path = "{dir}/adult.txt"
format = "hosts"
category = "adult"
[[lists]]
name = "ads"
path = "{dir}/ads.txt"
format = "adblock"
category = "ads"
[[lists]]
name = "nursery"
path = "{dir}/nursery.txt"
category = "nursery"
[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling", "adult", "ads"]
allow_domains = ["www.casino.example"]
safe_search = true
[profiles.under5]
mode = "allowlist"
allow_categories = ["nursery"]
deny_domains = ["bad.school.example"]
"#,
        data = dir.path().join("data").display(),
        dir = dir.path().display(),
    );
    let config = must(
        "parse its config",
        Config::parse(&text, ConfigOrigin::default()),
    );
    let specs: Vec<_> = lollipop::lists::acquire::sources::configured(&config)
        .into_iter()
        .map(|source| source.spec)
        .collect();
    let out = dir.path().join("lists.lollipop");
    must("compile its lists", compile(&specs, &out));
    let lists = Arc::new(must("open its lists", CompiledLists::open(&out)));
    let mut records = HashMap::new();
    for (owner, last) in [
        ("school.example.", 1),
        ("www.school.example.", 2),
        ("casino.example.", 3),
        ("www.casino.example.", 4),
        ("forcesafesearch.google.com.", 7),
        ("good.ads.example.", 8),
    ] {
        records.insert((owner.to_string(), RecordType::A), vec![a(owner, last)]);
    }
    records.insert(
        ("cloaked.example.".into(), RecordType::A),
        vec![
            cname("cloaked.example.", "tracker.example."),
            a("tracker.example.", 9),
        ],
    );
    // An answer too big for 512 bytes: the truncation path.
    records.insert(
        ("big.example.".into(), RecordType::A),
        (0..=60).map(|last| a("big.example.", last)).collect(),
    );
    let metrics = Arc::new(Metrics::default());
    let stats = Arc::new(UpstreamStats::default());
    let limits = UpstreamLimits {
        cache_bytes: 1 << 20,
        max_in_flight: 16,
        max_in_flight_per_client: 16,
    };
    let upstream = CachedUpstream::new(
        Box::new(TableUpstream {
            records,
            ..TableUpstream::default()
        }),
        limits,
        lollipop::dns::resolve::timing_for(&config),
        stats,
    );
    // The service's own builder: the policy and every stage's settings as
    // the running resolver has them, the table upstream in place of the
    // network.
    let settings = must(
        "build its settings",
        lollipop::service::settings::build_settings(
            &config,
            lists,
            Some(Arc::new(upstream)),
            &metrics,
        ),
    );
    // The writer task is never run: the queue fills and further events are
    // counted as dropped, which is what the resolver does under load too.
    let mut journal_config = JournalConfig::new(dir.path().join("lollipop.db"));
    journal_config.channel_capacity = 64;
    let (journal, _task) = must(
        "open the block log",
        Journal::open(journal_config, DeviceDirectory::new(Vec::new())),
    );
    let clock = Clock::set_at(1_760_000_000_000);
    let recorder = Recorder::new(journal, metrics, clock.clone());
    let pipeline = Pipeline::new(settings, recorder, clock);
    let runtime = must(
        "start a runtime",
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    );
    Harness {
        runtime,
        pipeline,
        _dir: dir,
    }
}

/// One datagram through the whole path, as the UDP reader takes it: read,
/// answer (the pipeline, for a question), respond. Returns the response
/// sent, if any.
pub fn answer_datagram(message: &[u8]) -> Option<Vec<u8>> {
    match codec::read(message) {
        Incoming::Question(query) => {
            // The test build panics on purpose for this label (the crash
            // containment tests); it is not a finding.
            let first = query.name.iter().next().unwrap_or_default();
            if first.eq_ignore_ascii_case(lollipop::testkit::faults::PANIC_LABEL.as_bytes()) {
                return None;
            }
            let harness = harness();
            let client = if query.id & 1 == 0 { PUPIL } else { NURSERY };
            let answer = harness.runtime.block_on(harness.pipeline.answer(
                &query.name,
                query.record_type,
                client,
            ));
            Some(codec::respond(
                &query,
                &answer,
                Transport::Udp,
                <[u8]>::to_vec,
            ))
        }
        Incoming::Error(query, code) => Some(codec::respond(
            &query,
            &Answer::code(code),
            Transport::Udp,
            <[u8]>::to_vec,
        )),
        Incoming::Malformed => codec::bare_error(message, FORMERR),
        Incoming::Ignored => None,
    }
}

/// Reads `data` as a list file of `format`, as the compiler does (lines cut
/// at `\n`, a trailing `\r` left for the parser, lines too long or not
/// UTF-8 skipped), and holds every entry to the rules a key is built on.
pub fn parse_list(format: ListFormat, data: &[u8]) {
    let mut parser = LineParser::new(format);
    for raw in data.split(|&b| b == b'\n') {
        if raw.len() > lollipop::lists::compile::MAX_LINE_BYTES + 1 {
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        parser.parse_line(line, |result| {
            if let LineResult::Entry { domain, .. } = result {
                assert_eq!(
                    normalise_domain(&domain).as_deref(),
                    Ok(domain.as_str()),
                    "an entry must be a normalised name"
                );
                let reversed = ReversedName::from_domain(&domain);
                assert!(reversed.is_some(), "an entry must make a key: {domain:?}");
                assert_eq!(
                    reversed.map(|r| r.as_bytes().to_vec()),
                    Some(reverse_domain(&domain).into_bytes())
                );
            }
        });
    }
}

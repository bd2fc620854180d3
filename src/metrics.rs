//! The resolver's counters for `/metrics`, kept and written out in the
//! Prometheus text format (0.0.4) by the Prometheus client crate
//! (`prometheus-client`).
//!
//! Counters are found by name (profile, category) once, when settings are put
//! in force, so a reload keeps every count and a query only adds to an atomic;
//! the block log's and the lists' figures are read only when someone scrapes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::journal::JournalStats;
use crate::lists::store::CompiledLists;
use crate::policy::Policy;

pub use limits::LimitCounters;
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use shipping::{ShipFigures, Shipping};

mod limits;
mod shipping;

/// The category a block is counted under when no list category applies.
pub const SCHOOL_ENTRY: &str = "school-entry";
pub const WALLED_GARDEN: &str = "walled-garden";

/// Upper bounds (microseconds) of the upstream latency histogram's buckets.
const LATENCY_BUCKETS_US: [u64; 13] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// Panics caught anywhere in the process (a DNS reader thread, a task).
/// One count for the process: the panic hook that counts has no handle on
/// any one `Metrics`.
static PANICS: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);

/// Counts one panic (called by the panic hook the service installs).
pub fn count_panic() {
    PANICS.inc();
}

/// Every counter of one resolver process.
pub struct Metrics {
    /// What lives as long as the process: the counters by profile, then the
    /// cache and upstream figures.
    registry: Registry,
    names: Arc<Names>,
    pub upstream: Arc<UpstreamStats>,
    /// Messages from clients that were not a readable query (answered
    /// FORMERR or NOTIMP, or not at all): counted here, never logged one
    /// line each.
    pub malformed: Counter,
    /// Questions asked again over UDP and answered from the bytes of the
    /// answer given before (already counted with every other query too).
    pub repeated: Counter,
    /// What the abuse limits turned away.
    pub limits: LimitCounters,
    /// The trust's central log, per destination (src/ship).
    pub shipping: Arc<Shipping>,
}

/// Counters by name, kept across reloads; the map is touched only when
/// settings change and when scraped. A `BTreeMap` rather than the crate's
/// `Family` (a hash map) so that series come out sorted, scrape after scrape.
#[derive(Debug, Default)]
struct Names(Mutex<NameMaps>);

#[derive(Debug, Default)]
struct NameMaps {
    queries: BTreeMap<String, Counter>,
    blocks: BTreeMap<(String, String), Counter>,
}

/// The counters of the profiles in force, indexed like the policy's
/// profiles: what the hot path adds to.
#[derive(Default)]
pub struct ProfileCounters {
    profiles: Vec<ProfileSlot>,
}

struct ProfileSlot {
    queries: Counter,
    /// A handful of categories: a linear scan beats hashing here.
    blocks: Vec<(String, Counter)>,
}

impl ProfileCounters {
    /// One question answered for `profile` (an index of the policy's profiles).
    #[inline]
    pub fn count_query(&self, profile: usize) {
        if let Some(slot) = self.profiles.get(profile) {
            slot.queries.inc();
        }
    }

    /// One blocked answer for `profile`, under `category`.
    #[inline]
    pub fn count_block(&self, profile: usize, category: &str) {
        let Some(slot) = self.profiles.get(profile) else {
            return;
        };
        let counter = slot
            .blocks
            .iter()
            .find(|(name, _)| name == category)
            .or_else(|| slot.blocks.iter().find(|(name, _)| name == SCHOOL_ENTRY));
        if let Some((_, counter)) = counter {
            counter.inc();
        }
    }
}

/// The response cache and the upstream lookups.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Lookups that waited for one already on its way for the same question.
    pub coalesced: AtomicU64,
    /// Lookups refused (SERVFAIL) because their client held its share of
    /// the lookups in flight, or because every slot was taken.
    pub share_refused: AtomicU64,
    pub pool_refused: AtomicU64,
    /// Answers whose private addresses for a public name were dropped.
    pub rebinding_dropped: AtomicU64,
    /// Answers served past their TTL because the upstreams did not answer
    /// in time (RFC 8767).
    pub stale_served: AtomicU64,
    /// Failures kept for a few seconds (RFC 9520).
    pub failures_cached: AtomicU64,
    /// Lookups made in the background: popular answers refreshed before
    /// they ran out, stale ones refreshed while served.
    pub refreshes: AtomicU64,
    /// Set by the validating recursor while the system clock is not yet
    /// trusted (see `dns::resolve::trusted_clock`).
    pub clock_untrusted: AtomicBool,
    /// The Unix time DNSSEC signatures are checked against meanwhile.
    pub validating_as_of: AtomicU64,
    /// Non-cumulative counts per bucket; the last is "above every bound".
    /// Kept here rather than in the crate's `Histogram`, whose every
    /// observation takes a lock.
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    last_answer_ms: AtomicI64,
    last_failure_ms: AtomicI64,
    failures_in_a_row: AtomicU64,
}

/// Whether the upstreams are answering, for the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamHealth {
    pub last_answer_unix_ms: Option<i64>,
    pub last_failure_unix_ms: Option<i64>,
    /// Lookups that failed since the last one answered.
    pub failures_in_a_row: u64,
}

impl UpstreamStats {
    /// Records how long one lookup at the upstreams took.
    pub fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Records whether one lookup at the upstreams failed (SERVFAIL).
    pub fn note_outcome(&self, failed: bool) {
        let now = crate::clock::now_unix_ms();
        if failed {
            self.last_failure_ms.store(now, Relaxed);
            self.failures_in_a_row.fetch_add(1, Relaxed);
        } else {
            self.last_answer_ms.store(now, Relaxed);
            self.failures_in_a_row.store(0, Relaxed);
        }
    }

    pub fn health(&self) -> UpstreamHealth {
        let at = |cell: &AtomicI64| Some(cell.load(Relaxed)).filter(|&ms| ms > 0);
        UpstreamHealth {
            last_answer_unix_ms: at(&self.last_answer_ms),
            last_failure_unix_ms: at(&self.last_failure_ms),
            failures_in_a_row: self.failures_in_a_row.load(Relaxed),
        }
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let names = Arc::new(Names::default());
        let upstream = Arc::new(UpstreamStats::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(names.clone()));
        registry.register_collector(Box::new(upstream.clone()));
        let malformed = Counter::default();
        registry.register(
            "lollipop_malformed_queries",
            "Messages from clients that were not a readable query: answered FORMERR or NOTIMP, or not at all.",
            malformed.clone(),
        );
        let repeated = Counter::default();
        registry.register(
            "lollipop_repeated_answers",
            "Questions asked again over UDP and answered from the bytes of the answer given to them before (counted in lollipop_queries_total too).",
            repeated.clone(),
        );
        registry.register(
            "lollipop_panics",
            "Panics caught in a DNS reader or task: the reader was restarted or the one query dropped, and the rest kept answering.",
            PANICS.clone(),
        );
        let limits = LimitCounters::register(&mut registry);
        let shipping = Arc::new(Shipping::default());
        registry.register_collector(Box::new(shipping.clone()));
        Metrics {
            shipping,
            registry,
            names,
            upstream,
            malformed,
            repeated,
            limits,
        }
    }
}

impl Metrics {
    /// The counters for `policy`'s profiles and categories, creating those
    /// not seen before and reusing the rest.
    pub fn counters_for(&self, policy: &Policy) -> ProfileCounters {
        let profiles = policy.profiles.iter().map(|profile| profile.name.as_str());
        self.names
            .counters(profiles, &block_categories(&policy.lists))
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, lists: &CompiledLists, journal: &JournalStats) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(Scraped::read(lists, journal)));
        let mut out = String::with_capacity(4096);
        let encoded =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
                .and_then(|()| {
                    prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape)
                });
        if encoded.is_err() {
            tracing::warn!("/metrics: a figure could not be encoded; the scrape is cut short");
        }
        out
    }
}

impl Names {
    fn counters<'a>(
        &self,
        profiles: impl Iterator<Item = &'a str>,
        categories: &[String],
    ) -> ProfileCounters {
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let profiles = profiles
            .map(|profile| {
                let queries = names.queries.entry(profile.into()).or_default().clone();
                let blocks = categories
                    .iter()
                    .map(|category| {
                        let key = (profile.to_owned(), category.clone());
                        (
                            category.clone(),
                            names.blocks.entry(key).or_default().clone(),
                        )
                    })
                    .collect();
                ProfileSlot { queries, blocks }
            })
            .collect();
        ProfileCounters { profiles }
    }
}

impl Collector for Names {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut family = encoder.encode_descriptor(
            "lollipop_queries",
            "DNS questions answered, by profile.",
            None,
            MetricType::Counter,
        )?;
        for (profile, count) in &names.queries {
            count.encode(family.encode_family(&[("profile", profile.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "lollipop_blocked",
            "Blocked answers, by profile and category.",
            None,
            MetricType::Counter,
        )?;
        for ((profile, category), count) in &names.blocks {
            let labels = [
                ("profile", profile.as_str()),
                ("category", category.as_str()),
            ];
            count.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Collector for UpstreamStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        counter(
            &mut encoder,
            "lollipop_cache_hits",
            "Questions answered from the response cache.",
            self.cache_hits.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_cache_misses",
            "Questions the response cache could not answer.",
            self.cache_misses.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_upstream_coalesced",
            "Questions that joined a lookup already in flight for the same name.",
            self.coalesced.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_upstream_refused_client_share",
            "Uncached lookups answered SERVFAIL because their client already had its share of upstream lookups in flight.",
            self.share_refused.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_upstream_refused_in_flight",
            "Uncached lookups answered SERVFAIL because max_in_flight upstream lookups were already waiting.",
            self.pool_refused.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_stale_answers",
            "Answers served past their TTL (EDE 3) because the upstreams did not answer in time.",
            self.stale_served.load(Relaxed),
        )?;
        gauge(
            &mut encoder,
            "lollipop_clock_untrusted",
            "1 while the system clock is not yet trusted (not synchronised by NTP, and earlier than the time saved at the last shutdown): DNSSEC signatures are checked as of lollipop_clock_validating_as_of instead.",
            u64::from(self.clock_untrusted.load(Relaxed)),
        )?;
        gauge(
            &mut encoder,
            "lollipop_clock_validating_as_of",
            "While the clock is untrusted, the Unix time DNSSEC signatures are checked against; 0 otherwise.",
            if self.clock_untrusted.load(Relaxed) {
                self.validating_as_of.load(Relaxed)
            } else {
                0
            },
        )?;
        counter(
            &mut encoder,
            "lollipop_failures_cached",
            "Failed lookups kept for a few seconds, so the same question is not asked again at once.",
            self.failures_cached.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_upstream_refreshes",
            "Background lookups: popular answers refreshed before they ran out, and stale answers being refreshed.",
            self.refreshes.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "lollipop_rebinding_dropped",
            "Answers from which private, loopback or link-local addresses for a public name were dropped.",
            self.rebinding_dropped.load(Relaxed),
        )?;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_US
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, count)| (bound as f64 / 1e6, count.load(Relaxed)))
            .collect();
        let above = self.buckets[LATENCY_BUCKETS_US.len()].load(Relaxed);
        let count = buckets.iter().map(|&(_, n)| n).sum::<u64>() + above;
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        encoder
            .encode_descriptor(
                "lollipop_upstream_duration_seconds",
                "Time the upstream resolvers took to answer.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// The figures read at scrape time: the block log's and the lists'.
#[derive(Debug)]
struct Scraped {
    log_written: u64,
    log_dropped_blocked: u64,
    log_dropped_other: u64,
    log_pending: u64,
    log_failing: bool,
    log_healthy: bool,
    log_set_aside: u64,
    domains: u64,
    compiled_age_secs: u64,
    /// List name, category and seconds since its file last changed.
    list_ages: Vec<(String, String, u64)>,
}

impl Scraped {
    fn read(lists: &CompiledLists, journal: &JournalStats) -> Scraped {
        let now = SystemTime::now();
        let manifest = lists.manifest();
        let compiled_age_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(manifest.compiled_at))
            .unwrap_or(0);
        let list_ages = manifest
            .sources
            .iter()
            .filter_map(|source| {
                let age = std::fs::metadata(&source.path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())?;
                Some((source.name.clone(), source.category.clone(), age.as_secs()))
            })
            .collect();
        Scraped {
            log_written: journal.written,
            log_dropped_blocked: journal.blocked_dropped,
            log_dropped_other: journal.dropped.saturating_sub(journal.blocked_dropped),
            log_pending: journal.pending,
            log_failing: journal.failing_since_unix_ms.is_some(),
            log_healthy: !journal.degraded() && journal.failing_since_unix_ms.is_none(),
            log_set_aside: journal.set_aside,
            domains: lists.domain_count(),
            compiled_age_secs,
            list_ages,
        }
    }
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        counter(
            &mut encoder,
            "lollipop_log_written",
            "Events committed to the block log.",
            self.log_written,
        )?;
        let mut family = encoder.encode_descriptor(
            "lollipop_log_dropped",
            "Events the block log lost (queue or memory buffer full), by kind.",
            None,
            MetricType::Counter,
        )?;
        for (kind, count) in [
            ("blocked", self.log_dropped_blocked),
            ("other", self.log_dropped_other),
        ] {
            ConstCounter::new(count).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        gauge(
            &mut encoder,
            "lollipop_log_pending",
            "Events received by the block log but not yet committed.",
            self.log_pending,
        )?;
        gauge(
            &mut encoder,
            "lollipop_log_failing",
            "1 while the block log cannot write to its database.",
            u64::from(self.log_failing),
        )?;
        gauge(
            &mut encoder,
            "lollipop_block_log_healthy",
            "1 while blocks are being saved to a sound block log; 0 while it is damaged and could not be set aside, or cannot be written (lost blocks are counted in lollipop_log_dropped).",
            u64::from(self.log_healthy),
        )?;
        counter(
            &mut encoder,
            "lollipop_block_log_set_aside",
            "Damaged block log files moved aside (and a fresh log started) since start.",
            self.log_set_aside,
        )?;
        gauge(
            &mut encoder,
            "lollipop_lists_domains",
            "Domains in the compiled lists in force.",
            self.domains,
        )?;
        gauge(
            &mut encoder,
            "lollipop_lists_compiled_age_seconds",
            "Seconds since the lists in force were compiled.",
            self.compiled_age_secs,
        )?;
        let mut family = encoder.encode_descriptor(
            "lollipop_list_age_seconds",
            "Seconds since each list's file last changed (its last download).",
            None,
            MetricType::Gauge,
        )?;
        for (list, category, age) in &self.list_ages {
            let labels = [("list", list.as_str()), ("category", category.as_str())];
            ConstGauge::new(*age).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The categories a block can be counted under: every list category, and
/// the two kinds of block that come from no list.
fn block_categories(lists: &CompiledLists) -> Vec<String> {
    let mut categories: Vec<String> = lists.categories().to_vec();
    categories.push(SCHOOL_ENTRY.into());
    categories.push(WALLED_GARDEN.into());
    categories.sort();
    categories.dedup();
    categories
}

/// One counter without labels; `name` without the `_total` the crate adds.
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One gauge without labels.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `collector` writes in the text format.
    fn text(collector: impl Collector) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).expect("encoded");
        out
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        for us in [100, 700, 700, 3_000_000] {
            metrics.upstream.observe(Duration::from_micros(us));
        }
        let out = text(metrics.upstream.clone());
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"0.00025\"} 1\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"0.001\"} 3\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"2.5\"} 3\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_count 4\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let names = Names::default();
        names.counters(["a\"b\\c\nd"].into_iter(), &[]);
        let out = text(names);
        assert!(
            out.contains("lollipop_queries_total{profile=\"a\\\"b\\\\c\\nd\"} 0\n"),
            "{out}"
        );
    }

    #[test]
    fn a_reload_keeps_each_profiles_counts() {
        let names = Arc::new(Names::default());
        let categories = [String::from("gambling"), SCHOOL_ENTRY.into()];
        let before = names.counters(["ks2", "staff"].into_iter(), &categories);
        before.count_query(0);
        before.count_block(0, "gambling");
        before.count_block(1, "no-such-category");
        // The reloaded settings drop staff and put ks2 second.
        let after = names.counters(["nursery", "ks2"].into_iter(), &categories);
        after.count_query(1);
        after.count_block(1, "gambling");
        let out = text(names);
        assert!(
            out.contains("lollipop_queries_total{profile=\"ks2\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("lollipop_queries_total{profile=\"nursery\"} 0\n"));
        assert!(out.contains("lollipop_queries_total{profile=\"staff\"} 0\n"));
        assert!(out.contains("lollipop_blocked_total{profile=\"ks2\",category=\"gambling\"} 2\n"));
        assert!(
            out.contains("lollipop_blocked_total{profile=\"staff\",category=\"school-entry\"} 1\n")
        );
    }
}

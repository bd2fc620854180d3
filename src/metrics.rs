//! The resolver's counters for `/metrics`: plain atomics bumped on the hot
//! path (no locks, no allocation), rendered in the Prometheus text format
//! only when someone scrapes.
//!
//! Counters are found by name (profile, category) once, when settings are put
//! in force, so a reload keeps every count and a query only adds to an atomic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::journal::JournalStats;
use crate::lists::store::CompiledLists;
use crate::policy::Policy;

/// The category a block is counted under when no list category applies.
pub const SCHOOL_ENTRY: &str = "school-entry";
pub const WALLED_GARDEN: &str = "walled-garden";

/// Upper bounds (microseconds) of the upstream latency histogram's buckets.
const LATENCY_BUCKETS_US: [u64; 13] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// Every counter of one resolver process.
#[derive(Default)]
pub struct Metrics {
    names: Mutex<Names>,
    pub upstream: Arc<UpstreamStats>,
}

/// Counters by name, kept across reloads; touched only when settings change
/// and when scraped.
#[derive(Default)]
struct Names {
    queries: BTreeMap<String, Arc<AtomicU64>>,
    blocks: BTreeMap<(String, String), Arc<AtomicU64>>,
}

/// The counters of the profiles in force, indexed like the policy's
/// profiles: what the hot path adds to.
#[derive(Default)]
pub struct ProfileCounters {
    profiles: Vec<ProfileSlot>,
}

struct ProfileSlot {
    queries: Arc<AtomicU64>,
    /// A handful of categories: a linear scan beats hashing here.
    blocks: Vec<(String, Arc<AtomicU64>)>,
}

impl ProfileCounters {
    /// One question answered for `profile` (an index of the policy's profiles).
    #[inline]
    pub fn count_query(&self, profile: usize) {
        if let Some(slot) = self.profiles.get(profile) {
            slot.queries.fetch_add(1, Relaxed);
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
            counter.fetch_add(1, Relaxed);
        }
    }
}

/// The response cache and the upstream lookups.
#[derive(Default)]
pub struct UpstreamStats {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Lookups that waited for one already on its way for the same question.
    pub coalesced: AtomicU64,
    /// Non-cumulative counts per bucket; the last is "above every bound".
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
        let now = crate::admin::now_ms();
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

impl Metrics {
    /// The counters for `policy`'s profiles and categories, creating those
    /// not seen before and reusing the rest.
    pub fn counters_for(&self, policy: &Policy) -> ProfileCounters {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        let categories = block_categories(&policy.lists);
        let profiles = policy
            .profiles
            .iter()
            .map(|profile| {
                let queries = names.queries.entry(profile.name.clone()).or_default();
                let queries = queries.clone();
                let blocks = categories
                    .iter()
                    .map(|category| {
                        let key = (profile.name.clone(), category.clone());
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

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, lists: &CompiledLists, journal: &JournalStats) -> String {
        let mut out = String::with_capacity(4096);
        {
            let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
            family(
                &mut out,
                "lollipop_queries_total",
                "counter",
                "DNS questions answered, by profile.",
            );
            for (profile, count) in &names.queries {
                let _ = writeln!(
                    out,
                    "lollipop_queries_total{{profile=\"{}\"}} {}",
                    escape(profile),
                    count.load(Relaxed)
                );
            }
            family(
                &mut out,
                "lollipop_blocked_total",
                "counter",
                "Blocked answers, by profile and category.",
            );
            for ((profile, category), count) in &names.blocks {
                let _ = writeln!(
                    out,
                    "lollipop_blocked_total{{profile=\"{}\",category=\"{}\"}} {}",
                    escape(profile),
                    escape(category),
                    count.load(Relaxed)
                );
            }
        }
        let upstream = &self.upstream;
        counter(
            &mut out,
            "lollipop_cache_hits_total",
            "Questions answered from the response cache.",
            upstream.cache_hits.load(Relaxed),
        );
        counter(
            &mut out,
            "lollipop_cache_misses_total",
            "Questions the response cache could not answer.",
            upstream.cache_misses.load(Relaxed),
        );
        counter(
            &mut out,
            "lollipop_upstream_coalesced_total",
            "Questions that joined a lookup already in flight for the same name.",
            upstream.coalesced.load(Relaxed),
        );
        self.render_latency(&mut out);
        render_journal(&mut out, journal);
        render_lists(&mut out, lists);
        out
    }

    fn render_latency(&self, out: &mut String) {
        let name = "lollipop_upstream_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time the upstream resolvers took to answer.",
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_US.iter().zip(&self.upstream.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += self.upstream.buckets[LATENCY_BUCKETS_US.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.upstream.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
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

fn render_journal(out: &mut String, journal: &JournalStats) {
    counter(
        out,
        "lollipop_log_written_total",
        "Events committed to the block log.",
        journal.written,
    );
    family(
        out,
        "lollipop_log_dropped_total",
        "counter",
        "Events the block log lost (queue or memory buffer full), by kind.",
    );
    let _ = writeln!(
        out,
        "lollipop_log_dropped_total{{kind=\"blocked\"}} {}",
        journal.blocked_dropped
    );
    let _ = writeln!(
        out,
        "lollipop_log_dropped_total{{kind=\"other\"}} {}",
        journal.dropped.saturating_sub(journal.blocked_dropped)
    );
    gauge(
        out,
        "lollipop_log_pending",
        "Events received by the block log but not yet committed.",
        journal.pending as f64,
    );
    gauge(
        out,
        "lollipop_log_failing",
        "1 while the block log cannot write to its database.",
        f64::from(u8::from(journal.failing_since_unix_ms.is_some())),
    );
}

fn render_lists(out: &mut String, lists: &CompiledLists) {
    let now = SystemTime::now();
    let manifest = lists.manifest();
    gauge(
        out,
        "lollipop_lists_domains",
        "Domains in the compiled lists in force.",
        lists.domain_count() as f64,
    );
    let compiled_age = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(manifest.compiled_at))
        .unwrap_or(0);
    gauge(
        out,
        "lollipop_lists_compiled_age_seconds",
        "Seconds since the lists in force were compiled.",
        compiled_age as f64,
    );
    family(
        out,
        "lollipop_list_age_seconds",
        "gauge",
        "Seconds since each list's file last changed (its last download).",
    );
    for source in &manifest.sources {
        let Some(age) = std::fs::metadata(&source.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
        else {
            continue;
        };
        let _ = writeln!(
            out,
            "lollipop_list_age_seconds{{list=\"{}\",category=\"{}\"}} {}",
            escape(&source.name),
            escape(&source.category),
            age.as_secs()
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        for us in [100, 700, 700, 3_000_000] {
            metrics.upstream.observe(Duration::from_micros(us));
        }
        let mut out = String::new();
        metrics.render_latency(&mut out);
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"0.00025\"} 1\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"0.001\"} 3\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"2.5\"} 3\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(out.contains("lollipop_upstream_duration_seconds_count 4\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

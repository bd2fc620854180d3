//! The request pipeline: for one question from one client, every stage in
//! order — identify the client, special names, the policy decision, safe
//! search, the upstream, and the CNAME re-check — in one function.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_server::proto::rr::{Name, RData, RecordType};

use crate::alerts::feed::AlertFeed;
use crate::config::{BlockingConfig, CircumventionConfig};
use crate::journal::{BlockEvent, Journal, LookupTally, QueryEvent};
use crate::metrics::{Metrics, ProfileCounters, SCHOOL_ENTRY, WALLED_GARDEN};
use crate::name::ReversedName;
use crate::policy::Policy;
use crate::policy::clients::ProfileId;
use crate::policy::decision::{Decision, Hit, HitSource};
use crate::policy::overrides::{Asker, OverrideSet};
use crate::policy::special::{SpecialAnswer, special_answer};

use super::answer::{Answer, EDE_BLOCKED, EDE_FILTERED, ExtendedError};
use super::upstream::Upstream;

/// Who asked, as far as the listener can tell.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub address: IpAddr,
    /// Which `[[listen]]` address the query arrived on.
    pub listener: Option<usize>,
}

/// Everything a query is answered with; replaced whole on a reload, so a
/// query in flight finishes on the settings it started with.
pub struct Settings {
    pub policy: Policy,
    pub upstream: Arc<Upstream>,
    pub blocking: BlockingConfig,
    pub circumvention: CircumventionConfig,
    /// The `[[listen]]` addresses, for the log's VLAN column.
    pub listeners: Vec<String>,
    /// The `/metrics` counters of these settings' profiles.
    pub counters: ProfileCounters,
    /// The hourly figures' counts of allowed lookups, by profile.
    pub lookups: LookupTally,
}

pub struct Pipeline {
    settings: ArcSwap<Settings>,
    /// Staff overrides in force; replaced whole when one is granted or ends.
    overrides: ArcSwap<OverrideSet>,
    journal: Journal,
    alerts: Option<AlertFeed>,
    full_log: bool,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(
        mut settings: Settings,
        journal: Journal,
        alerts: Option<AlertFeed>,
        full_log: bool,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        settings.counters = metrics.counters_for(&settings.policy);
        settings.lookups = lookup_tally(&journal, &settings.policy);
        Pipeline {
            settings: ArcSwap::from_pointee(settings),
            overrides: ArcSwap::from_pointee(OverrideSet::default()),
            journal,
            alerts,
            full_log,
            metrics,
        }
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// `/metrics` in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let settings = self.settings.load();
        self.metrics
            .render(&settings.policy.lists, &self.journal.stats())
    }

    /// The settings now in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// The staff overrides in force.
    pub fn overrides(&self) -> Arc<OverrideSet> {
        self.overrides.load_full()
    }

    /// Puts a new set of staff overrides in force.
    pub fn set_overrides(&self, overrides: OverrideSet) {
        self.overrides.store(Arc::new(overrides));
    }

    /// Puts new settings in force; queries in flight finish on the old ones.
    pub fn swap(&self, mut settings: Settings) {
        settings.counters = self.metrics.counters_for(&settings.policy);
        settings.lookups = lookup_tally(&self.journal, &settings.policy);
        self.settings.store(Arc::new(settings));
    }

    /// The answer to one question from one client: who is asking, what they
    /// get, and the record of it.
    pub async fn answer(&self, name: &Name, record_type: RecordType, client: Client) -> Answer {
        let settings = self.settings.load_full();
        let profile = settings.policy.profile_for(client.address, client.listener);
        let overrides = self.overrides.load();
        let answer = resolve(&settings, &overrides, client, profile, name, record_type).await;
        settings.counters.count_query(profile);
        self.record(&settings, profile, name, record_type, client, &answer);
        answer
    }

    /// Hands the lookup to the block log's writer; never waits.
    fn record(
        &self,
        settings: &Settings,
        profile: ProfileId,
        name: &Name,
        record_type: RecordType,
        client: Client,
        answer: &Answer,
    ) {
        // An allowed lookup is only counted, unless the full log keeps it.
        if answer.explanation.is_none() && !self.full_log {
            settings.lookups.count(profile);
            return;
        }
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let profile_name = &settings.policy.profile(profile).name;
        let domain = || {
            let mut text = name.to_ascii();
            if text.len() > 1 && text.ends_with('.') {
                text.pop();
            }
            text
        };
        if let Some(explanation) = &answer.explanation {
            let category = match (&explanation.category, explanation.walled_garden) {
                (_, true) => WALLED_GARDEN,
                (Some(category), false) => category.as_str(),
                (None, false) => SCHOOL_ENTRY,
            };
            settings.counters.count_block(profile, category);
            let event = BlockEvent {
                at_unix_ms,
                client: client.address,
                listener: client
                    .listener
                    .and_then(|i| settings.listeners.get(i).cloned()),
                profile: profile_name.clone(),
                name: domain(),
                query_type: record_type.to_string(),
                category: explanation.category.clone(),
                list: explanation.list.clone(),
                rule: explanation.rule.clone(),
                action: if explanation.walled_garden {
                    "walled-garden".into()
                } else {
                    settings.blocking.answer.to_string()
                },
                locked: explanation.locked,
            };
            if let Some(alerts) = &self.alerts {
                alerts.offer(&event);
            }
            // The journal counts the block as a lookup in the hourly figures.
            self.journal.record_block(event);
            return;
        }
        // Only the full query log (opt-in) keeps names of allowed lookups.
        self.journal.record_query(QueryEvent {
            at_unix_ms,
            client: client.address,
            profile: profile_name.clone(),
            name: domain(),
            query_type: record_type.to_string(),
            blocked: false,
            category: None,
        });
    }

    /// The block log this pipeline writes to.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

fn lookup_tally(journal: &Journal, policy: &Policy) -> LookupTally {
    journal.lookup_tally(policy.profiles.iter().map(|profile| profile.name.as_str()))
}

/// The pipeline's stages for one question, in order: special names, the
/// policy decision and staff overrides, safe search, the upstream, and the
/// CNAME re-check.
async fn resolve(
    settings: &Settings,
    overrides: &OverrideSet,
    client: Client,
    profile: ProfileId,
    name: &Name,
    record_type: RecordType,
) -> Answer {
    let policy = &settings.policy;
    let Some(reversed) = ReversedName::from_labels(name.iter()) else {
        // Longer than a DNS name may be: nothing upstream could answer it.
        return Answer::nxdomain(None);
    };

    if let Some(special) = special_answer(&reversed, &settings.circumvention) {
        let extended_error = |text: &str| {
            Some(ExtendedError {
                code: EDE_FILTERED,
                text: format!("Lollipop: {text}"),
            })
        };
        return match special {
            SpecialAnswer::NxDomain(text) => Answer::nxdomain(extended_error(text)),
            SpecialAnswer::NoData(text) => Answer::nodata(extended_error(text)),
        };
    }

    let decision = policy.decide(profile, &reversed);
    let released = decision.is_blocked()
        && released(settings, overrides, client, &reversed, &decision).is_some();
    if decision.is_blocked() && !released {
        return blocked(settings, profile, &reversed, &decision, name, record_type);
    }

    let safe_search = policy.profile(profile).safe_search;
    let mut domain = [0u8; 256];
    if let Some(rewrite) = reversed
        .domain_in(&mut domain)
        .and_then(|domain| policy.safe_search.rewrite(domain, safe_search))
        && let Ok(target) = Name::from_ascii(rewrite.target)
    {
        let resolved = settings.upstream.resolve(&target, record_type).await;
        return Answer::rewritten(name, &target, settings.blocking.ttl_secs, resolved);
    }

    let upstream = settings.upstream.resolve(name, record_type).await;

    // CNAME cloaking: a tracker or adult site hidden behind an allowed
    // name is still blocked. The walled garden is not applied to aliases
    // (CDN names would never be on it); explicit blocks are.
    for record in &upstream.answers {
        let RData::CNAME(target) = &record.data else {
            continue;
        };
        let Some(alias) = ReversedName::from_labels(target.0.iter()) else {
            continue;
        };
        // An override that released the name also covers where it points,
        // except a locked category.
        let decision = policy.decide(profile, &alias);
        if matches!(decision, Decision::Locked { .. })
            || (matches!(decision, Decision::Blocked { .. }) && !released)
        {
            return blocked(settings, profile, &alias, &decision, name, record_type);
        }
    }
    Answer::from_upstream(upstream)
}

/// The staff override that releases `name`, blocked by `decision`, for
/// `client`, if one does. Locked categories are never released.
pub(super) fn released(
    settings: &Settings,
    overrides: &OverrideSet,
    client: Client,
    name: &ReversedName,
    decision: &Decision,
) -> Option<i64> {
    if overrides.is_empty() {
        return None;
    }
    let category = match decision {
        Decision::Blocked {
            by:
                Hit {
                    source: HitSource::List { category, .. },
                    ..
                },
        } => settings
            .policy
            .lists
            .categories()
            .get(*category as usize)
            .map(String::as_str),
        Decision::Blocked { .. } | Decision::NotInWalledGarden => None,
        Decision::Locked { .. } | Decision::Allowed { .. } => return None,
    };
    let asker = Asker {
        address: client.address,
        listener: client
            .listener
            .and_then(|i| settings.listeners.get(i))
            .map(String::as_str),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    overrides.releases(now_ms, asker, name, category)
}

/// The blocked answer for `name`, explaining `decision` on `matched_name`
/// (the name itself, or the alias that gave it away).
fn blocked(
    settings: &Settings,
    profile: ProfileId,
    matched_name: &ReversedName,
    decision: &Decision,
    name: &Name,
    record_type: RecordType,
) -> Answer {
    let explanation = settings.policy.explain(profile, matched_name, decision);
    let code = if explanation.locked {
        EDE_BLOCKED
    } else {
        EDE_FILTERED
    };
    let extended_error = ExtendedError {
        code,
        text: explanation.ede_text(),
    };
    Answer::blocked(
        name,
        record_type,
        &settings.blocking,
        extended_error,
        explanation,
    )
}

//! Rules of time: which of each profile's `time_rules` are in force at an
//! instant ([`TimeState`]), the profile settings they make
//! ([`effective_config`]), and the words every view of a decision uses
//! for them ("at lunch (12:15-13:15)", "allowed 12:15-13:15 at lunch").
//!
//! The query path never reads a clock for this: the service recomputes the
//! state when a period starts or ends (a timer) and builds a new policy
//! from it, swapped in as a reload is, so a decision stays one fst walk
//! over the profile's masks. Until the clock is trusted (a Pi that booted
//! in 1970), every profile gets its strictest rules: every block of every
//! rule, no allow, no move to another profile.

use std::sync::Arc;

use crate::calendar::{self, Audience as CalendarAudience, Calendar, DayKind, hhmm};
use crate::config::calendar::{OUT_OF_TERM, TimeRuleConfig};
use crate::config::{Audience, Config};
use crate::lists::store::CompiledLists;

/// One rule in force for one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInForce {
    /// Its index in the profile's `time_rules`.
    pub index: usize,
    /// "at lunch (12:15-13:15)", "out of term".
    pub label: String,
    /// When its period ends (None: out of term, or the strictest rules).
    pub until: Option<i64>,
}

/// What the calendar puts in force for one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTime {
    pub name: String,
    /// Whether the profile's people are in school today.
    pub in_term: bool,
    pub rules: Vec<RuleInForce>,
    /// The profile whose rules this one's devices get now, and the label of
    /// the rule that says so.
    pub uses_profile: Option<(String, String)>,
}

/// The rules of time in force at one instant, for every profile.
#[derive(Debug, Clone)]
pub struct TimeState {
    /// The instant it was computed for (Unix ms).
    pub at: i64,
    /// Whether the clock could be trusted then; if not, the strictest rules.
    pub trusted: bool,
    pub calendar: Option<Arc<Calendar>>,
    /// Per profile, in the policy's order (the config's, by name).
    pub profiles: Vec<ProfileTime>,
    /// When it must be computed again (a period's start or end, midnight).
    pub next_change: Option<i64>,
}

impl Default for TimeState {
    /// No calendar, a trusted clock: nothing changes with time.
    fn default() -> TimeState {
        TimeState {
            at: 0,
            trusted: true,
            calendar: None,
            profiles: Vec::new(),
            next_change: None,
        }
    }
}

/// Whether the clock is trusted, and per profile the indices of its rules
/// in force and the profile it moved to.
pub type TimeKey = (bool, Vec<(Vec<usize>, Option<String>)>);

/// Says this when the clock is not trusted.
pub const STRICTEST: &str = "the clock is not set yet: strictest rules";

fn audience(audience: Audience) -> CalendarAudience {
    match audience {
        Audience::Staff => CalendarAudience::Staff,
        Audience::Children => CalendarAudience::Children,
    }
}

impl TimeState {
    /// What `config`'s calendar puts in force at `at`; `trusted`: whether
    /// the clock can be believed.
    pub fn compute(config: &Config, at: i64, trusted: bool) -> TimeState {
        let Some(calendar) = config.school_calendar.clone() else {
            return TimeState {
                at,
                trusted,
                ..TimeState::default()
            };
        };
        let profiles = config
            .profiles
            .iter()
            .map(|(name, profile)| {
                let moment = calendar.at(at, audience(profile.audience));
                let mut time = ProfileTime {
                    name: name.clone(),
                    in_term: trusted && moment.in_term,
                    rules: Vec::new(),
                    uses_profile: None,
                };
                for (index, rule) in profile.time_rules.iter().enumerate() {
                    if !trusted {
                        // Fail closed: a rule's blocks hold, its allows wait.
                        if !rule.block_categories.is_empty() || !rule.block_services.is_empty() {
                            time.rules.push(RuleInForce {
                                index,
                                label: STRICTEST.into(),
                                until: None,
                            });
                        }
                        continue;
                    }
                    let when = rule.when.get_ref();
                    let found = if when == OUT_OF_TERM {
                        (!moment.in_term).then(|| RuleInForce {
                            index,
                            label: "out of term".into(),
                            until: None,
                        })
                    } else {
                        moment
                            .periods
                            .iter()
                            .find(|active| calendar.periods[active.index].name == *when)
                            .map(|active| {
                                let period = &calendar.periods[active.index];
                                RuleInForce {
                                    index,
                                    label: format!(
                                        "at {} ({})",
                                        period.label.to_lowercase(),
                                        period.times()
                                    ),
                                    until: Some(active.ends_at),
                                }
                            })
                    };
                    if let Some(found) = found {
                        if let Some(other) = &rule.use_profile
                            && time.uses_profile.is_none()
                        {
                            time.uses_profile =
                                Some((other.get_ref().clone(), found.label.clone()));
                        }
                        time.rules.push(found);
                    }
                }
                time
            })
            .collect();
        TimeState {
            at,
            trusted,
            next_change: Some(calendar.next_change(at)),
            calendar: Some(calendar),
            profiles,
        }
    }

    /// What decides the policy: equal keys build equal policies, so the
    /// timer swaps only when this changes.
    pub fn key(&self) -> TimeKey {
        (
            self.trusted,
            self.profiles
                .iter()
                .map(|p| {
                    (
                        p.rules.iter().map(|r| r.index).collect(),
                        p.uses_profile.as_ref().map(|(name, _)| name.clone()),
                    )
                })
                .collect(),
        )
    }

    pub fn profile(&self, name: &str) -> Option<&ProfileTime> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The periods happening now for pupils (staff's on an INSET day), for
    /// the dashboard: (label, ends at).
    pub fn periods_now(&self) -> Vec<(String, i64)> {
        let Some(calendar) = &self.calendar else {
            return Vec::new();
        };
        let mut moment = calendar.at(self.at, CalendarAudience::Children);
        if moment.periods.is_empty() && moment.day == DayKind::Inset {
            moment = calendar.at(self.at, CalendarAudience::Staff);
        }
        moment
            .periods
            .iter()
            .map(|p| (calendar.periods[p.index].label.clone(), p.ends_at))
            .collect()
    }

    /// "term day", "INSET day ...", "out of term: Saturday".
    pub fn day_words(&self) -> Option<String> {
        let calendar = self.calendar.as_ref()?;
        Some(calendar.day_kind(calendar.day_of(self.at)).describe())
    }
}

/// The config with the rules of `state` applied to its profiles: a moved
/// profile takes the other profile's filtering, then each rule's allows,
/// then its blocks (so a block in force beats an allow in force).
pub fn effective_config(config: &Config, state: &TimeState) -> Config {
    if state.profiles.iter().all(|p| p.rules.is_empty()) {
        return config.clone();
    }
    let mut effective = config.clone();
    for time in &state.profiles {
        let Some(original) = config.profiles.get(&time.name) else {
            continue;
        };
        let mut profile = original.clone();
        if let Some(other) = time
            .uses_profile
            .as_ref()
            .and_then(|(other, _)| config.profiles.get(other))
        {
            profile.mode = other.mode;
            profile.block_categories = other.block_categories.clone();
            profile.allow_categories = other.allow_categories.clone();
            profile.block_services = other.block_services.clone();
            profile.allow_services = other.allow_services.clone();
            profile.allow_domains = other.allow_domains.clone();
            profile.deny_domains = other.deny_domains.clone();
            profile.safe_search = other.safe_search;
            profile.youtube = other.youtube;
            profile.name_rules = other.name_rules;
        }
        let rules: Vec<&TimeRuleConfig> = time
            .rules
            .iter()
            .filter_map(|r| original.time_rules.get(r.index))
            .collect();
        let same =
            |a: &toml::Spanned<String>, b: &toml::Spanned<String>| a.get_ref() == b.get_ref();
        for rule in rules.iter().filter(|_| state.trusted) {
            for add in &rule.allow_categories {
                profile.block_categories.retain(|c| !same(c, add));
                profile.allow_categories.push(add.clone());
            }
            for add in &rule.allow_services {
                profile.block_services.retain(|s| !same(s, add));
                profile.allow_services.push(add.clone());
            }
        }
        for rule in &rules {
            for add in &rule.block_categories {
                profile.allow_categories.retain(|c| !same(c, add));
                profile.block_categories.push(add.clone());
            }
            for add in &rule.block_services {
                profile.allow_services.retain(|s| !same(s, add));
                profile.block_services.push(add.clone());
            }
        }
        effective.profiles.insert(time.name.clone(), profile);
    }
    effective
}

/// One of a profile's time rules as the policy keeps it: the category
/// bits it blocks and allows, when it holds, and whether it holds now.
#[derive(Debug, Clone, Default)]
pub struct RuleMasks {
    pub blocks: u64,
    pub allows: u64,
    /// "12:15-13:15 at lunch", "out of term".
    pub when: String,
    /// The label it is in force under now; None when it is not.
    pub now: Option<String>,
    /// An explanation's words for it, built once: "blocked {now}" and
    /// "allowed {now}" while it is in force, "blocked {when}" and
    /// "allowed {when}" for the other times.
    pub blocked_now: Option<Arc<str>>,
    pub allowed_now: Option<Arc<str>>,
    pub blocked_when: Arc<str>,
    pub allowed_when: Arc<str>,
}

/// Per profile (the policy's order), every time rule's masks.
pub fn rule_masks(
    config: &Config,
    state: &TimeState,
    lists: &CompiledLists,
) -> Vec<Vec<RuleMasks>> {
    let mask = |names: &[toml::Spanned<String>], services: bool| {
        names
            .iter()
            .filter_map(|name| {
                if services {
                    lists.category_bit(&crate::config::catalogue::service_category(name.get_ref()))
                } else {
                    lists.category_bit(name.get_ref())
                }
            })
            .fold(0u64, |m, bit| m | (1u64 << bit))
    };
    config
        .profiles
        .iter()
        .map(|(name, profile)| {
            let time = state.profile(name);
            profile
                .time_rules
                .iter()
                .enumerate()
                .map(|(index, rule)| {
                    let when = when_words(state.calendar.as_deref(), rule);
                    let now = time
                        .and_then(|t| t.rules.iter().find(|r| r.index == index))
                        .map(|r| r.label.clone());
                    let words = |verb: &str, what: &str| Arc::from(format!("{verb} {what}"));
                    RuleMasks {
                        blocks: mask(&rule.block_categories, false)
                            | mask(&rule.block_services, true),
                        allows: mask(&rule.allow_categories, false)
                            | mask(&rule.allow_services, true),
                        blocked_now: now.as_deref().map(|now| words("blocked", now)),
                        allowed_now: now.as_deref().map(|now| words("allowed", now)),
                        blocked_when: words("blocked", &when),
                        allowed_when: words("allowed", &when),
                        when,
                        now,
                    }
                })
                .collect()
        })
        .collect()
}

/// When a rule holds, for Check: "12:15-13:15 at lunch", "out of term".
fn when_words(calendar: Option<&Calendar>, rule: &TimeRuleConfig) -> String {
    let when = rule.when.get_ref();
    if when == OUT_OF_TERM {
        return "out of term".into();
    }
    match calendar.and_then(|c| c.periods.iter().find(|p| p.name == *when)) {
        Some(period) => {
            let days = if period.school { " on school days" } else { "" };
            format!(
                "{}-{} at {}{days}",
                hhmm(period.start),
                hhmm(period.end),
                period.label.to_lowercase()
            )
        }
        None => format!("in the period '{when}'"),
    }
}

/// "until 13:15" (local time) for an instant.
pub fn until_words(calendar: &Calendar, at: i64) -> String {
    let local = at + i64::from(calendar.time_zone.offset_seconds(at)) * 1000;
    let minutes = local.rem_euclid(86_400_000) / 60_000;
    format!("until {}", hhmm(u32::try_from(minutes).unwrap_or(0)))
}

/// The local date, for the dashboard's calendar line.
pub fn date_words(calendar: &Calendar, at: i64) -> String {
    calendar::date_words(calendar.day_of(at))
}

#[cfg(test)]
mod tests;

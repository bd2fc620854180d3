//! The explanation of a decision: which profile, category, list, rule
//! and rule of time decided, in words a technician can act on, for
//! `lollipop check`, Check on the page, a blocked answer's Extended DNS
//! Error and the block log. The words that depend only on the policy (its
//! profiles, categories and lists, and the EDE texts made of them) are
//! built once per policy in [`ExplanationTexts`] and shared, so a blocked
//! answer copies only what is its own: the rule that matched its name.

use std::fmt;
use std::sync::Arc;

use crate::lists::store::CompiledLists;
use crate::name::ReversedName;

use super::Policy;
use super::clients::ProfileId;
use super::decision::{Decision, Hit, HitSource, Profile};
use super::name_rules::NameRules;
use super::time_rules;

/// The words of every explanation that depend only on the policy, built
/// when it is and shared by every answer it gives.
#[derive(Debug, Default)]
pub struct ExplanationTexts {
    /// Per profile, in the policy's order.
    profiles: Vec<ProfileTexts>,
    /// The lists' categories, by bit.
    categories: Vec<Arc<str>>,
    /// The name rules' categories, by index.
    rule_categories: Vec<Arc<str>>,
    /// The lists' sources' names, by index.
    sources: Vec<Arc<str>>,
    /// The block log's list column for a name rule's hit.
    name_rules_list: Arc<str>,
}

#[derive(Debug)]
struct ProfileTexts {
    name: Arc<str>,
    /// The list column of a hit on the profile's own allow or deny domains.
    allow_domains: Arc<str>,
    deny_domains: Arc<str>,
    /// The EDE texts of a name not in the walled garden, and of one the
    /// school blocked itself.
    walled_garden: Arc<str>,
    by_school: Arc<str>,
    /// The EDE text of a hit in each list category, by bit.
    list_blocked: Vec<Arc<str>>,
    /// The EDE text of each name-rule category, before the rule's words.
    rule_blocked: Vec<Arc<str>>,
}

/// "Lollipop: category {category} blocked for profile {profile}".
fn category_blocked(category: &str, profile: &str) -> String {
    format!("Lollipop: category {category} blocked for profile {profile}")
}

impl ExplanationTexts {
    pub fn new(profiles: &[Profile], lists: &CompiledLists, name_rules: &NameRules) -> Self {
        let shared = |names: &[String]| names.iter().map(|name| Arc::from(name.as_str())).collect();
        let categories: Vec<Arc<str>> = shared(lists.categories());
        let rule_categories: Vec<Arc<str>> = shared(name_rules.categories());
        let profiles = profiles
            .iter()
            .map(|profile| {
                let name = profile.name.as_str();
                let blocked = |categories: &[Arc<str>]| {
                    categories
                        .iter()
                        .map(|category| Arc::from(category_blocked(category, name)))
                        .collect()
                };
                ProfileTexts {
                    name: Arc::from(name),
                    allow_domains: format!("profiles.{name}.allow_domains").into(),
                    deny_domains: format!("profiles.{name}.deny_domains").into(),
                    walled_garden: format!("Lollipop: not on the approved list for profile {name}")
                        .into(),
                    by_school: format!("Lollipop: blocked by the school for profile {name}").into(),
                    list_blocked: blocked(&categories),
                    rule_blocked: blocked(&rule_categories),
                }
            })
            .collect();
        ExplanationTexts {
            profiles,
            categories,
            rule_categories,
            sources: lists
                .sources()
                .iter()
                .map(|source| Arc::from(source.name.as_str()))
                .collect(),
            name_rules_list: Arc::from(crate::alerts::NAME_RULES_LIST),
        }
    }
}

impl Policy {
    /// Why `decision` was taken, in words a technician can act on.
    pub fn explain(
        &self,
        profile: ProfileId,
        name: &ReversedName,
        decision: &Decision,
    ) -> Explanation {
        let texts = &self.texts;
        let own = &texts.profiles[profile];
        let category_of = |category: usize| {
            texts.categories.get(category).cloned().unwrap_or_else(|| {
                Arc::from(
                    self.lists
                        .categories()
                        .get(category)
                        .map_or("", String::as_str),
                )
            })
        };
        let rule_category_of = |category: u16| {
            texts
                .rule_categories
                .get(usize::from(category))
                .cloned()
                .unwrap_or_else(|| Arc::from(self.name_rules.category_name(category)))
        };
        // What a hit says, and the EDE text (before any rule's words) of
        // its category for this profile.
        let describe = |hit: &Hit| -> (Said, Option<Arc<str>>, Option<String>) {
            let rule = name.suffix_domain(hit.key_len);
            match hit.source {
                HitSource::List {
                    combination,
                    category,
                } => {
                    let category = category as usize;
                    let category_name = category_of(category);
                    let source = self
                        .lists
                        .combination_sources(combination)
                        .iter()
                        .map(|&source| (source, self.lists.source(source)))
                        .find(|(_, source)| *source.category == *category_name);
                    // A licensed feed's entries are never shown, only its hits.
                    let rule = match source {
                        Some((_, source)) if source.hidden => None,
                        _ => Some(rule),
                    };
                    let list = source.map(|(index, source)| {
                        texts
                            .sources
                            .get(usize::from(index))
                            .cloned()
                            .unwrap_or_else(|| Arc::from(source.name.as_str()))
                    });
                    let ede = own
                        .list_blocked
                        .get(category)
                        .cloned()
                        .unwrap_or_else(|| category_blocked(&category_name, &own.name).into());
                    (Said::Category(category_name, ede), list, rule)
                }
                HitSource::ProfileAllow => {
                    (Said::School, Some(own.allow_domains.clone()), Some(rule))
                }
                HitSource::ProfileDeny => {
                    (Said::School, Some(own.deny_domains.clone()), Some(rule))
                }
                HitSource::NameRule { category, term } => {
                    let category_name = rule_category_of(category);
                    let ede = own
                        .rule_blocked
                        .get(usize::from(category))
                        .cloned()
                        .unwrap_or_else(|| category_blocked(&category_name, &own.name).into());
                    (
                        Said::Category(category_name, ede),
                        Some(texts.name_rules_list.clone()),
                        Some(format!("name rule: '{}'", self.name_rules.term(term))),
                    )
                }
            }
        };
        let (blocked, locked, hit) = match decision {
            Decision::Allowed { by } => (false, false, by.as_ref().map(describe)),
            Decision::Locked { by } => (true, true, Some(describe(by))),
            Decision::Blocked { by } => (true, false, Some(describe(by))),
            Decision::NotInWalledGarden { rule } => (true, false, rule.as_ref().map(describe)),
        };
        let name_rule = matches!(
            decision,
            Decision::Blocked {
                by: Hit {
                    source: HitSource::NameRule { .. },
                    ..
                }
            } | Decision::NotInWalledGarden { rule: Some(_) }
        );
        let walled_garden = matches!(decision, Decision::NotInWalledGarden { .. });
        let (said, list, rule) = hit.unwrap_or((Said::School, None, None));
        let (category, ede) = match said {
            Said::Category(category, ede) => (Some(category), ede),
            Said::School => (None, own.by_school.clone()),
        };
        let ede = match (&rule, walled_garden) {
            (_, true) => own.walled_garden.clone(),
            // A word in the name: the only text made per answer.
            (Some(rule), false) if name_rule && category.is_some() => {
                format!("{ede} ({rule})").into()
            }
            _ => ede,
        };
        let (time_rule, other_times) = self.time_words(profile, decision);
        Explanation {
            profile: own.name.clone(),
            blocked,
            locked,
            walled_garden,
            category,
            list,
            rule,
            name_rule,
            time_rule,
            other_times,
            ede,
        }
    }

    /// Which rule of time decided, and when the answer would differ:
    /// (the rule in force that decided, the other times it changes).
    fn time_words(
        &self,
        profile: ProfileId,
        decision: &Decision,
    ) -> (Option<Arc<str>>, Vec<Arc<str>>) {
        let Some(rules) = self.time_rules.get(profile) else {
            return (None, Vec::new());
        };
        let moved = self.time_moved.get(profile).cloned().flatten();
        let (blocked, bit) = match decision {
            Decision::Blocked {
                by:
                    Hit {
                        source: HitSource::List { category, .. },
                        ..
                    },
            } => (true, Some(*category)),
            Decision::Allowed {
                by:
                    Some(Hit {
                        source: HitSource::List { category, .. },
                        ..
                    }),
            } => (false, Some(*category)),
            Decision::Blocked { .. } | Decision::NotInWalledGarden { .. } => (true, None),
            Decision::Allowed { .. } => (false, None),
            Decision::Locked { .. } => return (None, Vec::new()),
        };
        let Some(bit) = bit.filter(|bit| *bit < 64).map(|bit| 1u64 << bit) else {
            return (moved, Vec::new());
        };
        let deciding = |rule: &time_rules::RuleMasks| {
            if blocked {
                rule.blocks & bit != 0
            } else {
                rule.allows & bit != 0
            }
        };
        let now = rules
            .iter()
            .filter(|rule| deciding(rule))
            .find_map(|rule| {
                if blocked {
                    rule.blocked_now.clone()
                } else {
                    rule.allowed_now.clone()
                }
            })
            .or(moved);
        let other = rules
            .iter()
            .filter(|rule| rule.now.is_none() && self.time.trusted)
            .filter_map(|rule| {
                if blocked && rule.allows & bit != 0 {
                    Some(rule.allowed_when.clone())
                } else if !blocked && rule.blocks & bit != 0 {
                    Some(rule.blocked_when.clone())
                } else {
                    None
                }
            })
            .collect();
        (now, other)
    }
}

/// What a hit says about the category behind a decision.
enum Said {
    /// A list's or a name rule's category, with its EDE text for the profile.
    Category(Arc<str>, Arc<str>),
    /// The school's own allow or deny domains, or no hit at all.
    School,
}

/// The reasons behind a decision, for `lollipop check`, EDE texts and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    pub profile: Arc<str>,
    pub blocked: bool,
    pub locked: bool,
    pub walled_garden: bool,
    pub category: Option<Arc<str>>,
    pub list: Option<Arc<str>>,
    pub rule: Option<String>,
    /// `rule` is a name rule ("name rule: 'term'"), not a list entry.
    pub name_rule: bool,
    /// The rule of time that decided, if one did ("allowed at lunch
    /// (12:15-13:15)", "blocked out of term").
    pub time_rule: Option<Arc<str>>,
    /// When the decision would be otherwise ("allowed 12:15-13:15 at lunch
    /// on school days").
    pub other_times: Vec<Arc<str>>,
    /// The Extended DNS Error's text without the rule of time: for all but
    /// a name rule's hit, shared with the policy's [`ExplanationTexts`].
    #[serde(skip)]
    ede: Arc<str>,
}

impl Explanation {
    /// The short text carried in the Extended DNS Error of a blocked answer.
    pub fn ede_text(&self) -> Arc<str> {
        match &self.time_rule {
            Some(time) => format!("{} ({time})", self.ede).into(),
            None => self.ede.clone(),
        }
    }

    /// The log's rule column: the rule, and the rule of time that decided.
    pub fn rule_with_time(&self) -> Option<String> {
        self.rule_with_time_of(self.rule.clone())
    }

    /// The log's rule column for `rule` under this explanation's rule of
    /// time: for an explanation kept without its rule, shared by the
    /// answers of every name it blocks, each of which keeps its own rule.
    pub fn rule_with_time_of(&self, rule: Option<String>) -> Option<String> {
        match (rule, &self.time_rule) {
            (Some(rule), Some(time)) => Some(format!("{rule}; {time}")),
            (None, Some(time)) => Some(time.to_string()),
            (rule, None) => rule,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match (self.blocked, self.locked) {
            (true, true) => "blocked (locked category: no profile or override can release it)",
            (true, false) => "blocked",
            (false, _) => "allowed",
        };
        writeln!(f, "profile:  {}", self.profile)?;
        writeln!(f, "decision: {action}")?;
        if self.walled_garden {
            writeln!(
                f,
                "why:      this profile is a walled garden and no allow list or allow domain covers the name"
            )?;
        }
        if let Some(category) = &self.category {
            writeln!(f, "category: {category}")?;
        }
        if let Some(list) = &self.list {
            writeln!(f, "list:     {list}")?;
        }
        match (&self.rule, &self.category) {
            (Some(rule), _) if self.name_rule => {
                writeln!(f, "rule:     {rule} (a word in the name; no list has it)")?
            }
            (Some(rule), _) => writeln!(f, "rule:     {rule} (and its subdomains)")?,
            (None, Some(_)) => writeln!(
                f,
                "rule:     withheld (a licensed list's entries are never shown)"
            )?,
            (None, None) => {}
        }
        if !self.blocked && self.rule.is_none() {
            writeln!(f, "why:      no list entry applies to this profile")?;
        }
        if let Some(time) = &self.time_rule {
            writeln!(f, "time:     {time}")?;
        }
        for other in &self.other_times {
            writeln!(f, "later:    {other}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
impl Explanation {
    /// A block of `category` for `profile` by `rule`, as a list's hit
    /// explains it.
    pub(crate) fn blocked_for_tests(profile: &str, category: &str, rule: Option<&str>) -> Self {
        let ede: Arc<str> = category_blocked(category, profile).into();
        Explanation {
            profile: profile.into(),
            blocked: true,
            locked: false,
            walled_garden: false,
            category: Some(category.into()),
            list: Some("a list".into()),
            rule: rule.map(str::to_owned),
            name_rule: false,
            time_rule: None,
            other_times: Vec::new(),
            ede,
        }
    }

    /// The text [`Explanation::ede_text`] gives, formatted afresh from
    /// the explanation's words, as it was before the texts were prebuilt.
    pub(crate) fn ede_text_formatted(&self) -> String {
        let text = self.ede_text_untimed();
        match &self.time_rule {
            Some(time) => format!("{text} ({time})"),
            None => text,
        }
    }

    fn ede_text_untimed(&self) -> String {
        match (&self.category, self.walled_garden) {
            (_, true) => format!(
                "Lollipop: not on the approved list for profile {}",
                self.profile
            ),
            (Some(category), _) => match (&self.rule, self.name_rule) {
                (Some(rule), true) => format!(
                    "Lollipop: category {category} blocked for profile {} ({rule})",
                    self.profile
                ),
                _ => format!(
                    "Lollipop: category {category} blocked for profile {}",
                    self.profile
                ),
            },
            (None, _) => format!(
                "Lollipop: blocked by the school for profile {}",
                self.profile
            ),
        }
    }
}

//! The policy snapshot: profiles compiled against the loaded lists, the
//! client → profile map, and the explanation of a decision. A snapshot is
//! immutable; a reload builds a new one and swaps it in whole.

pub mod clients;
pub mod decision;
pub mod local_rights;
pub mod name_rules;
pub mod overrides;
pub mod release;
pub mod rules;
pub mod safesearch;
pub mod special;
pub mod time_rules;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::catalogue::service_category;
use crate::config::{Config, ConfigError, ConfigErrors, parse_network};
use crate::lists::store::{CompiledLists, SuffixSet};
use crate::name::{ReversedName, normalise_domain};

use clients::{ClientMap, ProfileId};
use decision::{Decision, Hit, HitSource, Profile};
use name_rules::NameRules;
use rules::{DomainRule, RuleAction};
use safesearch::{SafeSearchMap, SafeSearchPolicy};

pub struct Policy {
    pub lists: Arc<CompiledLists>,
    pub profiles: Vec<Profile>,
    pub clients: ClientMap,
    /// The profile of each `[[listen]]` address, in config order.
    pub listener_profiles: Vec<Option<ProfileId>>,
    pub locked_mask: u64,
    /// Category bits whose blocks alert the safeguarding lead.
    pub alerting_mask: u64,
    pub safe_search: Arc<SafeSearchMap>,
    /// The school's zones the config exempts from filtering.
    pub unfiltered_zones: SuffixSet,
    /// The name rules, compiled for the config's languages.
    pub name_rules: Arc<NameRules>,
    /// Per profile, the name-rule categories that act on it (bits by
    /// `name_rules.categories()`): those it blocks, or in a walled garden
    /// every one (a hit there only alerts); none when switched off.
    pub rule_masks: Vec<u64>,
    /// The name-rule categories that alert the safeguarding lead.
    pub rule_alerting_mask: u64,
    /// The rules of time this policy was built for (none: no calendar).
    pub time: Arc<time_rules::TimeState>,
    /// Per profile, each of its time rules' masks and whether it holds
    /// now, so a decision can say which rule of time applied.
    pub time_rules: Vec<Vec<time_rules::RuleMasks>>,
    /// The trust's policy bundle in force, which limits what the school
    /// may change on its page (`local_rights`).
    pub trust: Option<Arc<crate::config::trust::BundleInForce>>,
}

/// The allow category of help sites (lists/help.txt): on in every profile.
pub const HELP_CATEGORY: &str = "help";

impl Policy {
    /// Compiles the config's profiles against the category table of `lists`.
    /// `local_rules` are the allow/deny entries made on the status page;
    /// they join the profiles' own `allow_domains` / `deny_domains`.
    pub fn build(
        config: &Config,
        lists: Arc<CompiledLists>,
        safe_search: Arc<SafeSearchMap>,
        local_rules: &[DomainRule],
    ) -> Result<Policy, ConfigErrors> {
        let mut problems = Vec::new();
        let mask_of = |names: &[toml::Spanned<String>]| -> u64 {
            names
                .iter()
                .filter_map(|name| lists.category_bit(name.get_ref()))
                .fold(0u64, |mask, bit| mask | (1u64 << bit))
        };
        let locked_mask = mask_of(&config.blocking.locked_categories);
        let alerting_mask = config
            .alerting_categories()
            .iter()
            .filter_map(|name| lists.category_bit(name))
            .fold(0u64, |mask, bit| mask | (1u64 << bit));
        let services_mask = |names: &[toml::Spanned<String>]| -> u64 {
            names
                .iter()
                .filter_map(|name| lists.category_bit(&service_category(name.get_ref())))
                .fold(0u64, |mask, bit| mask | (1u64 << bit))
        };

        // Zones the config exempts from filtering: allowed in every profile
        // whatever a list says, except a locked category.
        let unfiltered_zones: Vec<String> = config
            .zones
            .iter()
            .filter(|zone| !zone.filter)
            .filter_map(|zone| zone.normalised_domain())
            .collect();
        let name_rules = if config.name_rules.enabled {
            NameRules::embedded(&config.name_rules.language_codes()).unwrap_or_else(|error| {
                problems.push(ConfigError {
                    file: config.origin.display_name.clone(),
                    position: None,
                    key: "name_rules".into(),
                    message: format!("{error}; fix the rules file or set enabled = false"),
                });
                NameRules::default()
            })
        } else {
            NameRules::default()
        };
        let alerting = config.alerting_categories();
        let rule_alerting_mask = name_rules.mask_of(alerting.iter().map(String::as_str));
        let all_rules = name_rules.mask_of(name_rules.categories().iter().map(String::as_str));
        // Help sites stay reachable in every profile, beating blocks and
        // name rules (never a locked category).
        let help_mask = lists
            .category_bit(HELP_CATEGORY)
            .map_or(0, |bit| 1u64 << bit);
        let mut rule_masks = Vec::new();
        let mut profiles = Vec::new();
        for (name, profile) in &config.profiles {
            rule_masks.push(match (profile.name_rules, profile.mode) {
                (false, _) => 0,
                (true, crate::config::ProfileMode::Allowlist) => all_rules,
                (true, crate::config::ProfileMode::Blocklist) => name_rules.mask_of(
                    profile
                        .block_categories
                        .iter()
                        .map(|c| c.get_ref().as_str()),
                ),
            });
            let local = |action: RuleAction| {
                local_rules
                    .iter()
                    .filter(move |rule| rule.profile == *name && rule.action == action)
                    .filter(|rule| local_rights::entry_kept(config, rule))
                    .map(|rule| rule.domain.clone())
            };
            let domains = |list: &[toml::Spanned<String>],
                           local: &mut dyn Iterator<Item = String>,
                           problems: &mut Vec<ConfigError>| {
                let mut normalised: Vec<String> = local.collect();
                for domain in list {
                    match normalise_domain(domain.get_ref()) {
                        Ok(d) => normalised.push(d),
                        Err(error) => problems.push(ConfigError {
                            file: config.origin.display_name.clone(),
                            position: None,
                            key: format!("profiles.{name}"),
                            message: format!("'{}' is not a domain: {error}", domain.get_ref()),
                        }),
                    }
                }
                SuffixSet::new(normalised).unwrap_or_else(|error| {
                    problems.push(ConfigError {
                        file: config.origin.display_name.clone(),
                        position: None,
                        key: format!("profiles.{name}"),
                        message: format!("cannot index the profile's domains: {error}"),
                    });
                    SuffixSet::default()
                })
            };
            profiles.push(Profile {
                name: name.clone(),
                description: profile.description.clone(),
                mode: profile.mode,
                block_mask: mask_of(&profile.block_categories)
                    | services_mask(&profile.block_services),
                allow_mask: mask_of(&profile.allow_categories)
                    | services_mask(&profile.allow_services)
                    | help_mask,
                allow_domains: domains(
                    &profile.allow_domains,
                    &mut local(RuleAction::Allow),
                    &mut problems,
                ),
                deny_domains: domains(
                    &profile.deny_domains,
                    &mut local(RuleAction::Deny),
                    &mut problems,
                ),
                safe_search: SafeSearchPolicy {
                    search: profile.safe_search,
                    youtube: profile.youtube,
                },
                audience: profile.audience,
            });
        }
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }

        let profile_id = |name: &str| profiles.iter().position(|p| p.name == name);
        let mut rules = Vec::new();
        for rule in &config.clients {
            if let (Ok(net), Some(id)) = (
                parse_network(rule.network.get_ref()),
                profile_id(rule.profile.get_ref()),
            ) {
                rules.push((net, id));
            }
        }
        // Validation has already checked the default profile exists.
        let default_profile = profile_id(config.server.default_profile.get_ref()).unwrap_or(0);
        let clients = ClientMap::new(rules, default_profile);
        let listener_profiles = config
            .listen
            .iter()
            .map(|listen| {
                listen
                    .profile
                    .as_ref()
                    .and_then(|p| profile_id(p.get_ref()))
            })
            .collect();

        let unfiltered_zones = SuffixSet::new(unfiltered_zones).unwrap_or_else(|error| {
            // Fail closed: without the set no zone is exempt.
            tracing::error!("cannot index the unfiltered [[zones]]: {error}; they are filtered");
            SuffixSet::default()
        });
        Ok(Policy {
            lists,
            profiles,
            clients,
            listener_profiles,
            locked_mask,
            alerting_mask,
            safe_search,
            unfiltered_zones,
            name_rules: Arc::new(name_rules),
            rule_masks,
            rule_alerting_mask,
            time: Arc::default(),
            time_rules: Vec::new(),
            trust: config.bundle.clone(),
        })
    }

    /// [`Policy::build`] with the rules of time in `state` applied to the
    /// profiles (see [`time_rules::effective_config`]).
    pub fn build_at(
        config: &Config,
        lists: Arc<CompiledLists>,
        safe_search: Arc<SafeSearchMap>,
        local_rules: &[DomainRule],
        state: Arc<time_rules::TimeState>,
    ) -> Result<Policy, ConfigErrors> {
        let effective = time_rules::effective_config(config, &state);
        let masks = time_rules::rule_masks(config, &state, &lists);
        let mut policy = Policy::build(&effective, lists, safe_search, local_rules)?;
        policy.time = state;
        policy.time_rules = masks;
        Ok(policy)
    }

    /// Which rule of time decided, and when the answer would differ:
    /// (the rule in force that decided, the other times it changes).
    fn time_words(&self, profile: ProfileId, decision: &Decision) -> (Option<String>, Vec<String>) {
        let Some(rules) = self.time_rules.get(profile) else {
            return (None, Vec::new());
        };
        let moved = self
            .time
            .profile(&self.profiles[profile].name)
            .and_then(|time| time.uses_profile.as_ref())
            .map(|(other, label)| format!("{label}: the rules of profile {other}"));
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
            .find_map(|rule| rule.now.clone())
            .map(|label| {
                let verb = if blocked { "blocked" } else { "allowed" };
                format!("{verb} {label}")
            })
            .or(moved);
        let other = rules
            .iter()
            .filter(|rule| rule.now.is_none() && self.time.trusted)
            .filter_map(|rule| {
                if blocked && rule.allows & bit != 0 {
                    Some(format!("allowed {}", rule.when))
                } else if !blocked && rule.blocks & bit != 0 {
                    Some(format!("blocked {}", rule.when))
                } else {
                    None
                }
            })
            .collect();
        (now, other)
    }

    pub fn profile_id(&self, name: &str) -> Option<ProfileId> {
        self.profiles.iter().position(|p| p.name == name)
    }

    pub fn profile(&self, id: ProfileId) -> &Profile {
        &self.profiles[id]
    }

    /// The profile for `client`, which reached the `listener`-th `[[listen]]`
    /// address (None when asked from outside the DNS, e.g. `lollipop check`).
    pub fn profile_for(&self, client: IpAddr, listener: Option<usize>) -> ProfileId {
        let listener_profile =
            listener.and_then(|i| self.listener_profiles.get(i).copied().flatten());
        self.clients.profile_for(client, listener_profile)
    }

    pub fn decide(&self, profile: ProfileId, name: &ReversedName) -> Decision {
        let settings = &self.profiles[profile];
        let decision = decision::decide(&self.lists, self.locked_mask, settings, name);
        // Only a name no list entry or allow decided is read for its words.
        let mask = self.rule_masks.get(profile).copied().unwrap_or(0);
        let decision = name_rules::apply(&self.name_rules, mask, settings.mode, name, decision);
        match decision {
            Decision::Blocked { .. } | Decision::NotInWalledGarden { .. }
                if self.in_unfiltered_zone(name) =>
            {
                Decision::Allowed { by: None }
            }
            decision => decision,
        }
    }

    /// Whether `name` is in one of the school's zones exempt from filtering.
    pub fn in_unfiltered_zone(&self, name: &ReversedName) -> bool {
        if self.unfiltered_zones.is_empty() {
            return false;
        }
        let mut found = false;
        self.unfiltered_zones.walk(name, |_| found = true);
        found
    }

    /// Why `decision` was taken, in words a technician can act on.
    pub fn explain(
        &self,
        profile: ProfileId,
        name: &ReversedName,
        decision: &Decision,
    ) -> Explanation {
        let profile_name = self.profiles[profile].name.clone();
        let describe = |hit: &Hit| {
            let rule = name.suffix_domain(hit.key_len);
            match hit.source {
                HitSource::List {
                    combination,
                    category,
                } => {
                    let category_name = self
                        .lists
                        .categories()
                        .get(category as usize)
                        .cloned()
                        .unwrap_or_default();
                    let source = self
                        .lists
                        .combination_sources(combination)
                        .iter()
                        .map(|&source| self.lists.source(source))
                        .find(|source| source.category == category_name);
                    // A licensed feed's entries are never shown, only its hits.
                    let rule = match source {
                        Some(source) if source.hidden => None,
                        _ => Some(rule),
                    };
                    let list = source.map(|source| source.name.clone());
                    (Some(category_name), list, rule)
                }
                HitSource::ProfileAllow => (
                    None,
                    Some(format!("profiles.{profile_name}.allow_domains")),
                    Some(rule),
                ),
                HitSource::ProfileDeny => (
                    None,
                    Some(format!("profiles.{profile_name}.deny_domains")),
                    Some(rule),
                ),
                HitSource::NameRule { category, term } => (
                    Some(self.name_rules.category_name(category).to_string()),
                    Some(crate::alerts::NAME_RULES_LIST.to_string()),
                    Some(format!("name rule: '{}'", self.name_rules.term(term))),
                ),
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
        let (category, list, rule) = hit.unwrap_or((None, None, None));
        let (time_rule, other_times) = self.time_words(profile, decision);
        Explanation {
            profile: profile_name,
            blocked,
            locked,
            walled_garden: matches!(decision, Decision::NotInWalledGarden { .. }),
            category,
            list,
            rule,
            name_rule,
            time_rule,
            other_times,
        }
    }
}

/// The reasons behind a decision, for `lollipop check`, EDE texts and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    pub profile: String,
    pub blocked: bool,
    pub locked: bool,
    pub walled_garden: bool,
    pub category: Option<String>,
    pub list: Option<String>,
    pub rule: Option<String>,
    /// `rule` is a name rule ("name rule: 'term'"), not a list entry.
    pub name_rule: bool,
    /// The rule of time that decided, if one did ("allowed at lunch
    /// (12:15-13:15)", "blocked out of term").
    pub time_rule: Option<String>,
    /// When the decision would be otherwise ("allowed 12:15-13:15 at lunch
    /// on school days").
    pub other_times: Vec<String>,
}

impl Explanation {
    /// The short text carried in the Extended DNS Error of a blocked answer.
    pub fn ede_text(&self) -> String {
        let text = self.ede_text_untimed();
        match &self.time_rule {
            Some(time) => format!("{text} ({time})"),
            None => text,
        }
    }

    /// The log's rule column: the rule, and the rule of time that decided.
    pub fn rule_with_time(&self) -> Option<String> {
        match (&self.rule, &self.time_rule) {
            (Some(rule), Some(time)) => Some(format!("{rule}; {time}")),
            (None, Some(time)) => Some(time.clone()),
            (rule, None) => rule.clone(),
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

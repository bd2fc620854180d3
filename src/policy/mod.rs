//! The policy snapshot: profiles compiled against the loaded lists, the
//! client → profile map, and the explanation of a decision. A snapshot is
//! immutable; a reload builds a new one and swaps it in whole.

pub mod clients;
pub mod decision;
pub mod explanation;
#[cfg(test)]
pub mod for_tests;
pub mod local_rights;
pub mod name_rules;
pub mod overrides;
pub mod release;
pub mod rules;
pub mod safesearch;
pub mod special;
pub mod time_rules;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::catalogue::service_category;
use crate::config::{Config, ConfigError, ConfigErrors, parse_network};
use crate::lists::store::{CompiledLists, SuffixSet};
use crate::name::{ReversedName, normalise_domain};

use clients::{ClientMap, ProfileId};
use decision::{Decision, Profile};
use name_rules::NameRules;
use rules::{DomainRule, RuleAction};
use safesearch::{SafeSearchMap, SafeSearchPolicy};

pub use explanation::{Explanation, ExplanationTexts};

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
    /// Per profile, the words saying it has another profile's rules now
    /// ("out of term: the rules of profile ks2"), built once.
    pub time_moved: Vec<Option<Arc<str>>>,
    /// The trust's policy bundle in force, which limits what the school
    /// may change on its page (`local_rights`).
    pub trust: Option<Arc<crate::config::trust::BundleInForce>>,
    /// The words of explanations and EDE texts, built once for this policy.
    pub texts: ExplanationTexts,
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
        let texts = ExplanationTexts::new(&profiles, &lists, &name_rules);
        Ok(Policy {
            texts,
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
            time_moved: Vec::new(),
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
        policy.time_moved = policy
            .profiles
            .iter()
            .map(|profile| {
                let time = state.profile(&profile.name)?;
                let (other, label) = time.uses_profile.as_ref()?;
                Some(Arc::from(format!("{label}: the rules of profile {other}")))
            })
            .collect();
        policy.time = state;
        policy.time_rules = masks;
        Ok(policy)
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
}

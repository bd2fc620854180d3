//! Which safeguards are off: the gaps a head teacher and the safeguarding
//! lead must be told about, in their words. A category the school blocks or
//! alerts on that holds no sites, a locked category (IWF, CTIRU) with no
//! feed, lists out of date, alerts that reach nobody, only the sample lists
//! in use. One account, from the config and the lists' health, that
//! `config check`, start-up, the dashboard and the weekly report all show.

use std::collections::BTreeSet;

use crate::config::{Config, ProfileMode};

use super::acquire::health::ListHealth;

/// How serious a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Children are not protected as the school believes: shown in red.
    Bad,
    /// Worth fixing soon.
    Warn,
}

/// One safeguard that is off, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub severity: Severity,
    pub text: String,
}

/// Who must supply each locked category's feed, in the words the page uses.
fn locked_feed_supplier(category: &str) -> String {
    match category {
        "iwf" => "Not protected against the IWF list (child sexual abuse images): the school's connectivity provider or a filtering supplier who is an IWF member must supply it".into(),
        "ctiru" => "Not protected against the CTIRU list (unlawful terrorist content): the school's connectivity provider or a filtering supplier who holds it must supply it".into(),
        other => format!("The locked category '{other}' has no list, so nothing in it is blocked: add the feed that supplies it"),
    }
}

/// Every gap, most serious first. `lists` is [`super::acquire::health::health`]
/// for `config`.
pub fn gaps(config: &Config, lists: &[ListHealth]) -> Vec<Gap> {
    let mut found = Vec::new();
    let entries_in = |category: &str| -> u64 {
        lists
            .iter()
            .filter(|list| list.category == category)
            .map(ListHealth::entries)
            .sum()
    };
    // A shipped seed (lists/seed/) is a handful of sites, not coverage.
    let covered_by_more_than_a_seed = |category: &str| {
        lists
            .iter()
            .any(|list| list.category == category && !is_seed(list) && list.entries() > 0)
    };
    let has_list = |category: &str| lists.iter().any(|list| list.category == category);

    let locked: BTreeSet<String> = config
        .blocking
        .locked_categories
        .iter()
        .map(|name| name.get_ref().clone())
        .collect();
    for category in &locked {
        if entries_in(category) == 0 {
            found.push(Gap {
                severity: Severity::Bad,
                text: locked_feed_supplier(category),
            });
        }
    }

    let alerting: BTreeSet<String> = config.alerting_categories().into_iter().collect();
    let mut blocked_by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (profile, settings) in &config.profiles {
        if settings.mode != ProfileMode::Blocklist {
            continue;
        }
        for category in &settings.block_categories {
            blocked_by
                .entry(category.get_ref().clone())
                .or_default()
                .push(profile.clone());
        }
    }
    let watched: BTreeSet<&String> = blocked_by.keys().chain(&alerting).collect();
    for category in watched {
        if locked.contains(category) || covered_by_more_than_a_seed(category) {
            continue;
        }
        let how = match (blocked_by.get(category), alerting.contains(category)) {
            (Some(profiles), true) => format!(
                "blocked for {} and alerts the safeguarding lead",
                profiles.join(", ")
            ),
            (Some(profiles), false) => format!("blocked for {}", profiles.join(", ")),
            (None, _) => "meant to alert the safeguarding lead".to_string(),
        };
        let (why, so) = if entries_in(category) > 0 {
            (
                "only Lollipop's seed list holds sites (a handful, not coverage; the name rules catch some more)",
                "most of it is not being blocked or reported",
            )
        } else if has_list(category) {
            (
                "its lists hold no sites yet (not downloaded, or empty)",
                "nothing is being blocked or reported for it",
            )
        } else {
            (
                "no list supplies it",
                "nothing is being blocked or reported for it",
            )
        };
        found.push(Gap {
            severity: if alerting.contains(category) {
                Severity::Bad
            } else {
                Severity::Warn
            },
            text: format!(
                "The '{category}' category is {how}, but {why}: {so}. Add a list for it (Lists & settings; a vendor's feed where no public list exists)."
            ),
        });
    }

    let out_of_date: Vec<&str> = lists
        .iter()
        .filter(|list| !list.current())
        .map(|list| list.name.as_str())
        .collect();
    if !out_of_date.is_empty() {
        found.push(Gap {
            severity: Severity::Warn,
            text: format!(
                "Lists out of date or never downloaded: {}. New harmful sites are not being added to them.",
                out_of_date.join(", ")
            ),
        });
    }

    if config.alerts.email.is_none() && config.alerts.webhook.is_none() {
        found.push(Gap {
            severity: Severity::Bad,
            text: format!(
                "Safeguarding alerts are not set up: nobody is told when someone tries to reach {}. Set up email or a webhook under [alerts].",
                alerting.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }

    let in_use: Vec<&ListHealth> = lists.iter().filter(|list| list.entries() > 0).collect();
    if !in_use.is_empty() && in_use.iter().all(|list| is_sample(list)) {
        found.push(Gap {
            severity: Severity::Warn,
            text: "Only the small sample lists are filtering (a few dozen sites each): turn on the full lists' downloads (Lists & settings).".into(),
        });
    }
    found.sort_by_key(|gap| gap.severity);
    found
}

/// A shipped sample list: a few entries to try Lollipop with.
fn is_sample(list: &ListHealth) -> bool {
    list.name.starts_with("sample-") || in_shipped_folder(list, "sample") || is_seed(list)
}

/// A shipped seed (lists/seed/): a few sites so a category with no public
/// list is not empty; never coverage.
fn is_seed(list: &ListHealth) -> bool {
    in_shipped_folder(list, "seed")
}

fn in_shipped_folder(list: &ListHealth, folder: &str) -> bool {
    match &list.freshness {
        super::acquire::health::Freshness::File { path, .. } => {
            path.components().any(|part| part.as_os_str() == folder)
        }
        super::acquire::health::Freshness::Download { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOrigin;

    fn config(extra: &str) -> Config {
        let text = format!("{}\n{extra}", crate::config::EMBEDDED_DEFAULT);
        Config::parse(&text, ConfigOrigin::default()).unwrap_or_else(|errors| panic!("{errors}"))
    }

    fn texts(gaps: &[Gap]) -> String {
        gaps.iter()
            .map(|g| g.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_shipped_config_with_no_lists_compiled_names_every_gap() {
        let config = config("");
        let health = crate::lists::acquire::health::health(&config, None, 0);
        let gaps = gaps(&config, &health);
        let all = texts(&gaps);
        assert!(all.contains("Not protected against the IWF list"), "{all}");
        assert!(
            all.contains("Not protected against the CTIRU list"),
            "{all}"
        );
        assert!(all.contains("Safeguarding alerts are not set up"), "{all}");
        assert!(all.contains("'self-harm' category"), "{all}");
        assert_eq!(gaps[0].severity, Severity::Bad, "the worst first");
    }

    #[test]
    fn alerts_set_up_take_that_gap_away() {
        let config = config("[alerts.webhook]\nurl = \"https://hooks.example.org/x\"\n");
        let health = crate::lists::acquire::health::health(&config, None, 0);
        let all = texts(&gaps(&config, &health));
        assert!(!all.contains("Safeguarding alerts are not set up"), "{all}");
    }

    #[test]
    fn a_category_held_only_by_a_seed_is_still_a_gap() {
        let config = config("");
        let mut health = crate::lists::acquire::health::health(&config, None, 0);
        let seed = health
            .iter_mut()
            .find(|list| list.name == "lollipop-self-harm-seed")
            .expect("the shipped config lists the seed");
        seed.compiled = Some(crate::lists::SourceInfo {
            name: seed.name.clone(),
            path: "lists/seed/self-harm.txt".into(),
            category: "self-harm".into(),
            format: crate::config::ListFormat::Domains,
            entries: 3,
            bad_lines: 0,
            unsupported: 0,
            url_level: 0,
            hidden: false,
        });
        let all = texts(&gaps(&config, &health));
        assert!(
            all.contains("'self-harm' category") && all.contains("only Lollipop's seed list"),
            "{all}"
        );
    }
}

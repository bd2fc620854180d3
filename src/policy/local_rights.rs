//! What a school may still change on its own page while a trust's policy
//! bundle is in force: allow and deny entries, staff unlocks, and whether
//! anyone at the school (the safeguarding lead included) may release an
//! alerting category. The page, its API and the command line ask here, so
//! they all refuse alike, in words that name the bundle.

use crate::config::Config;
use crate::config::bundle::UnlockRight;
use crate::name::ReversedName;

use super::Policy;
use super::release::Standing;
use super::rules::{DomainRule, OverrideRow, OverrideTarget, RuleAction};

impl Policy {
    /// Whether the school may add an allow or deny entry for `name`.
    pub fn check_local_entry(&self, action: RuleAction, name: &ReversedName) -> Result<(), String> {
        let Some(bundle) = &self.trust else {
            return Ok(());
        };
        let describe = bundle.describe();
        let site = name.to_domain();
        match action {
            RuleAction::Deny if !bundle.local.deny_entries => Err(format!(
                "{describe} does not let schools block sites on their own: ask the trust to block {site} for every school."
            )),
            RuleAction::Allow if !bundle.local.allow_entries => Err(format!(
                "{describe} does not let schools allow sites on their own: ask the trust to allow {site} if it should be."
            )),
            RuleAction::Allow if bundle.local.unlock != UnlockRight::Any => {
                let alerting = self.alerting_categories_of(name);
                if alerting.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{site} is listed as {}, which alerts the safeguarding lead, and {describe} lets no school allow such a site, not even its safeguarding lead: ask the trust.",
                        alerting.join(", ")
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether the school may unlock a site that stands as `standing`.
    pub fn check_local_unlock(&self, site: &str, standing: &Standing) -> Result<(), String> {
        let Some(bundle) = &self.trust else {
            return Ok(());
        };
        let describe = bundle.describe();
        match (bundle.local.unlock, standing) {
            (UnlockRight::None, _) => Err(format!(
                "{describe} does not let schools unlock sites: ask the trust if {site} is needed."
            )),
            (UnlockRight::NotAlerting, Standing::Alerting(categories)) => Err(format!(
                "{site} is listed as {}, which alerts the safeguarding lead, and {describe} lets no school unlock such a site, not even its safeguarding lead: ask the trust.",
                categories.join(", ")
            )),
            _ => Ok(()),
        }
    }
}

impl Policy {
    /// The staff unlocks that stay in force under the bundle: none with
    /// `unlock = "none"`; with `"not-alerting"`, none of a site in an
    /// alerting category (an unlock granted before the bundle arrived ends
    /// with it: filtering only gets stricter).
    pub fn unlocks_in_force(&self, rows: Vec<OverrideRow>) -> Vec<OverrideRow> {
        let Some(bundle) = &self.trust else {
            return rows;
        };
        match bundle.local.unlock {
            UnlockRight::Any => rows,
            UnlockRight::None => Vec::new(),
            UnlockRight::NotAlerting => rows
                .into_iter()
                .filter(|row| match &row.target {
                    OverrideTarget::Domain(domain) => ReversedName::from_domain(domain)
                        .is_none_or(|name| self.alerting_categories_of(&name).is_empty()),
                    OverrideTarget::Service(_) => true,
                })
                .collect(),
        }
    }
}

/// Whether an entry made on the page stays in force under the bundle: an
/// allow entry made before a bundle that forbids them is not applied (a
/// deny entry only makes filtering stricter, so it stays).
pub(super) fn entry_kept(config: &Config, rule: &DomainRule) -> bool {
    match &config.bundle {
        Some(bundle) => rule.action != RuleAction::Allow || bundle.local.allow_entries,
        None => true,
    }
}

//! "Check a name": the verdict of the pipeline's stages before the
//! upstream (special names, policy, staff unlocks, safe search) for one
//! name and one asker, as the status page and the API show it.

use std::net::IpAddr;

use serde::Serialize;

use crate::name::{ReversedName, normalise_domain};
use crate::policy::Explanation;
use crate::policy::special::SpecialAnswer;

use super::pipeline::{Pipeline, decide};
use super::settings::Client;

/// Who to check for: a device (its address picks the profile, as a lookup
/// would) or a profile by name.
#[derive(Debug, Clone)]
pub enum CheckFor {
    Device(IpAddr),
    Profile(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct NameCheck {
    pub domain: String,
    pub profile: String,
    /// "blocked", "allowed", "unlocked by a staff override" or "answered by Lollipop".
    pub verdict: String,
    pub blocked: bool,
    /// Set when Lollipop answers the name itself (DoH canary, DDR...).
    pub special: Option<String>,
    pub explanation: Option<Explanation>,
    /// The staff override releasing the name for this device, if any.
    pub override_id: Option<i64>,
    /// Where safe search sends the name, if it does.
    pub rewrite: Option<SafeSearchRewrite>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SafeSearchRewrite {
    pub target: String,
    pub provider: String,
}

impl Pipeline {
    /// The decision for `name` as `who` would get it now. Errors say what
    /// is wrong with the input.
    pub fn check(&self, name: &str, who: &CheckFor) -> Result<NameCheck, String> {
        let domain = normalise_domain(name.trim())
            .map_err(|error| format!("'{}' is not a domain name: {error}", name.trim()))?;
        let reversed = ReversedName::from_domain(&domain)
            .ok_or_else(|| format!("'{domain}' is too long for a website name"))?;
        let settings = self.settings();
        let policy = &settings.policy;
        let (profile, client) = match who {
            CheckFor::Device(address) => {
                let client = Client {
                    address: *address,
                    listener: None,
                };
                (policy.profile_for(*address, None), Some(client))
            }
            CheckFor::Profile(wanted) => (
                policy
                    .profile_id(wanted)
                    .ok_or_else(|| format!("there is no profile called '{wanted}'"))?,
                None,
            ),
        };
        let verdict = decide(
            &settings,
            &self.overrides(),
            client,
            profile,
            reversed,
            self.clock(),
        );
        let profile_name = policy.profile(profile).name.clone();
        if let Some(special) = verdict.special {
            let text = match special {
                SpecialAnswer::NxDomain(text) | SpecialAnswer::NoData(text) => text,
            };
            return Ok(NameCheck {
                domain,
                profile: profile_name,
                verdict: "answered by Lollipop".into(),
                blocked: false,
                special: Some(text.to_string()),
                explanation: None,
                override_id: None,
                rewrite: None,
            });
        }
        let verdict_text = match (verdict.decision.is_blocked(), verdict.unlock) {
            (true, None) => "blocked",
            (true, Some(_)) => "unlocked by a staff override",
            (false, _) => "allowed",
        };
        Ok(NameCheck {
            domain,
            profile: profile_name,
            verdict: verdict_text.into(),
            blocked: verdict.is_blocked(),
            special: None,
            explanation: Some(verdict.explain(&settings)),
            override_id: verdict.unlock,
            rewrite: verdict.rewrite.map(|rewrite| SafeSearchRewrite {
                target: rewrite.target.to_string(),
                provider: rewrite.provider.to_string(),
            }),
        })
    }
}

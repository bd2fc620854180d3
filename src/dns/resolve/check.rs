//! "Check a name": the verdict of the pipeline's stages before the
//! upstream (special names, policy, staff unlocks, safe search) for one
//! name and one asker, as the status page, the API, the CLI and the block
//! page show it. A device is checked on the listener it would ask (given,
//! or the one serving its subnet), so VLAN profiles and room unlocks apply
//! as they do in DNS; a pasted web address is taken for its host.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::name::{ReversedName, domain_from_input};
use crate::policy::Explanation;
use crate::policy::special::SpecialAnswer;

use super::pipeline::{Pipeline, decide};
use super::settings::Client;

/// Who to check for: a device (its address and listener pick the profile,
/// as a lookup would) or a profile by name.
#[derive(Debug, Clone)]
pub enum CheckFor {
    Device {
        address: IpAddr,
        /// The `[[listen]]` index it asks on; None: the one serving its subnet.
        listener: Option<usize>,
    },
    Profile(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct NameCheck {
    pub domain: String,
    pub profile: String,
    /// The `[[listen]]` address the device was checked on, if any.
    pub listener: Option<String>,
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
        let domain = domain_from_input(name).map_err(|error| {
            format!(
                "'{}' is not a website name or address: {error}",
                name.trim().chars().take(80).collect::<String>()
            )
        })?;
        let reversed = ReversedName::from_domain(&domain)
            .ok_or_else(|| format!("'{domain}' is too long for a website name"))?;
        let settings = self.settings();
        let policy = &settings.policy;
        let (profile, client) = match who {
            CheckFor::Device { address, listener } => {
                let listener = listener.or_else(|| settings.listener_serving(*address));
                let client = Client {
                    address: *address,
                    listener,
                };
                (policy.profile_for(*address, listener), Some(client))
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
        let listener = client
            .and_then(|c| c.listener)
            .and_then(|i| settings.listeners.get(i))
            .map(|listener| listener.to_string());
        if let Some(special) = verdict.special {
            let text = match special {
                SpecialAnswer::NxDomain(text) | SpecialAnswer::NoData(text) => text,
            };
            return Ok(NameCheck {
                domain,
                profile: profile_name,
                listener,
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
            listener,
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

    /// The check for `name` in every profile, in the config's order.
    pub fn check_every_profile(&self, name: &str) -> Result<Vec<NameCheck>, String> {
        let settings = self.settings();
        settings
            .policy
            .profiles
            .iter()
            .map(|profile| self.check(name, &CheckFor::Profile(profile.name.clone())))
            .collect()
    }

    /// The index of the `[[listen]]` address written `address`, or what is wrong.
    pub fn listener_index(&self, address: &str) -> Result<usize, String> {
        listener_index(&self.settings().listeners, address)
    }
}

/// The index of `address` among `listeners` (the `[[listen]]` addresses),
/// or what is wrong.
pub fn listener_index(listeners: &[Arc<str>], address: &str) -> Result<usize, String> {
    listeners
        .iter()
        .position(|listener| **listener == *address.trim())
        .ok_or_else(|| {
            format!(
                "no listener is {} (the listeners are {})",
                address.trim().chars().take(60).collect::<String>(),
                listeners.join(", ")
            )
        })
}

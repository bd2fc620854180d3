//! The allow and deny entries and the unlocks (overrides) that staff grant,
//! as the resolver applies them. `admin` stores and lists them in its SQLite
//! file; these types are all the policy knows of that store.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Deny,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Allow => "allow",
            RuleAction::Deny => "deny",
        }
    }

    /// The action a form or API call names; the error says what to write.
    pub fn parse(text: &str) -> Result<RuleAction, String> {
        match text {
            "allow" => Ok(RuleAction::Allow),
            "deny" | "block" => Ok(RuleAction::Deny),
            other => Err(format!("'{other}' is not an action: use allow or deny")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainRule {
    pub id: i64,
    pub profile: String,
    pub domain: String,
    pub action: RuleAction,
    pub reason: String,
    pub added_by: String,
    pub added_at: i64,
    pub removed_by: Option<String>,
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum OverrideTarget {
    /// A domain and its subdomains (normalised).
    Domain(String),
    /// A service from `lists/services.toml` (e.g. `youtube`).
    Service(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum OverrideScope {
    /// One device, by address.
    Device(IpAddr),
    /// A room or VLAN, as a `[[clients]]` network.
    Network(IpNet),
    /// Everything asking on one `[[listen]]` address (a VLAN's listener).
    Listener(String),
}

impl std::fmt::Display for OverrideScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideScope::Device(ip) => write!(f, "device {ip}"),
            OverrideScope::Network(net) => write!(f, "network {net}"),
            OverrideScope::Listener(address) => write!(f, "everything asking on {address}"),
        }
    }
}

impl std::fmt::Display for OverrideTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideTarget::Domain(domain) => write!(f, "{domain}"),
            OverrideTarget::Service(service) => write!(f, "the {service} service"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideRow {
    pub id: i64,
    pub target: OverrideTarget,
    pub scope: OverrideScope,
    pub reason: String,
    pub granted_by: String,
    pub starts_at: i64,
    pub expires_at: i64,
    /// Set when someone ended it early.
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
}

impl OverrideRow {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.ended_at.is_none() && self.starts_at <= now_ms && now_ms < self.expires_at
    }
}

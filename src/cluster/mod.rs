//! An HA pair: a secondary that follows the primary's policy state. The
//! primary serves its policy (config settings and the page's records) as
//! one versioned snapshot signed with the pair's shared key
//! ([`snapshot`], [`primary`]); the secondary pulls it over the primary's
//! HTTPS page with its certificate pinned, keeps the last good one on disk
//! ([`follow`]), and the service puts it in force through the reload path.
//! [`ClusterState`] is what both ends know about the pair, for the pages.

pub mod blocks;
pub mod follow;
pub mod primary;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::Mutex;

use ring::hmac;
use serde::Serialize;

use crate::clock::TimeZone;
use crate::config::Config;
use crate::config::cluster::{ClusterRole, read_pair_key};

/// What the secondary's pull is authorised with: a MAC of this text under
/// the pair key, so the key itself never crosses the wire.
const PULL_TOKEN_TEXT: &[u8] = b"lollipop cluster: the secondary may pull";

/// The pair's shared secret.
#[derive(Clone)]
pub struct PairKey(hmac::Key);

impl PairKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> PairKey {
        PairKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The key named by `config`'s `[cluster] pair_key_file`.
    pub fn from_config(config: &Config) -> Result<PairKey, String> {
        let path = config
            .pair_key_path()
            .ok_or_else(|| "[cluster] has no pair_key_file".to_string())?;
        read_pair_key(&path).map(|bytes| PairKey::from_bytes(&bytes))
    }

    /// A new random key, as the 64 hex characters its file holds.
    pub fn generate_hex() -> String {
        crate::admin::random_token()
    }

    /// HMAC-SHA256 of `data`, in hex.
    pub fn sign(&self, data: &[u8]) -> String {
        hex::encode(hmac::sign(&self.0, data).as_ref())
    }

    /// Whether `signature` (hex) is this key's MAC of `data`, compared in
    /// constant time.
    pub fn verifies(&self, data: &[u8], signature: &str) -> bool {
        hex::decode(signature.trim()).is_ok_and(|tag| hmac::verify(&self.0, data, &tag).is_ok())
    }

    /// The bearer token the secondary pulls with.
    pub fn pull_token(&self) -> String {
        self.sign(PULL_TOKEN_TEXT)
    }

    /// Whether `token` is the pair's pull token.
    pub fn admits(&self, token: &str) -> bool {
        self.verifies(PULL_TOKEN_TEXT, token)
    }
}

/// Where the secondary stands: what it holds and when it last heard from
/// the primary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowStatus {
    /// The version of the primary's state in force here.
    pub held_version: Option<i64>,
    /// When the primary made that state.
    pub held_made_at_unix_ms: Option<i64>,
    /// When it was put in force here.
    pub applied_at_unix_ms: Option<i64>,
    /// The last time the primary answered and this box was in step with it.
    pub in_step_at_unix_ms: Option<i64>,
    /// The newest version the primary offered.
    pub primary_version: Option<i64>,
    /// Why the last pull or the last snapshot failed (cleared by success).
    pub problem: Option<String>,
    pub problem_since_unix_ms: Option<i64>,
    /// Unlocks for rooms this box has no listener for (the pair's
    /// `[[listen]]` lists differ): not in force here.
    pub unmapped_unlocks: usize,
}

/// One secondary's last pull, as the primary saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Pull {
    pub name: String,
    pub address: String,
    pub at_unix_ms: i64,
    /// Whether it already held the version in force.
    pub up_to_date: bool,
}

/// The pair as this box knows it, shared by the follower, the snapshot
/// route and the pages.
pub struct ClusterState {
    pub role: Option<ClusterRole>,
    /// The primary's page (on a secondary).
    pub primary_url: Option<String>,
    /// The pair key (None alone, or if it could not be read).
    pub key: Option<PairKey>,
    pub follow: Mutex<FollowStatus>,
    /// The primary's secondaries, by name.
    pub pulls: Mutex<BTreeMap<String, Pull>>,
    /// The primary's version of its state.
    pub versions: primary::Versions,
    /// When a pull without the pair key was last logged, by address: a
    /// misconfigured secondary asks every few seconds.
    refusals_logged: Mutex<BTreeMap<std::net::IpAddr, i64>>,
}

/// A refused address is logged again after this long.
const REFUSAL_LOG_EVERY_MS: i64 = 10 * 60 * 1000;

impl ClusterState {
    pub fn from_config(config: &Config) -> ClusterState {
        let role = config.cluster_role();
        let key = match role {
            Some(_) => match PairKey::from_config(config) {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::error!("the HA pair cannot work: {error}");
                    None
                }
            },
            None => None,
        };
        ClusterState {
            role,
            primary_url: config
                .secondary_of()
                .and_then(|cluster| cluster.primary.as_ref())
                .map(|url| url.get_ref().trim_end_matches('/').to_string()),
            key,
            follow: Mutex::new(FollowStatus::default()),
            pulls: Mutex::new(BTreeMap::new()),
            refusals_logged: Mutex::new(BTreeMap::new()),
            versions: primary::Versions::new(
                config
                    .resolve_path(&config.server.data_dir)
                    .join("cluster-version.json"),
            ),
        }
    }

    pub fn is_secondary(&self) -> bool {
        self.role == Some(ClusterRole::Secondary)
    }

    pub fn is_primary(&self) -> bool {
        self.role == Some(ClusterRole::Primary)
    }

    pub fn follow_status(&self) -> FollowStatus {
        self.follow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn update_follow(&self, change: impl FnOnce(&mut FollowStatus)) {
        change(
            &mut self
                .follow
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// Notes a problem (keeping when it started if it goes on).
    pub fn follow_failed(&self, problem: String, now: i64) {
        self.update_follow(|status| {
            if status.problem.is_none() {
                status.problem_since_unix_ms = Some(now);
            }
            status.problem = Some(problem);
        });
    }

    /// Whether a refusal from `address` should be logged now (the first,
    /// then once every ten minutes).
    pub fn should_log_refusal(&self, address: std::net::IpAddr, now: i64) -> bool {
        let mut logged = self
            .refusals_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match logged.get(&address) {
            Some(at) if now - at < REFUSAL_LOG_EVERY_MS => false,
            _ => {
                // Bounded: addresses seen once long ago are forgotten, and
                // a flood from many addresses is not logged one by one.
                logged.retain(|_, at| now - *at < REFUSAL_LOG_EVERY_MS);
                if logged.len() >= 256 {
                    return false;
                }
                logged.insert(address, now);
                true
            }
        }
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.pulls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    pub fn record_pull(&self, pull: Pull) {
        self.pulls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pull.name.clone(), pull);
    }

    /// How many seconds the secondary may be behind the primary: since it
    /// last knew itself in step (None: never, or not a secondary).
    pub fn seconds_behind(&self, now: i64) -> Option<i64> {
        if !self.is_secondary() {
            return None;
        }
        self.follow_status()
            .in_step_at_unix_ms
            .map(|at| ((now - at) / 1000).max(0))
    }

    /// The pair's figures in the Prometheus text format (empty when alone).
    pub fn metrics_text(&self, now: i64) -> String {
        let mut out = String::new();
        let Some(role) = self.role else {
            return out;
        };
        let role = match role {
            ClusterRole::Primary => "primary",
            ClusterRole::Secondary => "secondary",
        };
        out.push_str("# HELP lollipop_cluster_role This box's role in its HA pair.\n");
        out.push_str("# TYPE lollipop_cluster_role gauge\n");
        out.push_str(&format!("lollipop_cluster_role{{role=\"{role}\"}} 1\n"));
        if self.is_secondary() {
            let status = self.follow_status();
            out.push_str("# HELP lollipop_cluster_seconds_behind Seconds since the secondary last knew it held the primary's state.\n");
            out.push_str("# TYPE lollipop_cluster_seconds_behind gauge\n");
            if let Some(behind) = self.seconds_behind(now) {
                out.push_str(&format!("lollipop_cluster_seconds_behind {behind}\n"));
            }
            out.push_str("# HELP lollipop_cluster_policy_version The version of the primary's state in force here.\n");
            out.push_str("# TYPE lollipop_cluster_policy_version gauge\n");
            out.push_str(&format!(
                "lollipop_cluster_policy_version {}\n",
                status.held_version.unwrap_or(0)
            ));
            out.push_str(
                "# HELP lollipop_cluster_following 1 when the last pull from the primary worked.\n",
            );
            out.push_str("# TYPE lollipop_cluster_following gauge\n");
            out.push_str(&format!(
                "lollipop_cluster_following {}\n",
                u8::from(status.problem.is_none() && status.in_step_at_unix_ms.is_some())
            ));
        } else {
            out.push_str("# HELP lollipop_cluster_secondary_pull_age_seconds Seconds since each secondary last asked for changes.\n");
            out.push_str("# TYPE lollipop_cluster_secondary_pull_age_seconds gauge\n");
            for pull in self.pulls() {
                let name: String = pull
                    .name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                out.push_str(&format!(
                    "lollipop_cluster_secondary_pull_age_seconds{{name=\"{name}\"}} {}\n",
                    ((now - pull.at_unix_ms) / 1000).max(0)
                ));
            }
        }
        out
    }

    /// The dashboard's words for the pair (None when alone).
    pub fn in_words(&self, now: i64, zone: TimeZone) -> Option<Vec<String>> {
        let when = |at: i64| crate::clock::people::when(zone, at);
        match self.role? {
            ClusterRole::Primary => {
                let mut lines =
                    vec!["This box is the primary of an HA pair: its secondary follows the allow and block entries, unlocks, users and settings made here.".to_string()];
                let pulls = self.pulls();
                if pulls.is_empty() {
                    lines.push("No secondary has asked for changes since this box started.".into());
                }
                for pull in pulls {
                    let ago = ((now - pull.at_unix_ms) / 1000).max(0);
                    lines.push(format!(
                        "The secondary {} ({}) last asked for changes {ago} seconds ago ({}){}.",
                        pull.name,
                        pull.address,
                        when(pull.at_unix_ms),
                        if pull.up_to_date {
                            " and was up to date"
                        } else {
                            " and was sent the latest"
                        }
                    ));
                }
                Some(lines)
            }
            ClusterRole::Secondary => {
                let status = self.follow_status();
                let primary = self.primary_url.clone().unwrap_or_default();
                let mut lines = vec![format!(
                    "This box is the secondary of {primary}: allow and block entries, unlocks, users and settings are made on the primary's page and followed here."
                )];
                match (status.held_made_at_unix_ms, status.in_step_at_unix_ms) {
                    (None, _) => lines.push(
                        "It has not had the primary's settings yet, so it answers with its own config file's.".into(),
                    ),
                    (Some(made), in_step) => {
                        lines.push(format!(
                            "It answers with the primary's settings as they were at {}.",
                            when(made)
                        ));
                        if let Some(at) = in_step {
                            lines.push(format!(
                                "Last in step with the primary {} seconds ago ({}).",
                                ((now - at) / 1000).max(0),
                                when(at)
                            ));
                        }
                    }
                }
                if let Some(problem) = &status.problem {
                    let since = status
                        .problem_since_unix_ms
                        .map(|at| format!(" since {}", when(at)))
                        .unwrap_or_default();
                    lines.push(format!(
                        "Not following the primary{since}: {problem}. It keeps answering with the last settings it had."
                    ));
                }
                if status.unmapped_unlocks > 0 {
                    lines.push(format!(
                        "{} unlocks for rooms are not in force here: this box has fewer [[listen]] addresses than the primary. List them in the same order on both.",
                        status.unmapped_unlocks
                    ));
                }
                Some(lines)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_address_is_logged_once_in_ten_minutes() {
        let config = Config::embedded_default().unwrap();
        let state = ClusterState::from_config(&config);
        let address: std::net::IpAddr = "10.0.10.2".parse().unwrap();
        assert!(state.should_log_refusal(address, 0));
        assert!(!state.should_log_refusal(address, 60_000));
        assert!(state.should_log_refusal("10.0.10.3".parse().unwrap(), 60_000));
        assert!(state.should_log_refusal(address, REFUSAL_LOG_EVERY_MS));
    }

    #[test]
    fn a_signature_holds_only_for_the_same_key_and_the_same_bytes() {
        let key = PairKey::from_bytes(&[7; 32]);
        let other = PairKey::from_bytes(&[8; 32]);
        let signature = key.sign(b"the document");
        assert!(key.verifies(b"the document", &signature));
        assert!(!key.verifies(b"the documenT", &signature));
        assert!(!other.verifies(b"the document", &signature));
        assert!(!key.verifies(b"the document", "not hex"));
        assert!(key.admits(&key.pull_token()));
        assert!(!other.admits(&key.pull_token()));
        assert_ne!(key.pull_token(), key.sign(b"the document"));
    }
}

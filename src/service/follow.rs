//! The secondary of an HA pair following its primary: at start, the last
//! good snapshot kept on disk is put in force (so a restart while the
//! primary is away answers as before); while running, the primary is asked
//! every `poll_seconds` and each newer snapshot is checked whole (its
//! signature, its version, the config it makes with this box's own keys)
//! before anything changes, then kept on disk, its records put into
//! `admin.db` in one transaction, and its settings put in force through
//! the same reload as a saved config file. Anything refused leaves the
//! last good state answering and is shown on the status page. Nothing here
//! sends alerts: each box alerts only on the lookups it saw.

use std::sync::Arc;
use std::time::Duration;

use crate::admin::AdminStore;
use crate::admin::follow::PolicyRows;
use crate::clock::Clock;
use crate::cluster::ClusterState;
use crate::cluster::follow::{Fetched, Primary, read_stored, store, stored_path};
use crate::cluster::snapshot::{Envelope, PolicyState};
use crate::config::Config;
use crate::config::cluster::{PrimaryAddress, parse_pin};
use crate::journal::AuditEntry;

use super::live::LiveParts;
use super::reload::{ReloadOutcome, Reloader};

/// A snapshot checked against this box's own config, ready to put in force.
struct Prepared {
    /// The primary's settings a secondary follows.
    policy: toml::Table,
    /// The config this box runs with them.
    config: Config,
    rows: PolicyRows,
    unmapped: usize,
}

/// Checks that `state` makes a working config with `own`'s keys.
fn prepare(own: &Config, state: &PolicyState) -> Result<Prepared, String> {
    let policy: toml::Table = state
        .config
        .parse()
        .map_err(|error| format!("the primary's settings do not parse: {error}"))?;
    let config = own.following(&policy).map_err(|errors| {
        format!("the primary's settings do not work with this box's config file:\n{errors}")
    })?;
    LiveParts::check(&config).map_err(|error| format!("{error:#}"))?;
    let (rows, unmapped) = state.rows_for(&own.listen_addresses());
    Ok(Prepared {
        policy,
        config,
        rows,
        unmapped,
    })
}

/// At start: `config` with the last good snapshot's settings, and the
/// settings followed (for reloads), its records put into `admin.db`. With
/// no snapshot, or one that is refused, the file's own config.
pub fn at_start(
    config: Config,
    cluster: &ClusterState,
    clock: &Clock,
) -> (Config, Option<toml::Table>) {
    if !cluster.is_secondary() {
        return (config, None);
    }
    let now = clock.now_unix_ms();
    let Some(bytes) = read_stored(&stored_path(&config)) else {
        tracing::warn!(
            "this box is a secondary that has not had the primary's settings yet: it answers with its own config file's until it does"
        );
        return (config, None);
    };
    let Some(key) = &cluster.key else {
        cluster.follow_failed("the pair key cannot be read".into(), now);
        return (config, None);
    };
    let taken = Envelope::open(&bytes, key, None)
        .map_err(|refused| format!("the snapshot kept on disk was refused: {refused}"))
        .and_then(|state| prepare(&config, &state).map(|prepared| (state, prepared)))
        .and_then(|(state, prepared)| {
            AdminStore::open(&config.admin_db_path())
                .and_then(|admin| admin.replace_policy_rows(&prepared.rows))
                .map_err(|error| format!("the page's records could not be written: {error}"))?;
            Ok((state, prepared))
        });
    match taken {
        Ok((state, prepared)) => {
            tracing::info!(
                "following the primary's settings of version {} kept on disk",
                state.version
            );
            cluster.update_follow(|status| {
                status.held_version = Some(state.version);
                status.held_made_at_unix_ms = Some(state.made_at_unix_ms);
                status.applied_at_unix_ms = Some(now);
                status.unmapped_unlocks = prepared.unmapped;
            });
            (prepared.config, Some(prepared.policy))
        }
        Err(problem) => {
            tracing::error!("{problem}; answering with this box's own config file");
            cluster.follow_failed(problem, now);
            (config, None)
        }
    }
}

/// For the commands on a secondary (`check`, `log`, `report`, `lists`):
/// `config` with the primary's settings of the last good snapshot, so they
/// say what the running box does. Changes nothing on disk; with no usable
/// snapshot, the file's own config (and a warning).
pub fn followed_config(config: Config) -> Config {
    if config.secondary_of().is_none() {
        return config;
    }
    let Some(bytes) = read_stored(&stored_path(&config)) else {
        return config;
    };
    let followed = crate::cluster::PairKey::from_config(&config)
        .and_then(|key| Envelope::open(&bytes, &key, None).map_err(|refused| refused.to_string()))
        .and_then(|state| prepare(&config, &state));
    match followed {
        Ok(prepared) => prepared.config,
        Err(problem) => {
            tracing::warn!(
                "the primary's settings kept on disk are not used ({problem}): this shows the config file's own"
            );
            config
        }
    }
}

/// The running follower; dropping it stops the task.
pub struct Follower(tokio::task::JoinHandle<()>);

impl Follower {
    /// Starts following when `cluster` is a secondary (inside a runtime).
    pub fn start(
        reloader: Arc<Reloader>,
        cluster: Arc<ClusterState>,
        config: &Config,
        clock: Clock,
    ) -> Option<Follower> {
        if !cluster.is_secondary() {
            return None;
        }
        let primary = match primary_of(config, &cluster) {
            Ok(primary) => primary,
            Err(problem) => {
                tracing::error!("cannot follow the primary: {problem}");
                cluster.follow_failed(problem, clock.now_unix_ms());
                return None;
            }
        };
        let pause = Duration::from_secs(
            config
                .secondary_of()
                .map_or(2, |cluster| cluster.poll_seconds.max(1)),
        );
        Some(Follower(tokio::spawn(follow(
            reloader, cluster, primary, pause, clock,
        ))))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn primary_of(config: &Config, cluster: &ClusterState) -> Result<Primary, String> {
    let settings = config.secondary_of().ok_or("this box is not a secondary")?;
    let url = settings.primary.as_ref().ok_or("no [cluster] primary")?;
    let pin = settings
        .primary_certificate_sha256
        .as_ref()
        .ok_or("no [cluster] primary_certificate_sha256")?;
    let key = cluster.key.as_ref().ok_or("the pair key cannot be read")?;
    Ok(Primary {
        address: PrimaryAddress::parse(url.get_ref())?,
        pin: parse_pin(pin.get_ref()).map_err(|why| format!("primary_certificate_sha256 {why}"))?,
        token: key.pull_token(),
        name: settings.name.clone().unwrap_or_else(host_name),
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "secondary".into())
}

async fn follow(
    reloader: Arc<Reloader>,
    cluster: Arc<ClusterState>,
    primary: Primary,
    pause: Duration,
    clock: Clock,
) {
    let mut counts = CountsSent::default();
    loop {
        let held = cluster.follow_status().held_version;
        let outcome = match primary.fetch(held).await {
            Ok(Fetched::Unchanged { version }) => Ok(version),
            Ok(Fetched::Snapshot(bytes)) => take(&reloader, &cluster, &primary, &bytes, held).await,
            Err(problem) => Err(problem),
        };
        let now = clock.now_unix_ms();
        match outcome {
            Ok(version) => {
                cluster.update_follow(|status| {
                    if status.problem.is_some() {
                        tracing::info!("following the primary again");
                    }
                    status.in_step_at_unix_ms = Some(now);
                    status.primary_version = Some(version);
                    status.problem = None;
                    status.problem_since_unix_ms = None;
                });
                counts.send_if_due(&reloader, &primary, pause, now).await;
            }
            Err(problem) => {
                if cluster.follow_status().problem.as_ref() != Some(&problem) {
                    tracing::warn!(
                        "not following the primary: {problem}; answering with the last settings it sent"
                    );
                }
                cluster.follow_failed(problem, now);
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// When this box last sent its block counts to the primary (for its
/// reports), and the block log's write batches then.
#[derive(Default)]
struct CountsSent {
    at: Option<std::time::Instant>,
    batches: Option<u64>,
}

/// Counts are sent at most this many polls apart, and at least this often
/// even with nothing new (so the hours move on).
const COUNTS_EVERY_POLLS: u32 = 5;
const COUNTS_AT_LEAST_EVERY: Duration = Duration::from_secs(600);

impl CountsSent {
    /// Sends the block log's recent hours to the primary when they have
    /// changed (or long ago), never more often than every few polls.
    async fn send_if_due(
        &mut self,
        reloader: &Reloader,
        primary: &Primary,
        pause: Duration,
        now: i64,
    ) {
        let batches = reloader.journal().stats().batches;
        let since = self.at.map(|at| at.elapsed());
        let due = match since {
            None => true,
            Some(since) if since < pause * COUNTS_EVERY_POLLS => false,
            Some(since) => self.batches != Some(batches) || since >= COUNTS_AT_LEAST_EVERY,
        };
        if !due {
            return;
        }
        let config = reloader.config().await;
        let name = primary.name.clone();
        let summary = tokio::task::spawn_blocking(move || {
            crate::cluster::blocks::BlockSummary::read(&config, &name, now)
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|read| read)
        .and_then(|summary| serde_json::to_vec(&summary).map_err(|error| error.to_string()));
        let sent = match summary {
            Ok(body) => primary.send_blocks(&body).await,
            Err(error) => Err(error),
        };
        self.at = Some(std::time::Instant::now());
        match sent {
            Ok(()) => self.batches = Some(batches),
            Err(error) => tracing::warn!(
                "this box's block counts did not reach the primary's reports: {error}"
            ),
        }
    }
}

/// Puts the snapshot in `bytes` in force, or changes nothing and says why.
async fn take(
    reloader: &Reloader,
    cluster: &ClusterState,
    primary: &Primary,
    bytes: &[u8],
    held: Option<i64>,
) -> Result<i64, String> {
    let key = cluster.key.as_ref().ok_or("the pair key cannot be read")?;
    let state = Envelope::open(bytes, key, held).map_err(|refused| refused.to_string())?;
    if held == Some(state.version) {
        return Ok(state.version);
    }
    let running = reloader.config().await;
    let own = match &running.origin.path {
        Some(path) => Config::load(path).map_err(|errors| {
            format!("this box's config file is invalid, so nothing was followed:\n{errors}")
        })?,
        None => running.clone(),
    };
    let prepared = prepare(&own, &state)?;
    let path = stored_path(&running);
    let admin_path = running.admin_db_path();
    let kept = bytes.to_vec();
    let rows = prepared.rows.clone();
    tokio::task::spawn_blocking(move || {
        store(&path, &kept)?;
        AdminStore::open(&admin_path)
            .and_then(|admin| admin.replace_policy_rows(&rows))
            .map_err(|error| format!("the page's records could not be written: {error}"))
    })
    .await
    .map_err(|error| format!("the follower's task failed: {error}"))??;
    let outcome = reloader
        .follow(prepared.policy, "the primary's settings changed")
        .await;
    reloader.apply_overrides().await?;
    let now = crate::clock::now_unix_ms();
    cluster.update_follow(|status| {
        status.held_version = Some(state.version);
        status.held_made_at_unix_ms = Some(state.made_at_unix_ms);
        status.applied_at_unix_ms = Some(now);
        status.unmapped_unlocks = prepared.unmapped;
    });
    let rows = &prepared.rows;
    reloader.journal().record_audit(AuditEntry {
        at_unix_ms: now,
        actor: format!("the primary {}", primary.address.url()),
        action: "policy followed".into(),
        detail: format!(
            "version {}: {} allow/block entries, {} unlocks, {} users",
            state.version,
            rows.domain_rules
                .iter()
                .filter(|rule| rule.removed_at.is_none())
                .count(),
            rows.overrides.len(),
            rows.users.len()
        ),
        reason: None,
    });
    match outcome {
        ReloadOutcome::Reloaded => Ok(state.version),
        ReloadOutcome::Rejected(why) => Err(format!(
            "the primary's settings were kept but could not be put in force: {why}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_that_does_not_fit_this_box_is_refused_before_anything_changes() {
        let own = Config::parse(
            "[server]\ndata_dir = \"/tmp/x\"\ndefault_profile = \"ks2\"\n[[listen]]\naddress = \"127.0.0.1:5300\"\nprofile = \"ks2\"\n[[upstream]]\naddress = \"9.9.9.9\"\nprotocol = \"udp\"\n[profiles.ks2]\nmode = \"blocklist\"\n",
            crate::config::ConfigOrigin::default(),
        )
        .unwrap();
        let state = |config: &str| PolicyState {
            version: 1,
            made_at_unix_ms: 1,
            config: format!("{config}[[upstream]]\naddress = \"9.9.9.9\"\nprotocol = \"udp\"\n"),
            listen: vec![],
            rows: PolicyRows::default(),
        };
        // The primary has no ks2 profile, which this box's listener names.
        let refused = prepare(
            &own,
            &state(
                "[server]\ndefault_profile = \"staff\"\n[profiles.staff]\nmode = \"blocklist\"\n",
            ),
        )
        .err()
        .unwrap();
        assert!(
            refused.contains("do not work with this box's config"),
            "{refused}"
        );
        let fits = prepare(
            &own,
            &state("[server]\ndefault_profile = \"ks2\"\n[profiles.ks2]\nmode = \"allowlist\"\n"),
        )
        .ok()
        .unwrap();
        assert_eq!(
            fits.config.server.data_dir,
            std::path::PathBuf::from("/tmp/x")
        );
        assert_eq!(fits.config.listen.len(), 1);
    }
}

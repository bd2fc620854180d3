//! Keeps the running settings current: reloads the config and the lists on
//! SIGHUP or when one of their files changes, compiling off the query path and
//! swapping atomically. A bad config or a failed compile keeps what is running.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;

use crate::admin::AdminStore;
use crate::config::Config;
use crate::config::restart::{self, RestartChange};
use crate::dns::resolve::pipeline::Pipeline;
use crate::journal::{AuditEntry, Journal};
use crate::metrics::Metrics;
use crate::policy::overrides::OverrideSet;

use super::live::LiveParts;
use super::settings;

/// How often the config and list files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

pub struct Reloader {
    pipeline: Arc<Pipeline>,
    /// Where reloads are audited.
    journal: Journal,
    /// The counters new settings are built with.
    metrics: Arc<Metrics>,
    /// The config in force; the lock also keeps reloads one at a time.
    config: Mutex<Config>,
    /// The running parts a reload puts new settings in.
    live: LiveParts,
    /// Changes read from the file that wait for a restart.
    waiting: std::sync::Mutex<Vec<RestartChange>>,
    /// What the running upstream was built from ([`upstream_key`]): read
    /// when it was built, since the files it names (a renewed trust
    /// anchor) may have changed since.
    upstream_built_from: std::sync::Mutex<String>,
    /// On the secondary of an HA pair, the primary's settings in force
    /// (`service::follow`): every reload runs the file with them.
    followed: std::sync::Mutex<Option<toml::Table>>,
}

/// What a reload did, for the log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Reloaded,
    /// The new config was invalid or the lists could not be loaded; the
    /// message says why, and the old settings are still answering.
    Rejected(String),
}

impl Reloader {
    pub fn new(
        config: Config,
        pipeline: Arc<Pipeline>,
        journal: Journal,
        metrics: Arc<Metrics>,
        live: LiveParts,
    ) -> Reloader {
        Reloader {
            pipeline,
            journal,
            metrics,
            upstream_built_from: std::sync::Mutex::new(upstream_key(&config)),
            config: Mutex::new(config),
            live,
            waiting: std::sync::Mutex::new(Vec::new()),
            followed: std::sync::Mutex::new(None),
        }
    }

    /// Starts from the primary's settings `policy` (at start, the last
    /// good snapshot's) without reloading.
    pub fn set_followed(&self, policy: Option<toml::Table>) {
        *self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    /// Puts the primary's settings `policy` in force with this box's own
    /// keys, through the same reload as a saved file.
    pub async fn follow(&self, policy: toml::Table, why: &str) -> ReloadOutcome {
        self.set_followed(Some(policy));
        self.reload(why).await
    }

    /// The block log, for the audit trail.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The config in force (a setting that waits for a restart shows its
    /// running value).
    pub async fn config(&self) -> Config {
        self.config.lock().await.clone()
    }

    /// Changes read from the file that wait for a restart.
    pub fn waiting_for_restart(&self) -> Vec<RestartChange> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Tells the reloader the page is running, so reloads reach it.
    pub fn attach_web(&self, web: Arc<crate::web::WebState>) {
        let _ = self.live.web.set(web);
    }

    /// Reads the config again (if it came from a file), compiles the lists
    /// if they changed, and puts the result in force. Settings that only a
    /// restart can change keep their running values and are reported.
    pub async fn reload(&self, why: &str) -> ReloadOutcome {
        let mut current = self.config.lock().await;
        let file = match &current.origin.path {
            Some(path) => match Config::load(path) {
                Ok(config) => config,
                Err(errors) => {
                    let message =
                        format!("the new config is invalid, keeping the running one:\n{errors}");
                    tracing::warn!("reload ({why}) rejected: {message}");
                    return ReloadOutcome::Rejected(message);
                }
            },
            None => current.clone(),
        };
        let followed = self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let file = match followed {
            Some(policy) => match file.following(&policy) {
                Ok(config) => config,
                Err(errors) => {
                    let message = format!(
                        "the primary's settings do not work with this box's config file, keeping the running one:\n{errors}"
                    );
                    tracing::warn!("reload ({why}) rejected: {message}");
                    return ReloadOutcome::Rejected(message);
                }
            },
            None => file,
        };
        if let Err(error) = LiveParts::check(&file) {
            let message = format!("{error:#}");
            tracing::warn!("reload ({why}) rejected: {message}");
            return ReloadOutcome::Rejected(message);
        }
        let (config, waiting) = restart::in_force(&current, file);
        let for_compile = config.clone();
        let lists = match tokio::task::spawn_blocking(move || settings::load_lists(&for_compile))
            .await
        {
            Ok(Ok(lists)) => lists,
            Ok(Err(error)) => {
                let message = format!("{error:#}");
                tracing::warn!("reload ({why}) rejected: {message}");
                return ReloadOutcome::Rejected(message);
            }
            Err(error) => return ReloadOutcome::Rejected(format!("compile task failed: {error}")),
        };
        let wanted_upstream = upstream_key(&config);
        let built_from = self
            .upstream_built_from
            .lock()
            .map(|built| built.clone())
            .unwrap_or_default();
        let upstream =
            (wanted_upstream == built_from).then(|| self.pipeline.settings().upstream.clone());
        match settings::build_settings_at(
            &config,
            lists,
            upstream,
            &self.metrics,
            self.pipeline.clock(),
        ) {
            Ok(settings) => {
                self.pipeline.swap(settings);
                if let Ok(mut built) = self.upstream_built_from.lock() {
                    *built = wanted_upstream;
                }
                let sections = current.changed_sections(&config);
                let not_applied = self.live.apply(&config, &sections).await;
                let changed = restart::changed_keys(&current, &config);
                let detail = reload_detail(&changed, &waiting, &not_applied);
                if !waiting.is_empty() {
                    let keys: Vec<String> = waiting
                        .iter()
                        .map(|w| format!("{} ({})", w.key, restart::plain_name(&w.key)))
                        .collect();
                    tracing::warn!(
                        "reload ({why}): these changes take effect only after a restart: {}",
                        keys.join(", ")
                    );
                }
                for failure in &not_applied {
                    tracing::error!("reload ({why}): not applied: {failure}");
                }
                if !changed.is_empty() {
                    self.journal.record_audit(AuditEntry {
                        at_unix_ms: crate::clock::now_unix_ms(),
                        actor: format!("config file {} ({why})", config.origin.display_name),
                        action: "config reloaded".into(),
                        detail,
                        reason: None,
                    });
                }
                *self
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = waiting;
                *current = config;
                drop(current);
                // A new trust bundle may end unlocks it does not allow.
                if let Err(error) = self.apply_overrides().await {
                    tracing::warn!("reload ({why}): the unlocks were not read again: {error}");
                }
                tracing::info!("reloaded ({why})");
                ReloadOutcome::Reloaded
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!("reload ({why}) rejected: {message}");
                ReloadOutcome::Rejected(message)
            }
        }
    }

    /// The pipeline the reloads swap settings into.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Rebuilds the policy from the config and lists in force, so that an
    /// allow/deny entry made on the status page applies at once (and the
    /// rules of time now: `school_time` calls it at each boundary).
    pub async fn apply_local_rules(&self) -> Result<(), String> {
        let current = self.config.lock().await;
        let running = self.pipeline.settings();
        let settings = settings::build_settings_at(
            &current,
            running.policy.lists.clone(),
            Some(running.upstream.clone()),
            &self.metrics,
            self.pipeline.clock(),
        )
        .map_err(|error| format!("{error:#}"))?;
        self.pipeline.swap(settings);
        Ok(())
    }

    /// Puts the staff overrides recorded in the admin database in force.
    pub async fn apply_overrides(&self) -> Result<(), String> {
        let path = self.config.lock().await.admin_db_path();
        let rows = tokio::task::spawn_blocking(move || {
            AdminStore::open(&path).and_then(|store| store.live_overrides())
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
        let rows = self.pipeline.settings().policy.unlocks_in_force(rows);
        self.pipeline.set_overrides(OverrideSet::new(&rows));
        Ok(())
    }

    /// Reloads on SIGHUP and whenever the config file or a list file
    /// changes. Runs until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = self.watched_files().await;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<Option<()>>();
            let why = tokio::select! {
                _ = signalled => "SIGHUP",
                _ = tick.tick() => {
                    let now = self.watched_files().await;
                    if now == seen {
                        continue;
                    }
                    "a config or list file changed"
                }
            };
            // Taken before the reload reads the files: an edit saved while
            // it runs differs from this and is applied at the next tick,
            // rather than being taken for already applied.
            let before = self.watched_files().await;
            self.reload(why).await;
            seen = before;
        }
    }

    /// The config file and every list file, with their modification times.
    async fn watched_files(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        let config = self.config.lock().await;
        let mut paths: Vec<PathBuf> = config.origin.path.iter().cloned().collect();
        paths.extend(settings::list_sources(&config).into_iter().map(|s| s.path));
        paths.extend(config.calendar_files());
        if config.trust.is_some() {
            paths.push(config.trust_bundle_path());
        }
        paths
            .into_iter()
            .map(|path| {
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                (path, modified)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl crate::web::Control for Reloader {
    async fn config(&self) -> Config {
        Reloader::config(self).await
    }

    async fn apply_local_rules(&self) -> Result<(), String> {
        Reloader::apply_local_rules(self).await
    }

    async fn apply_overrides(&self) -> Result<(), String> {
        Reloader::apply_overrides(self).await
    }

    fn waiting_for_restart(&self) -> Vec<RestartChange> {
        Reloader::waiting_for_restart(self)
    }

    fn notify(&self, notice: crate::alerts::Notice) -> bool {
        self.live.alerts.notify(notice)
    }

    fn alert_health(&self) -> Vec<crate::alerts::ChannelHealth> {
        self.live.alerts.health()
    }
}

/// The audit trail's words for a reload: what was applied, and what waits
/// for a restart (never counted as applied).
fn reload_detail(changed: &[String], waiting: &[RestartChange], failed: &[String]) -> String {
    let is_waiting = |key: &str| waiting.iter().any(|w| w.key == key);
    let applied: Vec<&str> = changed
        .iter()
        .map(String::as_str)
        .filter(|key| !is_waiting(key) || *key == "listen")
        .filter(|key| !failed.iter().any(|f| f.starts_with(*key)))
        .map(|key| {
            if key == "listen" && is_waiting(key) {
                "listen (profiles of the addresses in use)"
            } else {
                key
            }
        })
        .collect();
    let mut detail = if applied.is_empty() {
        "applied: nothing".to_string()
    } else {
        format!("applied: {}", applied.join(", "))
    };
    if !waiting.is_empty() {
        let words: Vec<String> = waiting.iter().map(ToString::to_string).collect();
        detail.push_str("; waiting for a restart: ");
        detail.push_str(&words.join("; "));
    }
    if !failed.is_empty() {
        detail.push_str("; not applied: ");
        detail.push_str(&failed.join("; "));
    }
    detail
}

/// What the upstream resolver is built from; equal keys keep its cache.
fn upstream_key(config: &Config) -> String {
    let servers: Vec<String> = config
        .upstream
        .iter()
        .map(|u| {
            format!(
                "{} {:?} {:?} {:?} {:?}",
                u.address.get_ref(),
                u.protocol,
                u.tls_name,
                u.https_path,
                u.ca_file.as_ref().map(|p| config.resolve_path(p))
            )
        })
        .collect();
    // A renewed trust anchor (the list updater's) rebuilds the validator.
    let anchor =
        (config.resolver.dnssec_mode() == crate::config::DnssecMode::Validate).then(|| {
            let path = crate::dns::resolve::root_files::trust_anchor_path(config);
            let changed = std::fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .ok();
            (path, changed)
        });
    format!("{servers:?} {:?} {anchor:?}", config.resolver)
}

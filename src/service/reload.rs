//! Keeps the running settings current: reloads the config and the lists on
//! SIGHUP or when one of their files changes, compiling off the query path and
//! swapping atomically. A bad config or a failed compile keeps what is running.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;

use crate::admin::AdminStore;
use crate::config::Config;
use crate::dns::resolve::pipeline::Pipeline;
use crate::journal::{AuditEntry, Journal};
use crate::metrics::Metrics;
use crate::policy::overrides::OverrideSet;

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
    ) -> Reloader {
        Reloader {
            pipeline,
            journal,
            metrics,
            config: Mutex::new(config),
        }
    }

    /// The config in force.
    pub async fn config(&self) -> Config {
        self.config.lock().await.clone()
    }

    /// Reads the config again (if it came from a file), compiles the lists
    /// if they changed, and puts the result in force.
    pub async fn reload(&self, why: &str) -> ReloadOutcome {
        let mut current = self.config.lock().await;
        let config = match &current.origin.path {
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
        let (config, needs_restart) = align_listeners(&current, config);
        for change in &needs_restart {
            tracing::warn!("{change}");
        }
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
        let upstream = (upstream_key(&config) == upstream_key(&current))
            .then(|| self.pipeline.settings().upstream.clone());
        match settings::build_settings(&config, lists, upstream, &self.metrics) {
            Ok(settings) => {
                self.pipeline.swap(settings);
                let changed = current.changed_sections(&config);
                if !changed.is_empty() {
                    let mut detail = format!("changed: {}", changed.join(", "));
                    for change in &needs_restart {
                        detail.push_str("; ");
                        detail.push_str(change);
                    }
                    self.journal.record_audit(AuditEntry {
                        at_unix_ms: crate::clock::now_unix_ms(),
                        actor: format!("config file {} ({why})", config.origin.display_name),
                        action: "config reloaded".into(),
                        detail,
                        reason: None,
                    });
                }
                *current = config;
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

    /// Rebuilds the policy from the config and lists in force, so that an
    /// allow/deny entry made on the status page applies at once.
    pub async fn apply_local_rules(&self) -> Result<(), String> {
        let current = self.config.lock().await;
        let running = self.pipeline.settings();
        let settings = settings::build_settings(
            &current,
            running.policy.lists.clone(),
            Some(running.upstream.clone()),
            &self.metrics,
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
            self.reload(why).await;
            seen = self.watched_files().await;
        }
    }

    /// The config file and every list file, with their modification times.
    async fn watched_files(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        let config = self.config.lock().await;
        let mut paths: Vec<PathBuf> = config.origin.path.iter().cloned().collect();
        paths.extend(settings::list_sources(&config).into_iter().map(|s| s.path));
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
}

/// The new config's `[[listen]]` blocks in the order the running
/// listeners were bound, so a listener's profile follows its address and
/// never its place in the file. Listening on a new address, or no longer
/// on an old one, needs a restart: until then a bound address missing from
/// the new config keeps its old block (and so its old profile: never a
/// looser one by accident), and a new address waits. Each such change is
/// returned in words, for the log and the audit trail.
fn align_listeners(running: &Config, mut new: Config) -> (Config, Vec<String>) {
    let mut needs_restart = Vec::new();
    let mut aligned = Vec::with_capacity(running.listen.len());
    // An address given twice (port 0 in tests) pairs its blocks in order.
    let mut taken = vec![false; new.listen.len()];
    for bound in &running.listen {
        let address = bound.address.get_ref();
        let same = new
            .listen
            .iter()
            .enumerate()
            .position(|(i, l)| !taken[i] && l.address.get_ref() == address);
        match same {
            Some(i) => {
                taken[i] = true;
                aligned.push(new.listen[i].clone());
            }
            None => {
                needs_restart.push(format!(
                    "listen address {address} was removed from the config: it keeps answering with its old profile until Lollipop is restarted"
                ));
                aligned.push(bound.clone());
            }
        }
    }
    let unbound = new.listen.iter().zip(&taken).filter(|(_, taken)| !**taken);
    for (listen, _) in unbound {
        needs_restart.push(format!(
            "listen address {} is new: restart Lollipop to listen on it",
            listen.address.get_ref()
        ));
    }
    new.listen = aligned;
    (new, needs_restart)
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
    format!("{servers:?} {:?}", config.resolver)
}

//! Start-up and the commands' shared work: compile the lists when they are
//! missing or stale, build the policy, and run the resolver until stopped.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::admin::AdminStore;
use crate::alerts::feed::AlertFeed;
use crate::alerts::{AlertConfig, Alerter};
use crate::config::{Config, parse_upstream_address};
use crate::dns::pipeline::{Pipeline, Settings};
use crate::dns::server::DnsServers;
use crate::dns::upstream::Upstream;
use crate::journal::{DeviceDirectory, Journal, JournalConfig, LookupTally};
use crate::lists::compile::{CompileReport, SourceSpec, compile};
use crate::lists::store::CompiledLists;
use crate::metrics::{Metrics, ProfileCounters};
use crate::policy::Policy;
use crate::policy::rules::DomainRule;
use crate::policy::safesearch::SafeSearchMap;
use crate::reload::Reloader;
use crate::web::WebServers;

/// What the compiler reads: every configured list that is on disk. A
/// download not fetched yet is left out until it is.
pub fn list_sources(config: &Config) -> Vec<SourceSpec> {
    crate::lists::acquire::sources::configured(config)
        .into_iter()
        .filter(|source| source.fetch.is_none() || source.spec.path.exists())
        .map(|source| source.spec)
        .collect()
}

/// Compiles every configured list into the data directory.
pub fn compile_lists(config: &Config) -> Result<CompileReport> {
    let out = config.compiled_lists_path();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    for source in crate::lists::acquire::sources::configured(config) {
        if source.fetch.is_some() && !source.spec.path.exists() {
            tracing::warn!(
                "list '{}' has not been downloaded yet, so it is left out: run `lollipop lists update`",
                source.spec.name
            );
        }
    }
    Ok(compile(&list_sources(config), &out)?)
}

/// Whether `lists`, compiled at `compiled`, no longer match the config or
/// their sources (a source renamed, re-categorised, moved, or modified since).
pub fn is_stale(config: &Config, lists: &CompiledLists, compiled: &Path) -> bool {
    let compiled_modified = std::fs::metadata(compiled).and_then(|m| m.modified()).ok();
    let sources = list_sources(config);
    let manifest = lists.manifest();
    if manifest.sources.len() != sources.len() {
        return true;
    }
    sources.iter().zip(&manifest.sources).any(|(wanted, had)| {
        let changed_since = std::fs::metadata(&wanted.path)
            .and_then(|m| m.modified())
            .ok()
            .zip(compiled_modified)
            .is_none_or(|(source, compiled)| source > compiled);
        wanted.name != had.name
            || wanted.category != had.category
            || wanted.path != had.path
            || wanted.format != had.format
            || wanted.hidden != had.hidden
            || changed_since
    })
}

/// The compiled lists for `config`, compiling first when they are missing
/// or stale. A failed compile keeps the last good file if there is one.
pub fn load_lists(config: &Config) -> Result<Arc<CompiledLists>> {
    let path = config.compiled_lists_path();
    let mut last_good = CompiledLists::open(&path).ok();
    if let Some(fresh) = last_good.take_if(|lists| !is_stale(config, lists, &path)) {
        return Ok(Arc::new(fresh));
    }
    match compile_lists(config) {
        Ok(report) => tracing::info!("lists compiled: {report}"),
        Err(error) => match last_good {
            Some(lists) => {
                tracing::warn!("lists could not be compiled, keeping the last good set: {error:#}");
                return Ok(Arc::new(lists));
            }
            None => return Err(error.context("no compiled lists to fall back on")),
        },
    }
    let lists = CompiledLists::open(&path)
        .with_context(|| format!("cannot open the compiled lists {}", path.display()))?;
    Ok(Arc::new(lists))
}

/// The policy for `config` over `lists`, with the allow/deny entries made
/// on the status page.
pub fn build_policy(config: &Config, lists: Arc<CompiledLists>) -> Result<Policy> {
    let safe_search = Arc::new(SafeSearchMap::embedded()?);
    Ok(Policy::build(
        config,
        lists,
        safe_search,
        &local_rules(config),
    )?)
}

/// The status page's allow/deny entries in force. An unreadable admin
/// database is reported and filtering goes on with the config's own entries.
pub fn local_rules(config: &Config) -> Vec<DomainRule> {
    let path = config.admin_db_path();
    if !path.exists() {
        return Vec::new();
    }
    match AdminStore::open(&path).and_then(|store| store.live_rules()) {
        Ok(rules) => rules,
        Err(error) => {
            tracing::error!("the status page's allow/deny entries are not applied: {error}");
            Vec::new()
        }
    }
}

/// The settings for `config`, reusing `upstream` when given (its cache and
/// connections survive a reload that did not change the upstreams).
pub fn build_settings(
    config: &Config,
    lists: Arc<CompiledLists>,
    upstream: Option<Arc<Upstream>>,
    metrics: &Metrics,
) -> Result<Settings> {
    let policy = build_policy(config, lists)?;
    let upstream = match upstream {
        Some(upstream) => upstream,
        None => Arc::new(Upstream::new(config, metrics.upstream.clone())?),
    };
    Ok(Settings {
        policy,
        upstream,
        blocking: config.blocking.clone(),
        circumvention: config.circumvention,
        listeners: config
            .listen
            .iter()
            .map(|l| l.address.get_ref().clone())
            .collect(),
        // Filled in by the pipeline when it puts these settings in force.
        counters: ProfileCounters::default(),
        lookups: LookupTally::default(),
    })
}

/// Where device names come from: the config's `[[devices]]` and leases.
fn device_directory(config: &Config) -> DeviceDirectory {
    let mut devices = DeviceDirectory::new(config.devices.clone());
    for leases in &config.log.leases {
        devices = devices.with_leases(leases.format, config.resolve_path(&leases.path));
    }
    if let Some(router) = &config.log.router
        && let Ok(address) = parse_upstream_address(router.get_ref(), 53)
    {
        devices = devices.with_reverse_lookup(crate::journal::reverse::router_lookup(address));
    }
    devices
}

/// Starts the alerter when an email or webhook is configured.
fn start_alerts(config: &Config, journal: &Journal) -> Result<Option<AlertFeed>> {
    let alerts = &config.alerts;
    if alerts.email.is_none() && alerts.webhook.is_none() {
        return Ok(None);
    }
    let categories: Vec<String> = match &alerts.categories {
        Some(names) => names.iter().map(|n| n.get_ref().clone()).collect(),
        None => crate::config::embedded_catalogue()
            .map(|c| c.alert_categories().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let mut alert_config = AlertConfig::new(alerts.school_name.clone());
    alert_config.categories = categories.clone();
    alert_config.email = alerts.email.clone();
    alert_config.webhook = alerts.webhook.clone();
    alert_config.time_zone = config.log.time_zone.name().to_string();
    alert_config.rate_window = std::time::Duration::from_secs(alerts.rate_window_minutes * 60);
    alert_config
        .validate()
        .context("the [alerts] settings are not usable")?;
    let (alerter, task) = Alerter::start(alert_config);
    tokio::spawn(task);
    let (feed, task) = AlertFeed::start(
        alerter,
        device_directory(config),
        categories,
        journal.clone(),
    );
    tokio::spawn(task);
    Ok(Some(feed))
}

/// Opens the block log and starts its writer task (inside the runtime).
fn open_journal(config: &Config) -> Result<Journal> {
    let path = config.journal_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log's directory {}", dir.display()))?;
    }
    let mut journal_config = JournalConfig::new(&path);
    journal_config.full_log = config.log.full_query_log;
    journal_config.blocked_retention_days = config.log.blocked_retention_days;
    journal_config.full_retention_days = config.log.full_retention_days;
    journal_config.time_zone = config.log.time_zone;
    let (journal, task) = Journal::open(journal_config, device_directory(config))
        .with_context(|| format!("cannot open the block log {}", path.display()))?;
    tokio::spawn(task.run());
    Ok(journal)
}

/// A resolver that is answering.
pub struct Running {
    pub servers: DnsServers,
    /// The status page, unless `[web] enabled = false`.
    pub web: Option<WebServers>,
    pub pipeline: Arc<Pipeline>,
    pub reloader: Arc<Reloader>,
}

/// Assembles the resolver and starts answering. Must run inside a Tokio
/// runtime (the listeners are Tokio sockets).
pub fn start(config: Config) -> Result<Running> {
    let lists = load_lists(&config)?;
    let metrics = Arc::new(Metrics::default());
    let settings = build_settings(&config, lists, None, &metrics)?;
    let journal = open_journal(&config)?;
    let alerts = start_alerts(&config, &journal)?;
    let pipeline = Arc::new(Pipeline::new(
        settings,
        journal,
        alerts,
        config.log.full_query_log,
        metrics,
    ));
    let servers = DnsServers::start(&config, pipeline.clone())?;
    let web_enabled = config.web.enabled;
    let reloader = Arc::new(Reloader::new(config.clone(), pipeline.clone()));
    if let Ok(rows) = AdminStore::open(&config.admin_db_path()).and_then(|s| s.live_overrides()) {
        pipeline.set_overrides(crate::policy::overrides::OverrideSet::new(&rows));
    }
    tracing::info!("Lollipop is answering");
    // DNS matters more than the page: a port taken by another web server
    // is reported, and the resolver answers on.
    let web = if web_enabled {
        match WebServers::start(&config, pipeline.clone(), reloader.clone()) {
            Ok(web) => Some(web),
            Err(error) => {
                tracing::error!("the status page is not running: {error:#}");
                None
            }
        }
    } else {
        None
    };
    Ok(Running {
        servers,
        web,
        pipeline,
        reloader,
    })
}

/// Runs the resolver until `shutdown` completes, reloading on SIGHUP and
/// when the config or a list file changes.
pub async fn serve(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let running = start(config)?;
    let watcher = tokio::spawn(running.reloader.clone().watch());
    let updater = tokio::spawn(crate::updates::run_schedule(running.reloader.clone()));
    let reports = tokio::spawn(crate::report::run_weekly(running.reloader.clone()));
    shutdown.await;
    tracing::info!("stopping");
    watcher.abort();
    updater.abort();
    reports.abort();
    if let Some(web) = running.web {
        web.shutdown().await;
    }
    running.servers.shutdown().await;
    // Whatever is still queued for the log gets a moment to reach the disk.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        running.pipeline.journal().flush(),
    )
    .await;
    Ok(())
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

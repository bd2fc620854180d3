//! The running service: assembles the resolver from a config (lists,
//! policy and settings built by [`settings`], the block log, alerts, the
//! DNS listeners and the status page), starts the background
//! [`schedules`] and the [`reload`] watcher beside it, and runs until
//! stopped. Only the command line (and `main`) sits above it.

mod health;
pub mod live;
pub mod reload;
pub mod schedules;
pub mod settings;

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::admin::AdminStore;
use crate::clock::Clock;
use crate::config::{Config, parse_upstream_address};
use crate::dns::resolve::pipeline::Pipeline;
use crate::dns::resolve::recorder::Recorder;
use crate::dns::transport::listeners::DnsServers;
use crate::journal::{DeviceDirectory, Journal, JournalConfig, JournalError};
use crate::metrics::Metrics;
use crate::web::WebServers;

use live::{LiveAlerts, LiveParts};
use reload::Reloader;
use schedules::Sweeper;
use settings::{build_settings, load_lists};

/// Where device names come from: the config's `[[devices]]` and leases.
pub(crate) fn device_directory(config: &Config) -> DeviceDirectory {
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

/// Opens the block log and starts its writer task (inside the runtime).
fn open_journal(config: &Config, clock: &Clock) -> Result<Journal> {
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
    journal_config.clock = clock.clone();
    let (journal, task, set_aside) = match Journal::open(
        journal_config.clone(),
        device_directory(config),
    ) {
        Ok((journal, task)) => (journal, task, None),
        // A block log damaged by a power cut, or a file that is not ours,
        // must not stop DNS: it is kept for inspection and a fresh one
        // started.
        Err(error) if is_damaged(&error) => {
            let kept = set_aside(&path, clock).with_context(|| {
                format!("cannot move the damaged block log {} aside", path.display())
            })?;
            tracing::error!(
                "the block log {} could not be read ({error}): it was moved to {} and a fresh log started",
                path.display(),
                kept.display()
            );
            let (journal, task) = Journal::open(journal_config, device_directory(config))
                .with_context(|| format!("cannot start a fresh block log {}", path.display()))?;
            (journal, task, Some((kept, error.to_string())))
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("cannot open the block log {}", path.display())));
        }
    };
    tokio::spawn(task.run());
    if let Some((kept, error)) = set_aside {
        journal.record_audit(crate::journal::AuditEntry {
            at_unix_ms: clock.now_unix_ms(),
            actor: "Lollipop".into(),
            action: "block log set aside".into(),
            detail: format!(
                "the block log could not be read ({error}); it was kept as {} and a fresh log started",
                kept.display()
            ),
            reason: None,
        });
    }
    Ok(journal)
}

/// Whether the block log's file is damaged or not a block log at all (as
/// opposed to a disk or permission fault, which moving it would not mend).
fn is_damaged(error: &JournalError) -> bool {
    match error {
        JournalError::NotAJournal(_) | JournalError::SchemaMismatch { .. } => true,
        JournalError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
        ),
        JournalError::Sqlite(_) | JournalError::Io(_) => false,
    }
}

/// Renames the block log (and its WAL and shared-memory files) to
/// `NAME.damaged-TIME`, keeping it for inspection; returns the new path.
fn set_aside(path: &std::path::Path, clock: &Clock) -> std::io::Result<std::path::PathBuf> {
    let stamp = clock.now_unix_secs();
    let mut kept = path.as_os_str().to_owned();
    kept.push(format!(".damaged-{stamp}"));
    let kept = std::path::PathBuf::from(kept);
    std::fs::rename(path, &kept)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            let mut moved = kept.as_os_str().to_owned();
            moved.push(suffix);
            std::fs::rename(&side, std::path::PathBuf::from(moved))?;
        }
    }
    Ok(kept)
}

/// Keeps a copy of the config the service started with in the data
/// directory, so `lollipop config check` can say which changes in the file
/// would wait for a restart. A copy that cannot be written only costs that.
fn keep_started_with(config: &Config) {
    let path = crate::config::restart::started_with_path(config);
    if let Err(error) = std::fs::write(&path, &config.origin.text) {
        tracing::warn!(
            "could not keep a copy of the config in force at {}: {error}; `lollipop config check` will not know what waits for a restart",
            path.display()
        );
    }
}

/// A resolver that is answering.
pub struct Running {
    pub servers: DnsServers,
    /// The status page, unless `[web] enabled = false`.
    pub web: Option<WebServers>,
    pub pipeline: Arc<Pipeline>,
    /// The block log the pipeline's recorder writes to.
    pub journal: Journal,
    /// The counters behind `/metrics`.
    pub metrics: Arc<Metrics>,
    pub reloader: Arc<Reloader>,
    /// What "now" is for the block log's retention and the schedules.
    pub clock: Clock,
    /// Ends staff overrides on time while the status page runs; stops when
    /// dropped.
    override_sweeper: Option<Sweeper>,
}

/// Assembles the resolver and starts answering. Must run inside a Tokio
/// runtime (the listeners are Tokio sockets).
pub fn start(config: Config) -> Result<Running> {
    start_with_clock(config, Clock::system())
}

/// [`start`], with "now" read from `clock` by the block log's retention
/// and the override sweeper (a test sets the time instead of waiting).
pub fn start_with_clock(config: Config, clock: Clock) -> Result<Running> {
    health::install_panic_hook();
    let lists = load_lists(&config)?;
    let metrics = Arc::new(Metrics::default());
    let settings = build_settings(&config, lists, None, &metrics)?;
    let journal = open_journal(&config, &clock)?;
    let alerts = Arc::new(LiveAlerts::default());
    alerts.start(&config, &journal)?;
    let recorder = Recorder::new(
        journal.clone(),
        metrics.clone(),
        clock.clone(),
        config.log.full_query_log,
    )
    .with_output(alerts.output());
    let pipeline = Arc::new(Pipeline::new(settings, recorder, clock.clone()));
    let servers = DnsServers::start(&config, pipeline.clone(), metrics.clone())?;
    let web_enabled = config.web.enabled;
    keep_started_with(&config);
    let live = LiveParts {
        access: servers.access.clone(),
        journal: journal.clone(),
        alerts,
        web: std::sync::OnceLock::new(),
    };
    let reloader = Arc::new(Reloader::new(
        config.clone(),
        pipeline.clone(),
        journal.clone(),
        metrics.clone(),
        live,
    ));
    if let Ok(rows) = AdminStore::open(&config.admin_db_path()).and_then(|s| s.live_overrides()) {
        pipeline.set_overrides(crate::policy::overrides::OverrideSet::new(&rows));
    }
    tracing::info!("Lollipop is answering");
    // DNS matters more than the page: a port taken by another web server
    // is reported, and the resolver answers on.
    let web = if web_enabled {
        let recorder = (journal.clone(), metrics.clone());
        match WebServers::start(
            &config,
            pipeline.clone(),
            recorder,
            reloader.clone(),
            clock.clone(),
        ) {
            Ok(web) => {
                reloader.attach_web(web.state.clone());
                Some(web)
            }
            Err(error) => {
                tracing::error!("the status page is not running: {error:#}");
                None
            }
        }
    } else {
        None
    };
    let override_sweeper = web
        .as_ref()
        .map(|web| Sweeper::start(web.state.clone(), clock.clone()));
    Ok(Running {
        servers,
        web,
        pipeline,
        journal,
        metrics,
        reloader,
        clock,
        override_sweeper,
    })
}

/// Runs the resolver until `shutdown` completes, reloading on SIGHUP and
/// when the config or a list file changes.
pub async fn serve(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    health::raise_descriptor_limit();
    let mut running = start(config)?;
    health::notify_ready_and_watch(running.servers.addresses.first().copied());
    let watcher = tokio::spawn(running.reloader.clone().watch());
    let updater = tokio::spawn(schedules::run_list_updates(running.reloader.clone()));
    let reports = tokio::spawn(schedules::run_weekly_report(
        running.reloader.clone(),
        running.clock.clone(),
    ));
    shutdown.await;
    tracing::info!("stopping");
    watcher.abort();
    updater.abort();
    reports.abort();
    // The sweeper stops with the status page, as it always has.
    drop(running.override_sweeper.take());
    if let Some(web) = running.web {
        web.shutdown().await;
    }
    running.servers.shutdown().await;
    // Whatever is still queued for the log gets a moment to reach the disk.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), running.journal.flush()).await;
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

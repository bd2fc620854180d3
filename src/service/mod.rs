//! The running service: assembles the resolver from a config (lists,
//! policy and settings built by [`settings`], the block log, alerts, the
//! DNS listeners and the status page), starts the background
//! [`schedules`] and the [`reload`] watcher beside it, and runs until
//! stopped. Only the command line (and `main`) sits above it.

pub mod follow;
mod health;
pub mod live;
pub mod reload;
pub mod schedules;
pub mod school_time;
pub mod settings;
mod storage;
mod trust;

use std::sync::Arc;

use anyhow::Result;

use crate::admin::AdminStore;
use crate::clock::Clock;
use crate::config::{Config, parse_upstream_address};
use crate::dns::resolve::pipeline::Pipeline;
use crate::dns::resolve::recorder::Recorder;
use crate::dns::transport::listeners::DnsServers;
use crate::journal::{DeviceDirectory, Journal};
use crate::metrics::Metrics;
use crate::web::WebServers;

use live::{LiveAlerts, LiveParts};
use reload::Reloader;
use schedules::Sweeper;
use settings::load_lists;

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
    /// Puts the rules of time in force at each boundary; stops when dropped.
    _school_time: school_time::Timer,
    /// What this box knows of its HA pair (alone: no role).
    pub cluster: Arc<crate::cluster::ClusterState>,
    /// On a secondary, follows the primary; stops when dropped.
    _follower: Option<follow::Follower>,
    /// The trust's central log, when `[ship]` names one; stops when dropped.
    pub shippers: Option<crate::ship::Shippers>,
}

/// Assembles the resolver and starts answering. Must run inside a Tokio
/// runtime (the listeners are Tokio sockets).
pub fn start(config: Config) -> Result<Running> {
    start_with_clock(config, Clock::from_env())
}

/// [`start`], with "now" read from `clock` by the block log's retention
/// and the override sweeper (a test sets the time instead of waiting).
pub fn start_with_clock(config: Config, clock: Clock) -> Result<Running> {
    health::install_panic_hook();
    let cluster = Arc::new(crate::cluster::ClusterState::from_config(&config));
    // A secondary answers with the primary's settings it last had.
    let (config, followed) = follow::at_start(config, &cluster, &clock);
    let lists = load_lists(&config)?;
    let metrics = Arc::new(Metrics::default());
    let admin_set_aside = storage::open_admin(&config, &clock);
    let settings = settings::build_settings_at(&config, lists, None, &metrics, &clock)?;
    let health = crate::lists::acquire::health::health(
        &config,
        Some(settings.policy.lists.manifest()),
        crate::clock::now_unix_secs(),
    );
    let gaps = crate::lists::safeguards::gaps(&config, &health);
    for gap in &gaps {
        tracing::warn!("safeguard off: {}", gap.text);
    }
    let journal = storage::open_journal(&config, &clock, device_directory(&config))?;
    let alerts = Arc::new(LiveAlerts::default());
    alerts.start(&config, &journal)?;
    tell_dsl_about_gaps(&alerts, &gaps, clock.now_unix_ms());
    storage::tell_school_about_damage(&journal, alerts.clone(), config.log.time_zone);
    if let Some(set_aside) = &admin_set_aside {
        storage::record_admin_set_aside(set_aside, &journal, &alerts, config.log.time_zone);
    }
    let recorder =
        Recorder::new(journal.clone(), metrics.clone(), clock.clone()).with_output(alerts.output());
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
    reloader.set_followed(followed);
    if let Ok(rows) = AdminStore::open(&config.admin_db_path()).and_then(|s| s.live_overrides()) {
        let rows = pipeline.settings().policy.unlocks_in_force(rows);
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
            cluster.clone(),
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
    let school_time = school_time::Timer::start(reloader.clone(), journal.clone(), clock.clone());
    let follower =
        follow::Follower::start(reloader.clone(), cluster.clone(), &config, clock.clone());
    let shippers = trust::start_shipping(&config, &pipeline, &journal, &metrics);
    Ok(Running {
        cluster,
        _follower: follower,
        shippers,
        _school_time: school_time,
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
    let time_saver = tokio::spawn(schedules::save_the_time_hourly(
        running.reloader.clone(),
        running.clock.clone(),
    ));
    shutdown.await;
    tracing::info!("stopping");
    time_saver.abort();
    schedules::save_the_time(&running.reloader.config().await, &running.clock);
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

/// At start, the safeguarding lead is told of every serious gap (a locked
/// category with no feed, an alerting category that holds no sites), by
/// whichever alert channel there is.
fn tell_dsl_about_gaps(alerts: &LiveAlerts, gaps: &[crate::lists::safeguards::Gap], now: i64) {
    let serious: Vec<&str> = gaps
        .iter()
        .filter(|gap| gap.severity == crate::lists::safeguards::Severity::Bad)
        .map(|gap| gap.text.as_str())
        .collect();
    if serious.is_empty() {
        return;
    }
    alerts.notify(crate::alerts::Notice {
        headline: "some safeguards are off".into(),
        text: serious.join("\n"),
        at_unix_ms: now,
    });
}

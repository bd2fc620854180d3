//! Builds what the resolver runs with from a config: the compiled lists
//! (compiling them when missing or stale), the policy with the status
//! page's allow/deny entries, and the pipeline's settings. Start-up, reload
//! and the commands all build through here.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::admin::AdminStore;
use crate::clock::Clock;
use crate::config::{Config, parse_network};
use crate::dns::resolve::rebinding::RebindingGuard;
use crate::dns::resolve::settings::Settings;
use crate::dns::resolve::trusted_clock::TrustedClock;
use crate::dns::resolve::upstream::CachedUpstream;
use crate::dns::resolve::upstream_for;
use crate::journal::LookupTally;
use crate::lists::compile::{CompileReport, SourceSpec, compile};
use crate::lists::store::CompiledLists;
use crate::metrics::{Metrics, ProfileCounters};
use crate::policy::Policy;
use crate::policy::rules::DomainRule;
use crate::policy::safesearch::SafeSearchMap;
use crate::policy::time_rules::TimeState;

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
    build_policy_at(config, lists, &Clock::from_env())
}

/// [`build_policy`] with the rules of time in force at `clock`'s now.
pub fn build_policy_at(
    config: &Config,
    lists: Arc<CompiledLists>,
    clock: &Clock,
) -> Result<Policy> {
    let safe_search = Arc::new(SafeSearchMap::embedded()?);
    let time = Arc::new(time_state_now(config, clock));
    Ok(Policy::build_at(
        config,
        lists,
        safe_search,
        &local_rules(config),
        time,
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
        // Filtering must not loosen: the deny entries of the last copy
        // stay in force; allow entries are not taken from it.
        Err(error) => {
            let copy = crate::admin::copy::copy_path(&path);
            match crate::admin::copy::read_denies(&copy) {
                Ok(denies) => {
                    tracing::error!(
                        "the status page's allow/deny entries cannot be read ({error}); the {} deny entries of {} are applied, allow entries are not",
                        denies.len(),
                        copy.display()
                    );
                    crate::admin::copy::denies_as_rules(&denies)
                }
                Err(why) => {
                    tracing::error!(
                        "the status page's allow/deny entries are not applied: {error}; {why}"
                    );
                    Vec::new()
                }
            }
        }
    }
}

/// The settings for `config`, reusing `upstream` when given (its cache and
/// connections survive a reload that did not change the upstreams).
pub fn build_settings(
    config: &Config,
    lists: Arc<CompiledLists>,
    upstream: Option<Arc<CachedUpstream>>,
    metrics: &Metrics,
) -> Result<Settings> {
    build_settings_at(config, lists, upstream, metrics, &Clock::from_env())
}

/// As [`build_settings`], a new upstream reading "now" from `clock` (for
/// whether the system clock can be trusted yet).
pub fn build_settings_at(
    config: &Config,
    lists: Arc<CompiledLists>,
    upstream: Option<Arc<CachedUpstream>>,
    metrics: &Metrics,
    clock: &Clock,
) -> Result<Settings> {
    let policy = build_policy_at(config, lists, clock)?;
    let upstream = match upstream {
        Some(upstream) => upstream,
        None => Arc::new(upstream_for(config, metrics.upstream.clone(), clock)?),
    };
    Ok(Settings {
        policy,
        upstream,
        // Checked by `Config::validate`; a network that does not parse
        // exempts nobody. A trusted forwarder (a domain controller asking
        // for the whole school) is held to no share either.
        upstream_share_exempt: config
            .resolver
            .share_exempt_networks
            .iter()
            .chain(&config.limits.trusted_forwarders)
            .filter_map(|network| parse_network(network.get_ref()).ok())
            .collect(),
        rebinding: RebindingGuard::from_config(config, metrics.upstream.clone()),
        blocking: config.blocking.clone(),
        circumvention: config.circumvention,
        full_query_log: config.log.full_query_log,
        tcp_idle_timeout: std::time::Duration::from_secs(config.server.tcp_idle_timeout_secs),
        limits: config.limits.query_limits(),
        listeners: config
            .listen
            .iter()
            .map(|l| Arc::from(l.address.get_ref().as_str()))
            .collect(),
        // Filled in by the pipeline when it puts these settings in force.
        counters: ProfileCounters::default(),
        lookups: LookupTally::default(),
    })
}

/// The rules of time for `config` now, with a fresh look at whether the
/// clock can be believed (the timer in `school_time` keeps them current
/// afterwards).
fn time_state_now(config: &Config, clock: &Clock) -> TimeState {
    let trusted = TrustedClock::from_config(config, clock.clone());
    TimeState::compute(config, clock.now_unix_ms(), trusted.is_trusted())
}

//! `lollipop lists status`: the health of the lists in words a technician
//! reads: for each list its kind, entries, bad lines, last successful
//! download, age and licence; when recursing, the root hints' and the
//! DNSSEC trust anchor's age and renewal; with a school calendar, the bank
//! holidays file in force and its renewal; with a trust, its policy bundle;
//! with a trust's central log (`[ship]`), what waits to be sent and what
//! retention deleted unsent.

use std::fmt::Write;

use crate::clock::{age, now_unix_secs};
use crate::config::{Config, DnssecMode, ResolverMode};
use crate::dns::resolve::recursor::{read_root_hints, read_trust_anchor, trust_anchor_path};
use crate::lists::acquire::health::{Freshness, health};
use crate::lists::acquire::sources::downloads_dir;
use crate::lists::acquire::update::{FetchSpec, is_stale, load_state};
use crate::lists::store::CompiledLists;
use crate::updates::bank_holidays as holidays_renewal;
use crate::updates::trust_anchor as renewal;

pub fn lists_status(config: &Config) -> String {
    let compiled = CompiledLists::open(&config.compiled_lists_path()).ok();
    let now = now_unix_secs();
    let mut out = String::new();
    if let Some(lists) = &compiled {
        let manifest = lists.manifest();
        let _ = writeln!(
            out,
            "compiled: {} domains, {} ({} lists)",
            lists.domain_count(),
            age(now.saturating_sub(manifest.compiled_at)),
            manifest.sources.len()
        );
    } else {
        let _ = writeln!(out, "compiled: none yet (run `lollipop lists compile`)");
    }
    let manifest = compiled.as_ref().map(CompiledLists::manifest);
    for list in health(config, manifest, now) {
        let _ = writeln!(
            out,
            "\n{} ({}, category {})",
            list.name,
            list.kind.as_str(),
            list.category
        );
        match &list.compiled {
            Some(info) => {
                let _ = writeln!(
                    out,
                    "  entries: {}, bad lines: {}, unsupported: {}, url-level: {}",
                    info.entries, info.bad_lines, info.unsupported, info.url_level
                );
            }
            None => {
                let _ = writeln!(out, "  not in the compiled set yet");
            }
        }
        match &list.freshness {
            Freshness::Download {
                last_success_ago,
                last_error,
                stale,
            } => {
                let last = last_success_ago.map(age).unwrap_or_else(|| "never".into());
                let _ = writeln!(out, "  last download: {last}");
                if let Some(error) = last_error {
                    let _ = writeln!(out, "  last error: {error}");
                }
                if *stale {
                    let _ = writeln!(
                        out,
                        "  WARNING: stale: no successful download for over three update periods"
                    );
                }
            }
            Freshness::File {
                changed_ago: Some(seconds),
                ..
            } => {
                let _ = writeln!(out, "  file changed: {}", age(*seconds));
            }
            Freshness::File {
                changed_ago: None,
                path,
            } => {
                let _ = writeln!(out, "  WARNING: file missing: {}", path.display());
            }
        }
        if let Some(licence) = &list.licence {
            let _ = writeln!(out, "  licence: {licence}");
        }
    }
    recursion_files(config, now, &mut out);
    bank_holidays(config, now, &mut out);
    trust_bundle(config, now, &mut out);
    central_log(config, &mut out);
    out
}

/// The trust's policy bundle: which one is in force, and a refused or
/// failed download (the last good bundle stays meanwhile).
fn trust_bundle(config: &Config, now: u64, out: &mut String) {
    let Some((words, needs_action)) = crate::updates::trust_bundle::status(config, now) else {
        return;
    };
    let _ = writeln!(out, "\n{}:", crate::updates::trust_bundle::LABEL);
    if let Some(trust) = &config.trust {
        let _ = writeln!(out, "  from: {}", trust.bundle_url.get_ref());
    }
    let warning = if needs_action { "WARNING: " } else { "" };
    let _ = writeln!(out, "  {warning}{words}");
}

/// The files recursion and validation start from: where, how old, and
/// whether they read; the root hints when recursing, the trust anchor
/// (and its renewal) when validating in either mode.
fn recursion_files(config: &Config, now: u64, out: &mut String) {
    let lists_dir = config.resolve_path(&config.server.lists_dir);
    if config.resolver.mode == ResolverMode::Recursive {
        root_hints(config, &lists_dir, now, out);
    }
    if config.resolver.dnssec_mode() != DnssecMode::Validate {
        return;
    }
    trust_anchor(config, now, out);
}

fn changed(path: &std::path::Path, now: u64) -> String {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since| age(now.saturating_sub(since.as_secs())))
        .unwrap_or_else(|| "unknown".into())
}

fn root_hints(config: &Config, lists_dir: &std::path::Path, now: u64, out: &mut String) {
    let changed = |path: &std::path::Path| changed(path, now);
    let hints = config.resolve_path(&config.resolver.root_hints_in(lists_dir));
    let _ = writeln!(
        out,
        "
root hints: {}",
        hints.display()
    );
    match read_root_hints(&hints) {
        Ok(roots) => {
            let _ = writeln!(
                out,
                "  {} root server addresses, file changed: {}",
                roots.len(),
                changed(&hints)
            );
        }
        Err(error) => {
            let _ = writeln!(out, "  WARNING: {error:#}");
        }
    }
}

fn trust_anchor(config: &Config, now: u64, out: &mut String) {
    let changed = |path: &std::path::Path| changed(path, now);
    let anchor = trust_anchor_path(config);
    let _ = writeln!(
        out,
        "
DNSSEC trust anchor: {}",
        anchor.display()
    );
    match read_trust_anchor(&anchor) {
        Ok(keys) => {
            let _ = writeln!(
                out,
                "  {} keys, file changed: {}",
                keys.len(),
                changed(&anchor)
            );
        }
        Err(error) => {
            let _ = writeln!(out, "  WARNING: {error:#}");
        }
    }
    let Some(spec) = renewal::spec(config) else {
        let _ = writeln!(
            out,
            "  not renewed by the list updater (the config names its own file, or trust_anchor_url is empty)"
        );
        return;
    };
    renewal_lines(
        config,
        &spec,
        now,
        "the root's keys have not been checked for over three weeks",
        out,
    );
}

/// Where a file renewed beside the lists comes from, its last successful
/// check, its last error, and whether it is stale.
fn renewal_lines(config: &Config, spec: &FetchSpec, now: u64, stale: &str, out: &mut String) {
    let state = load_state(&downloads_dir(config), &spec.name);
    let checked = state
        .last_success
        .map(|at| age(now.saturating_sub(at)))
        .unwrap_or_else(|| "never".into());
    let _ = writeln!(
        out,
        "  renewed from {}: last successful check {checked}",
        spec.urls.join(", ")
    );
    if let Some(error) = &state.last_error {
        let _ = writeln!(out, "  last error: {error}");
    }
    if is_stale(spec, &state, now) {
        let _ = writeln!(out, "  WARNING: stale: {stale}");
    }
}

/// The bank holidays file the calendar reads: which, how old, what it
/// holds, and its renewal.
fn bank_holidays(config: &Config, now: u64, out: &mut String) {
    let Some(calendar) = &config.calendar else {
        return;
    };
    let in_force = config.bank_holidays_in_force(calendar);
    let _ = writeln!(
        out,
        "\nbank holidays ({}): {} ({}), file changed {}",
        calendar.nation.get_ref(),
        in_force.path.display(),
        in_force.source.words(),
        changed(&in_force.path, now)
    );
    match &in_force.days {
        Ok(days) => {
            let _ = writeln!(out, "  {}", holidays_renewal::summary(days));
        }
        Err(error) => {
            let _ = writeln!(out, "  WARNING: {error}");
        }
    }
    match holidays_renewal::spec(config) {
        Some(spec) => renewal_lines(
            config,
            &spec,
            now,
            "the bank holidays have not been checked for over three weeks",
            out,
        ),
        None => {
            let _ = writeln!(
                out,
                "  not renewed by the list updater (the config names its own file, or bank_holidays_url is empty)"
            );
        }
    }
}

/// The trust's central log (`[ship]`): per destination, the records still
/// waiting in the block log and those retention deleted before they were
/// sent. Read from the block log, so it works while the service runs or not.
fn central_log(config: &Config, out: &mut String) {
    let mut destinations = Vec::new();
    if config.ship.postgres.is_some() {
        destinations.push("postgres");
    }
    if config.ship.syslog.is_some() {
        destinations.push("syslog");
    }
    if destinations.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "
central log: {}",
        config.ship_destinations()
    );
    for destination in destinations {
        match crate::journal::shipping_progress(&config.journal_path(), destination) {
            Ok(progress) => {
                let _ = writeln!(
                    out,
                    "  {destination}: {} records waiting, {} deleted by retention before they were sent",
                    progress.backlog, progress.dropped
                );
                if progress.dropped > 0 {
                    let _ = writeln!(
                        out,
                        "  WARNING: {destination} missed {} records: it was unreachable for longer than the block log keeps them",
                        progress.dropped
                    );
                }
            }
            Err(error) => {
                let _ = writeln!(out, "  {destination}: progress unknown: {error}");
            }
        }
    }
}

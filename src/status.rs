//! The health of the lists in words a technician reads: for each list its
//! kind, entries, bad lines, last successful download, age and licence.

use std::fmt::Write;

use crate::config::Config;
use crate::lists::acquire::sources::downloads_dir;
use crate::lists::acquire::update::{is_stale, load_state};
use crate::lists::store::CompiledLists;
use crate::updates::now_unix;

/// "3 h 12 min ago", "2 days ago".
pub fn age(seconds: u64) -> String {
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h {} min ago", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

pub fn lists_status(config: &Config) -> String {
    let compiled = CompiledLists::open(&config.compiled_lists_path()).ok();
    let store = downloads_dir(config);
    let now = now_unix();
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
    for source in crate::lists::acquire::sources::configured(config) {
        let spec = &source.spec;
        let in_use = compiled.as_ref().and_then(|lists| {
            lists
                .manifest()
                .sources
                .iter()
                .find(|s| s.name == spec.name)
        });
        let kind = match (&source.fetch, spec.hidden) {
            (_, true) => "licensed feed",
            (Some(_), false) => "download",
            (None, false) => "local file",
        };
        let _ = writeln!(out, "\n{} ({kind}, category {})", spec.name, spec.category);
        match in_use {
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
        if let Some(fetch) = &source.fetch {
            let state = load_state(&store, &fetch.name);
            let last = state
                .last_success
                .map(|t| age(now.saturating_sub(t)))
                .unwrap_or_else(|| "never".into());
            let _ = writeln!(out, "  last download: {last}");
            if let Some(error) = &state.last_error {
                let _ = writeln!(out, "  last error: {error}");
            }
            if is_stale(fetch, &state, now) {
                let _ = writeln!(
                    out,
                    "  WARNING: stale: no successful download for over three update periods"
                );
            }
        } else if let Ok(modified) = std::fs::metadata(&spec.path).and_then(|m| m.modified()) {
            let seconds = modified.elapsed().map(|d| d.as_secs()).unwrap_or_default();
            let _ = writeln!(out, "  file changed: {}", age(seconds));
        } else {
            let _ = writeln!(out, "  WARNING: file missing: {}", spec.path.display());
        }
        if let Some(licence) = &source.licence {
            let _ = writeln!(out, "  licence: {licence}");
        }
    }
    out
}

//! `lollipop lists status`: the health of the lists in words a technician
//! reads: for each list its kind, entries, bad lines, last successful
//! download, age and licence.

use std::fmt::Write;

use crate::clock::{age, now_unix_secs};
use crate::config::Config;
use crate::lists::acquire::health::{Freshness, health};
use crate::lists::store::CompiledLists;

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
    out
}

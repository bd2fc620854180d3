//! `lollipop config check`: the file is valid, which safeguards it leaves
//! off (an empty alert category, a locked category with no feed...), and, when Lollipop has run
//! with this data directory, which of the file's changes a reload applies
//! and which wait for a restart (new listening addresses and the like).

use crate::config::Config;
use crate::config::restart::{self, started_with};

/// The report, one finding a line.
pub fn report(file: &Config) -> String {
    let mut out = format!(
        "{}: OK ({} profiles, {} listen addresses, {} lists, {} upstreams)\n",
        file.origin.display_name,
        file.profiles.len(),
        file.listen.len(),
        file.lists.len(),
        file.upstream.len()
    );
    // A secondary runs with the primary's settings: the safeguards and
    // what changed since start are those of what it runs.
    let config = &crate::service::follow::followed_config(file.clone());
    if let Some(cluster) = file.secondary_of() {
        let primary = cluster
            .primary
            .as_ref()
            .map_or("the primary", |url| url.get_ref().as_str());
        if config.origin.text == file.origin.text {
            out.push_str(&format!(
                "This box is a secondary of {primary} and has no usable copy of its settings yet: it runs with this file's own until it follows.\n"
            ));
        } else {
            out.push_str(&format!(
                "This box is a secondary of {primary}: it runs with the primary's settings last followed and this file's own addresses, page and data directory.\n"
            ));
        }
    }
    let gaps = crate::lists::safeguards::gaps(
        config,
        &crate::lists::acquire::health::health(
            config,
            crate::lists::store::CompiledLists::open(&config.compiled_lists_path())
                .ok()
                .as_ref()
                .map(crate::lists::store::CompiledLists::manifest),
            crate::clock::now_unix_secs(),
        ),
    );
    if let Some(bundle) = &config.bundle {
        out.push_str(&format!(
            "{} is in force: profiles {}; schools may add allow entries: {}, deny entries: {}; unlocks: {}\n",
            bundle.describe(),
            bundle.profiles.join(", "),
            yes_no(bundle.local.allow_entries),
            yes_no(bundle.local.deny_entries),
            bundle.local.unlock.as_str()
        ));
        for name in &bundle.replaced {
            out.push_str(&format!(
                "  [profiles.{name}] in this file is not used: the bundle sets that profile\n"
            ));
        }
    }
    if !gaps.is_empty() {
        out.push_str("Safeguards that are off:\n");
        for gap in &gaps {
            let mark = match gap.severity {
                crate::lists::safeguards::Severity::Bad => "NOT PROTECTED",
                crate::lists::safeguards::Severity::Warn => "check",
            };
            out.push_str(&format!("  {mark}: {}\n", gap.text));
        }
    }
    match started_with(config) {
        None => out.push_str(&format!(
            "Lollipop has not started with this data directory ({} is missing), so which changes need a restart is not known.\n",
            restart::started_with_path(config).display()
        )),
        Some(Err(error)) => out.push_str(&format!(
            "The copy of the config Lollipop started with cannot be read ({error}), so which changes need a restart is not known.\n"
        )),
        Some(Ok(running)) => {
            let (_, waiting) = restart::in_force(&running, config.clone());
            let changed = restart::changed_keys(&running, config);
            let applied: Vec<&String> = changed
                .iter()
                .filter(|key| !waiting.iter().any(|w| &w.key == *key))
                .collect();
            if changed.is_empty() && waiting.is_empty() {
                out.push_str("No changes since Lollipop started.\n");
            }
            if !applied.is_empty() {
                out.push_str(&format!(
                    "Changed since Lollipop started, applied on reload: {}\n",
                    applied
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !waiting.is_empty() {
                out.push_str("Needs a restart to take effect (systemctl restart lollipop):\n");
                for change in &waiting {
                    out.push_str(&format!("  {change}\n"));
                }
            }
        }
    }
    out
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

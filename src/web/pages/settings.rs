//! Lists and settings for the technician: each list source with its health,
//! what each profile blocks and who it applies to, and a read-only view of
//! the effective config (secrets hidden).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::admin::users::Right;
use crate::config::{Config, ProfileMode};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, count, render};

pub struct ListView {
    pub name: String,
    pub kind: &'static str,
    pub category: String,
    pub entries: String,
    pub bad_lines: String,
    pub state: String,
    pub healthy: bool,
    pub licence: String,
}

pub struct ProfileView {
    pub name: String,
    pub description: String,
    pub mode: &'static str,
    pub blocked: String,
    pub allowed: String,
    pub safe_search: String,
    pub used_by: String,
}

#[derive(Template)]
#[template(path = "lists.html")]
struct ListsPage {
    layout: Layout,
    compiled: String,
    lists: Vec<ListView>,
    profiles: Vec<ProfileView>,
    locked: String,
}

pub async fn lists(
    State(state): State<Arc<WebState>>,
    signed: Signed,
) -> Result<Response, WebError> {
    signed.require(Right::ManageRules, "see the lists and settings")?;
    let config = state.config().await;
    let settings = state.pipeline.settings();
    let manifest = settings.policy.lists.manifest();
    let compiled = format!(
        "{} sites from {} lists, built {}.",
        count(settings.policy.lists.domain_count() as i64),
        manifest.sources.len(),
        crate::clock::age(crate::clock::now_unix_secs().saturating_sub(manifest.compiled_at))
    );
    let (for_health, in_use) = (config.clone(), settings.clone());
    let health = tokio::task::spawn_blocking(move || {
        crate::lists::acquire::health::health(
            &for_health,
            Some(in_use.policy.lists.manifest()),
            crate::clock::now_unix_secs(),
        )
    })
    .await?;
    let lists = health
        .into_iter()
        .map(|list| ListView {
            kind: list.kind.as_str(),
            category: list.category.clone(),
            entries: list
                .compiled
                .as_ref()
                .map_or("not built yet".into(), |s| count(s.entries as i64)),
            bad_lines: list
                .compiled
                .as_ref()
                .map_or(String::new(), |s| count(s.bad_lines as i64)),
            healthy: list.current(),
            state: crate::report::list_state(&list),
            licence: list.licence.clone().unwrap_or_default(),
            name: list.name,
        })
        .collect();
    Ok(render(&ListsPage {
        layout: Layout::new(&config, "Lists and settings", "settings", &signed),
        compiled,
        lists,
        profiles: profile_views(&config),
        locked: config
            .blocking
            .locked_categories
            .iter()
            .map(|c| c.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?
    .into_response())
}

fn profile_views(config: &Config) -> Vec<ProfileView> {
    let names = |items: &[toml::Spanned<String>]| {
        if items.is_empty() {
            "—".to_string()
        } else {
            items
                .iter()
                .map(|i| i.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    config
        .profiles
        .iter()
        .map(|(name, profile)| {
            let mut used_by: Vec<String> = config
                .listen
                .iter()
                .filter(|l| l.profile.as_ref().is_some_and(|p| p.get_ref() == name))
                .map(|l| format!("queries to {}", l.address.get_ref()))
                .collect();
            used_by.extend(
                config
                    .clients
                    .iter()
                    .filter(|c| c.profile.get_ref() == name)
                    .map(|c| format!("devices in {}", c.network.get_ref())),
            );
            if config.server.default_profile.get_ref() == name {
                used_by.push("everyone else (the default)".into());
            }
            let mut blocked = names(&profile.block_categories);
            if !profile.block_services.is_empty() {
                blocked.push_str(&format!("; services: {}", names(&profile.block_services)));
            }
            if !profile.deny_domains.is_empty() {
                blocked.push_str(&format!("; {} sites by name", profile.deny_domains.len()));
            }
            let mut allowed = names(&profile.allow_categories);
            if !profile.allow_services.is_empty() {
                allowed.push_str(&format!("; services: {}", names(&profile.allow_services)));
            }
            if !profile.allow_domains.is_empty() {
                allowed.push_str(&format!("; {} sites by name", profile.allow_domains.len()));
            }
            ProfileView {
                name: name.clone(),
                description: profile.description.clone(),
                mode: match profile.mode {
                    ProfileMode::Blocklist => "everything except what is blocked",
                    ProfileMode::Allowlist => "only approved sites",
                },
                blocked,
                allowed,
                safe_search: if profile.safe_search {
                    format!("on; YouTube {:?}", profile.youtube).to_lowercase()
                } else {
                    "off".into()
                },
                used_by: if used_by.is_empty() {
                    "nobody at present".into()
                } else {
                    used_by.join("; ")
                },
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    file: String,
    text: String,
    summary: Vec<(&'static str, String)>,
    /// Changes in the file that wait for a restart, in words.
    waiting: Vec<String>,
    /// "on", "off" or "broken" (then `block_ca_problem` says why).
    block_ca: &'static str,
    block_ca_problem: String,
    /// Only administrators get the certificate's download links.
    admin: bool,
}

/// The summary row a setting that waits for a restart belongs to.
fn row_of(key: &str) -> &'static str {
    match key {
        "listen" => "DNS listens on",
        "server.data_dir" | "log.database" | "log.full_query_log" => "Block log",
        _ => "Status page",
    }
}

pub async fn settings(
    State(state): State<Arc<WebState>>,
    signed: Signed,
) -> Result<Response, WebError> {
    signed.require(Right::ManageRules, "see the lists and settings")?;
    let config = state.config().await;
    let summary = vec![
        (
            "DNS listens on",
            config
                .listen
                .iter()
                .map(|l| l.address.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Upstream servers",
            config
                .upstream
                .iter()
                .map(|u| format!("{} ({:?})", u.address.get_ref(), u.protocol).to_lowercase())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Blocked answer", config.blocking.answer.to_string()),
        (
            "Block log",
            format!(
                "{}; blocked look-ups kept {} days; {}",
                config.journal_path().display(),
                config.log.blocked_retention_days,
                if config.log.full_query_log {
                    "every look-up logged"
                } else {
                    "allowed look-ups not logged"
                }
            ),
        ),
        ("Time zone", config.log.time_zone.name().to_string()),
        (
            "Status page",
            format!(
                "{}; signed-in sessions end after {} idle minutes",
                crate::web::public_url(&config),
                config.web.session_idle_minutes
            ),
        ),
        (
            "Staff pages",
            match &config.web.staff_networks {
                Some(networks) => format!(
                    "only on {}",
                    networks
                        .iter()
                        .map(|n| n.get_ref().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "on every network ([web] staff_networks not set)".into(),
            },
        ),
        (
            "Alerts",
            match (&config.alerts.email, &config.alerts.webhook) {
                (None, None) => "none set up".to_string(),
                (Some(_), None) => "by email".to_string(),
                (None, Some(_)) => "by webhook".to_string(),
                (Some(_), Some(_)) => "by email and webhook".to_string(),
            },
        ),
    ];
    // What is shown is what is in force; a change waiting for a restart
    // is marked on its row, never shown as if applied.
    let waiting = state.reloader.waiting_for_restart();
    let mut summary = summary;
    for change in &waiting {
        if let Some((_, value)) = summary
            .iter_mut()
            .find(|(what, _)| *what == row_of(&change.key))
        {
            value.push_str(&format!(
                " (the file now says {} = {}: takes effect after restart)",
                change.key, change.in_file
            ));
        }
    }
    Ok(render(&SettingsPage {
        layout: Layout::new(&config, "Settings", "settings", &signed),
        file: config.origin.display_name.clone(),
        text: redact(&config.origin.text),
        summary,
        waiting: waiting.iter().map(ToString::to_string).collect(),
        block_ca: match (&state.block_ca, &state.block_ca_problem) {
            (Some(_), _) => "on",
            (None, Some(_)) => "broken",
            (None, None) => "off",
        },
        block_ca_problem: state.block_ca_problem.clone().unwrap_or_default(),
        admin: signed.role == crate::admin::Role::Admin,
    })?
    .into_response())
}

/// The config text with the values of secret keys replaced.
pub fn redact(text: &str) -> String {
    const SECRET: [&str; 4] = ["password", "secret", "token", "key"];
    text.lines()
        .map(|line| match line.split_once('=') {
            Some((key, _))
                if !line.trim_start().starts_with('#')
                    && SECRET.iter().any(|s| key.to_lowercase().contains(s))
                    && !key.trim().ends_with("_file") =>
            {
                format!("{}= \"(hidden)\"", key)
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_hidden_but_file_names_are_not() {
        let text = "[alerts.email]\npassword = \"hunter2\"\npassword_file = \"/etc/x\"\n# token = 1\nserver = \"mail\"";
        let shown = super::redact(text);
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("password = \"(hidden)\""));
        assert!(shown.contains("/etc/x"));
        assert!(shown.contains("# token = 1"));
        assert!(shown.contains("server = \"mail\""));
    }
}

//! Sends an alert as a JSON POST to the school's webhook (ureq on a blocking
//! thread, so the async runtime never waits on the network).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::message::{Alert, Attempt};
use super::notice::Outgoing;
use super::{AlertError, WebhookConfig, read_secret};

pub(crate) fn validate(cfg: &WebhookConfig) -> Result<(), AlertError> {
    let url = cfg.url.trim();
    let scheme_ok = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        || url
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
    if !scheme_ok {
        return Err(AlertError::Config(
            "webhook url must start with https:// or http://".into(),
        ));
    }
    Ok(())
}

/// One agent for the process: it keeps connections and TLS sessions for
/// bursts, and is cheap to clone onto a blocking thread.
pub(crate) struct Sender {
    config: WebhookConfig,
    agent: ureq::Agent,
}

// By hand, so debug output of the alerter never shows the URL's secret.
impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("url", &"<webhook url>")
            .field("token_file", &self.config.token_file)
            .finish()
    }
}

impl Sender {
    pub fn new(config: WebhookConfig, timeout: Duration) -> Sender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Status codes are judged here, so a 500 reads as a status, not
            // as a transport error.
            .http_status_as_error(false)
            // A redirect is a misconfiguration worth seeing, and following one
            // would carry the alert (and maybe the token) somewhere unexpected.
            .max_redirects(0)
            .user_agent("lollipop-alerts")
            .build()
            .new_agent();
        Sender { config, agent }
    }

    pub async fn send(&self, alert: &Outgoing) -> Result<(), AlertError> {
        let body =
            serde_json::to_vec(&alert.payload()).map_err(|e| AlertError::Message(e.to_string()))?;
        let token = match &self.config.token_file {
            Some(path) => Some(read_secret(path).await?),
            None => None,
        };
        let agent = self.agent.clone();
        let url = self.config.url.trim().to_string();
        tokio::task::spawn_blocking(move || post(&agent, &url, token.as_deref(), &body))
            .await
            .map_err(|e| AlertError::Task(e.to_string()))?
    }
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(), AlertError> {
    let mut request = agent.post(url).content_type("application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    // Webhook URLs often carry their secret in the path (Teams, Slack), so the
    // URL is scrubbed from anything that ends up in stats or logs.
    let response = request
        .send(body)
        .map_err(|e| AlertError::Http(e.to_string().replace(url, "<webhook url>")))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(AlertError::Status(status.as_u16()))
    }
}

fn attempt_json(alert: &Alert, a: &Attempt) -> Value {
    let mut fields = Map::new();
    if let Some(name) = &a.name {
        fields.insert("name".into(), json!(name));
    } else {
        fields.insert("site".into(), json!(a.site(&alert.category)));
    }
    fields.insert("query_type".into(), json!(a.query_type));
    if let Some(list) = &a.list {
        fields.insert("list".into(), json!(list));
    }
    if let Some(rule) = &a.name_rule {
        fields.insert("rule".into(), json!(rule));
    }
    fields.insert("at_unix_ms".into(), json!(a.at_unix_ms));
    fields.insert(
        "time_local".into(),
        json!(alert.local(a.at_unix_ms).rfc3339()),
    );
    fields.insert("time_utc".into(), json!(alert.utc(a.at_unix_ms).rfc3339()));
    Value::Object(fields)
}

/// The same facts as the email. `name` is left out, not blanked, for locked
/// lists, so a receiver that logs whole bodies never sees it. The top level
/// describes the first event; `events` lists every itemised one; `text` lets
/// chat webhooks (Teams, Slack) show something readable unchanged.
pub(crate) fn payload(alert: &Alert) -> Value {
    let first = alert.attempts.first();
    let mut top = match first.map(|a| attempt_json(alert, a)) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    let d = &alert.device;
    top.insert("kind".into(), json!("block"));
    top.insert("alert_id".into(), json!(alert.id));
    top.insert("school".into(), json!(alert.school));
    top.insert(
        "device".into(),
        json!({
            "label": d.label,
            "name": d.name,
            "owner": d.owner,
            "room": d.room,
            "mac": d.mac,
            "ip": d.ip.to_string(),
        }),
    );
    top.insert("profile".into(), json!(alert.profile));
    top.insert("profile_name".into(), json!(alert.profile_name));
    top.insert("category".into(), json!(alert.category));
    top.insert("action".into(), json!(alert.action));
    top.insert("locked".into(), json!(alert.locked));
    top.insert("folded".into(), json!(alert.folded));
    top.insert("attempts".into(), json!(alert.total_attempts()));
    top.insert(
        "events".into(),
        Value::Array(
            alert
                .attempts
                .iter()
                .map(|a| attempt_json(alert, a))
                .collect(),
        ),
    );
    top.insert("subject".into(), json!(alert.subject()));
    top.insert("text".into(), json!(alert.email_body()));
    Value::Object(top)
}

//! Sends an alert as a JSON POST to the school's webhook (ureq on a blocking
//! thread, so the async runtime never waits on the network).

use std::time::Duration;

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

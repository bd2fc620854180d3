//! The status page: one axum app in the resolver's process, on its own
//! listen address, with server-rendered pages for the head teacher, the DSL,
//! teachers and the technician, a JSON API, `/metrics`, and the block page.
//! Every route is registered in [`router`], so the whole site is one list.

pub mod auth;
pub mod blockca;
pub mod blockhttps;
pub mod capped;
pub mod chart;
pub mod cluster;
pub mod csrf;
pub mod error;
pub mod headers;
pub mod pages;
pub mod server;
pub mod session;
pub mod staff;
pub mod tls;
pub mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::admin::AdminStore;
use crate::config::Config;
use crate::dns::resolve::pipeline::Pipeline;
use crate::journal::AuditEntry;

pub use server::WebServers;

/// Forms are small; anything bigger is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the page asks of the running service that started it: the config
/// in force, and putting a change made on the page in force at once. The
/// service's reloader implements it, so the page never names the service.
#[async_trait::async_trait]
pub trait Control: Send + Sync {
    /// The config in force.
    async fn config(&self) -> Config;
    /// Rebuilds the policy so that an allow/deny entry applies at once.
    async fn apply_local_rules(&self) -> Result<(), String>;
    /// Puts the staff overrides recorded in the admin database in force.
    async fn apply_overrides(&self) -> Result<(), String>;
    /// Changes read from the file that wait for a restart (new listening
    /// addresses and the like); empty when everything read is in force.
    fn waiting_for_restart(&self) -> Vec<crate::config::restart::RestartChange>;
    /// Tells the alert recipients (the DSL) something that is not a block,
    /// e.g. that a category that alerts was released; false when no email
    /// or webhook is configured.
    fn notify(&self, notice: crate::alerts::Notice) -> bool;
    /// Each alert channel's delivery state, for the dashboard.
    fn alert_health(&self) -> Vec<crate::alerts::ChannelHealth> {
        Vec::new()
    }
}

/// What every handler can reach.
pub struct WebState {
    pub admin: AdminStore,
    pub pipeline: Arc<Pipeline>,
    pub reloader: Arc<dyn Control>,
    pub sessions: session::Sessions,
    /// Where the staff pages answer; a reload sets it.
    pub staff_networks: staff::StaffNetworks,
    pub login_limiter: session::AttemptLimiter,
    /// Password and code checks (argon2, 19 MiB each) running at once,
    /// bounded so a burst of sign-ins cannot exhaust a Pi's memory.
    pub hashing: tokio::sync::Semaphore,
    /// Cookies get `Secure` when the page is served over TLS.
    pub secure_cookies: bool,
    /// The page's certificate in force (under TLS); a reload swaps it.
    pub tls: Option<axum_server::tls_rustls::RustlsConfig>,
    /// Host names that mean "this appliance" (anything else is a blocked
    /// name pointed here by the block-page answer).
    pub own_hosts: Vec<String>,
    /// How people reach the page, for setup links.
    pub public_url: String,
    pub started: Instant,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The block log, for its figures and the audit trail.
    pub journal: crate::journal::Journal,
    /// The block page's CA, when the HTTPS block page is on and working.
    pub block_ca: Option<Arc<blockca::BlockCa>>,
    /// Why the HTTPS block page is off although the config asks for it.
    pub block_ca_problem: Option<String>,
    /// The HA pair: this box's role, what it follows or who follows it.
    pub cluster: Arc<crate::cluster::ClusterState>,
}

impl WebState {
    pub async fn config(&self) -> Config {
        self.reloader.config().await
    }

    /// Puts a reloaded config's page settings in force: the idle time-out
    /// (open sessions included) and the staff networks.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        self.sessions.set_idle(std::time::Duration::from_secs(
            config.web.session_idle_minutes * 60,
        ));
        self.staff_networks.set(config);
        // A renewed or replaced certificate: new connections get it, open
        // ones keep theirs. One that cannot be read changes nothing.
        if let Some(tls) = &self.tls
            && config.web.tls
        {
            let server = tls::server_config(config).map_err(|error| {
                format!("web.certificate: {error:#}; the running certificate stays in force")
            })?;
            tls.reload_from_config(server);
        }
        Ok(())
    }

    /// Records what `actor` did, now, in the audit trail.
    pub fn audit(
        &self,
        actor: &str,
        action: impl Into<String>,
        detail: impl Into<String>,
        reason: Option<String>,
    ) {
        self.journal.record_audit(AuditEntry {
            at_unix_ms: crate::clock::now_unix_ms(),
            actor: actor.to_string(),
            action: action.into(),
            detail: detail.into(),
            reason,
        });
    }
}

/// Every route of the site.
pub fn router(state: Arc<WebState>) -> Router {
    use pages::*;
    Router::new()
        .route("/", get(dashboard::page))
        .route(
            "/login",
            get(pages::signin::login_page).post(pages::signin::login),
        )
        .route("/logout", post(pages::signin::logout))
        .route(
            "/setup",
            get(pages::signin::setup_page).post(pages::signin::setup),
        )
        .route("/log", get(log::page))
        .route("/log.csv", get(log::csv))
        .route("/log/{id}", get(log::entry))
        .route("/check", get(check::page))
        .route("/rules", get(rules::page).post(rules::add))
        .route("/rules/{id}/remove", post(rules::remove))
        .route("/unlock", get(unlock::page).post(unlock::grant))
        .route("/unlock/cards", get(unlock::cards::page))
        .route("/overrides", get(unlock::list))
        .route("/overrides/{id}/end", post(unlock::end))
        .route("/reports", get(reports::weekly))
        .route("/review", get(reports::reviews).post(reports::add_review))
        .route("/review/{id}/assessment", get(pages::assessment::kept))
        .route("/assessment", get(pages::assessment::page))
        .route("/audit", get(reports::audit))
        .route("/lists", get(settings::lists))
        .route("/settings", get(settings::settings))
        .route("/settings/block-ca.pem", get(pages::blockca::pem))
        .route("/settings/block-ca.cer", get(pages::blockca::der))
        .route("/users", get(users::page).post(users::save))
        .route("/users/{name}/remove", post(users::remove))
        .route("/users/{name}/code", post(users::set_code))
        .route("/tokens", post(users::new_token))
        .route("/tokens/{id}/revoke", post(users::revoke_token))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/blocked", get(api::blocked))
        .route("/api/v1/check", get(api::check))
        .route("/api/v1/overrides", get(api::overrides))
        .route("/metrics", get(metrics::authorised))
        .route("/static/{file}", get(view::asset))
        .route(
            crate::cluster::follow::SNAPSHOT_PATH,
            get(cluster::snapshot),
        )
        .route(
            crate::cluster::blocks::BLOCKS_PATH,
            post(cluster::blocks).layer(DefaultBodyLimit::max(
                crate::cluster::blocks::MAX_SUMMARY_BYTES,
            )),
        )
        .fallback(get(blockpage::fallback))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cluster::read_only,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ))
        // Inside the block page: a blocked name's page answers everywhere.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            staff::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            blockpage::divert,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::add,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The router for `metrics_listen`: `/metrics` only, without a login.
pub fn metrics_router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/metrics", get(pages::metrics::open))
        .with_state(state)
}

/// The setup link for `address`'s page.
pub fn setup_url(public_url: &str, token: &str) -> String {
    format!("{}/setup?token={token}", public_url.trim_end_matches('/'))
}

/// How people reach the page: `public_url`, or the first listen address.
pub fn public_url(config: &Config) -> String {
    if let Some(url) = &config.web.public_url {
        return url.clone();
    }
    let scheme = if config.web.tls { "https" } else { "http" };
    match config.web_addresses().first().copied() {
        Some(address) if address.ip().is_unspecified() => {
            format!("{scheme}://<this appliance's address>:{}", address.port())
        }
        Some(address) if address.port() == 80 && scheme == "http" => {
            format!("{scheme}://{}", address.ip())
        }
        Some(address) => format!("{scheme}://{address}"),
        None => format!("{scheme}://localhost"),
    }
}

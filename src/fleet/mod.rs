//! The trust dashboard (`lollipop trust serve`): a small read-only site
//! over the trust's central PostgreSQL that its schools' boxes ship to:
//! each school's health, the week's blocked attempts by school and
//! category, the alerts, and the weekly report per school and for the
//! trust. It signs people in with the school page's sessions, roles,
//! password hashes and security headers, and purges rows older than the
//! schools' retention every hour.

mod pages;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use crate::admin::AdminStore;
use crate::clock::Clock;
use crate::web::auth::cookie;
use crate::web::session::{AttemptLimiter, Lookup, Session, Sessions};

const SESSION_COOKIE: &str = "lollipop_trust_session";
const FORM_COOKIE: &str = "lollipop_trust_form";
/// Signed out after this long without a click, as on a school's page.
const IDLE: Duration = Duration::from_secs(15 * 60);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What `lollipop trust serve` was given.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// A PostgreSQL connection string (`host=... user=... dbname=...` or
    /// `postgres://...`).
    pub database: String,
    /// The trust's own CA for the database's certificate, if not a public one.
    pub database_ca: Option<PathBuf>,
    pub listen: SocketAddr,
    /// The users' file: an admin database as the school page keeps
    /// (`lollipop trust passwd` adds users to it).
    pub users: PathBuf,
    /// Rows older than this are deleted: the schools' `blocked_retention_days`.
    pub retention_days: u32,
}

pub(crate) struct FleetState {
    database: store::Database,
    users: AdminStore,
    sessions: Sessions,
    limiter: AttemptLimiter,
}

impl FleetState {
    /// The signed-in session of a request, if any.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        match self.sessions.touch(cookie(headers, SESSION_COOKIE)?) {
            Lookup::Active(session) => Some(session),
            Lookup::Expired | Lookup::Unknown => None,
        }
    }
}

/// Serves the dashboard until the process ends.
pub async fn serve(options: FleetOptions) -> anyhow::Result<()> {
    let users = AdminStore::open(&options.users).map_err(|error| {
        anyhow::anyhow!(
            "{error}: make the users' file with `lollipop trust passwd --users {} NAME --role admin`",
            options.users.display()
        )
    })?;
    let database = store::Database::new(&options.database, options.database_ca.as_deref())?;
    let state = Arc::new(FleetState {
        database: database.clone(),
        users,
        sessions: Sessions::new(IDLE, Clock::system()),
        limiter: AttemptLimiter::new(5, Duration::from_secs(60)),
    });
    let purging = (database, options.retention_days);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            let outcome = match store::connect(&purging.0).await {
                Ok(client) => store::purge(&client, purging.1).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(deleted) => tracing::info!(
                    "retention: {deleted} rows older than {} days deleted",
                    purging.1
                ),
                Err(error) => tracing::warn!("retention: {error}"),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", options.listen))?;
    tracing::info!("the trust dashboard is on http://{}", options.listen);
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

fn router(state: Arc<FleetState>) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/report", get(pages::report))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/static/{file}", get(crate::web::view::asset))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The school page's security headers, on every response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    crate::web::headers::apply(response.headers_mut(), false);
    response
}

/// A `Set-Cookie` value for this site.
fn cookie_header(name: &str, value: &str) -> HeaderValue {
    let max_age = if value.is_empty() { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) type Peer = ConnectInfo<SocketAddr>;
pub(crate) type Shared = State<Arc<FleetState>>;
pub(crate) use header::SET_COOKIE;

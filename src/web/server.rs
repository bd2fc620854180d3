//! Starts the status page's listeners (HTTP or HTTPS) and the optional
//! open `/metrics` listener, and stops them with the resolver. Every
//! listener gets `[limits]`' connection cap and header-read time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::sync::Semaphore;

use crate::admin::AdminStore;
use crate::config::Config;
use crate::dns::resolve::pipeline::Pipeline;
use crate::journal::Journal;
use crate::metrics::Metrics;

use super::blockca::BlockCa;
use super::blockhttps::{BlockedNameAcceptor, describe};
use super::capped::Capped;
use super::session::{AttemptLimiter, Sessions};
use super::{Control, WebState, metrics_router, public_url, router, setup_url};

pub struct WebServers {
    handles: Vec<Handle<SocketAddr>>,
    /// The time a client has to send a request's headers (and, over TLS,
    /// to finish the handshake).
    header_timeout: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub state: Arc<WebState>,
}

/// Wrong passwords or codes allowed per address (and per name) in the window.
const MAX_FAILURES: usize = 5;
/// Password hashes computed at once; the rest wait their turn.
const MAX_HASHES_AT_ONCE: usize = 2;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

impl WebServers {
    /// Binds every `[web]` address and starts serving.
    pub fn start(
        config: &Config,
        pipeline: Arc<Pipeline>,
        recorder: (Journal, Arc<Metrics>),
        reloader: Arc<dyn Control>,
        clock: crate::clock::Clock,
        cluster: Arc<crate::cluster::ClusterState>,
    ) -> Result<WebServers> {
        let (journal, metrics) = recorder;
        let admin = AdminStore::open(&config.admin_db_path())?;
        let public = public_url(config);
        if cluster.is_secondary() {
            // Its users are the primary's: a link here would make an
            // administrator the primary knows nothing of.
            tracing::info!(
                "this box is a secondary: its page's users are the primary's, and no setup link is made"
            );
        } else {
            announce_setup_link(&admin, &public);
        }
        let tls = if config.web.tls {
            Some(RustlsConfig::from_config(super::tls::server_config(
                config,
            )?))
        } else {
            None
        };
        let (block_ca, block_ca_problem) = block_ca(config, &pipeline);
        let state = Arc::new(WebState {
            admin,
            pipeline,
            reloader,
            sessions: Sessions::new(
                Duration::from_secs(config.web.session_idle_minutes * 60),
                clock,
            ),
            staff_networks: super::staff::StaffNetworks::from_config(config),
            login_limiter: AttemptLimiter::new(MAX_FAILURES, FAILURE_WINDOW),
            hashing: tokio::sync::Semaphore::new(MAX_HASHES_AT_ONCE),
            secure_cookies: config.web.tls,
            tls: tls.clone(),
            own_hosts: own_hosts(config),
            public_url: public,
            started: Instant::now(),
            metrics,
            journal,
            block_ca,
            block_ca_problem,
            cluster,
        });
        let mut servers = WebServers {
            handles: Vec::new(),
            header_timeout: Duration::from_secs(config.limits.web_header_read_timeout_secs),
            tasks: Vec::new(),
            state: state.clone(),
        };
        // One cap for the page's listeners together; the open /metrics
        // listener has its own, so a flood of the page cannot blind the
        // monitoring that would show it.
        let page_permits = Arc::new(Semaphore::new(config.limits.web_max_connections));
        for address in config.web_addresses() {
            servers.serve(
                address,
                router(state.clone()),
                tls.clone(),
                page_permits.clone(),
            )?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            tracing::info!("status page on {scheme}://{address}");
        }
        servers.serve_blocked_names(config, &page_permits);
        if let Some(address) = &config.web.metrics_listen {
            let address: SocketAddr = address.get_ref().parse().with_context(|| {
                format!(
                    "web.metrics_listen: '{}' is not an address",
                    address.get_ref()
                )
            })?;
            let permits = Arc::new(Semaphore::new(config.limits.web_max_connections));
            servers.serve(address, metrics_router(state.clone()), None, permits)?;
            tracing::info!("metrics on http://{address}/metrics");
        }
        Ok(servers)
    }

    fn serve(
        &mut self,
        address: SocketAddr,
        app: axum::Router,
        tls: Option<RustlsConfig>,
        permits: Arc<Semaphore>,
    ) -> Result<()> {
        let listener = std::net::TcpListener::bind(address).with_context(|| {
            format!(
                "cannot listen on {address} for the status page (is another web server using it?)"
            )
        })?;
        let handle = Handle::new();
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let closed = self.state.metrics.limits.web_closed.clone();
        let timeout = self.header_timeout;
        let task = match tls {
            Some(tls) => {
                let acceptor = RustlsAcceptor::new(tls).handshake_timeout(timeout);
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(Capped::new(acceptor, permits, closed))
                    .handle(handle.clone())
                    // Bounds hyper's protocol detection too, which its
                    // header-read time-out does not cover.
                    .first_request_timeout(timeout);
                server.http_builder().http1().header_read_timeout(timeout);
                tokio::spawn(async move {
                    if let Err(error) = server.serve(service).await {
                        tracing::error!("status page on {address} stopped: {error}");
                    }
                })
            }
            None => {
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(Capped::new(DefaultAcceptor, permits, closed))
                    .handle(handle.clone())
                    .first_request_timeout(timeout);
                server.http_builder().http1().header_read_timeout(timeout);
                tokio::spawn(async move {
                    if let Err(error) = server.serve(service).await {
                        tracing::error!("status page on {address} stopped: {error}");
                    }
                })
            }
        };
        self.handles.push(handle);
        self.tasks.push(task);
        Ok(())
    }

    /// The HTTPS block page's listeners. A failure is logged and leaves
    /// them off: the plain block page and DNS do not depend on them.
    fn serve_blocked_names(&mut self, config: &Config, permits: &Arc<Semaphore>) {
        let Some(ca) = self.state.block_ca.clone() else {
            return;
        };
        let acceptor =
            BlockedNameAcceptor::new(ca, self.state.pipeline.clone(), self.header_timeout);
        for address in config.block_page_https_addresses() {
            let listener = match std::net::TcpListener::bind(address) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(
                        "the HTTPS block page cannot listen on {address}: {error}; blocked sites show a certificate error there"
                    );
                    continue;
                }
            };
            let server = match axum_server::from_tcp(listener) {
                Ok(server) => server,
                Err(error) => {
                    tracing::error!("the HTTPS block page cannot use {address}: {error}");
                    continue;
                }
            };
            let handle = Handle::new();
            let closed = self.state.metrics.limits.web_closed.clone();
            let mut server = server
                .acceptor(Capped::new(acceptor.clone(), permits.clone(), closed))
                .handle(handle.clone())
                .first_request_timeout(self.header_timeout);
            server
                .http_builder()
                .http1()
                .header_read_timeout(self.header_timeout);
            let service =
                router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
            self.tasks.push(tokio::spawn(async move {
                if let Err(error) = server.serve(service).await {
                    tracing::error!("the HTTPS block page on {address} stopped: {error}");
                }
            }));
            self.handles.push(handle);
            tracing::info!("block page over HTTPS on {}", describe(&[address]));
        }
    }

    pub async fn shutdown(self) {
        for handle in &self.handles {
            handle.graceful_shutdown(Some(Duration::from_secs(2)));
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The block page's CA when `[blockpage] https` is on, or why it is off.
fn block_ca(config: &Config, pipeline: &Pipeline) -> (Option<Arc<BlockCa>>, Option<String>) {
    if !config.blockpage.https {
        return (None, None);
    }
    let dir = config.resolve_path(&config.server.data_dir);
    let now = pipeline.clock().now_unix_ms() / 1000;
    match BlockCa::load_or_create(&dir, &config.alerts.school_name, now) {
        Ok(ca) => (Some(Arc::new(ca)), None),
        Err(error) => {
            let problem = format!(
                "The block page over HTTPS is off: {error:#}. The plain block page and filtering work as before."
            );
            tracing::error!("{problem}");
            (None, Some(problem))
        }
    }
}

/// With no admin yet, a one-time setup link goes to the log, so whoever
/// installed the appliance can finish setting it up from a browser.
fn announce_setup_link(admin: &AdminStore, public_url: &str) {
    // A store set aside as damaged may have held admins: a link now would
    // hand the appliance to whoever reads the log first.
    if !admin.damaged_copies().is_empty() && !matches!(admin.has_admin(), Ok(true)) {
        tracing::warn!(
            "the page's records were damaged and set aside, so no setup link is made: run `lollipop passwd NAME --role admin` on the appliance's console"
        );
        return;
    }
    match admin.has_admin() {
        Ok(true) => {}
        Ok(false) => match admin.new_setup_token() {
            Ok(token) => tracing::warn!(
                "no administrator yet: open {} to create one (the link works once, for 24 hours; `lollipop setup-link` makes another)",
                setup_url(public_url, &token)
            ),
            Err(error) => tracing::error!("could not make a setup link: {error}"),
        },
        Err(error) => tracing::error!("could not read the users: {error}"),
    }
}

/// Host names that mean this appliance rather than a blocked site.
fn own_hosts(config: &Config) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "lollipop".to_string()];
    if let Ok(name) = std::fs::read_to_string("/etc/hostname") {
        let name = name.trim().to_lowercase();
        if !name.is_empty() {
            hosts.push(format!("{name}.local"));
            hosts.push(name);
        }
    }
    if let Some(url) = &config.web.public_url
        && let Some(host) = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
    {
        hosts.push(host.to_lowercase());
    }
    hosts
}

//! The block page over HTTPS: a listener on port 443 of the block page
//! address that reads the name a browser asks for (SNI) before choosing a
//! certificate, asks the pipeline (Check's own `Pipeline::check`, the
//! stages DNS runs) whether that name is blocked for that device, and only
//! then signs a certificate for it with the box's CA. Any other name, or
//! no name, gets no certificate: the handshake fails, so the CA can never
//! stand in for a site the device may reach.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum_server::accept::Accept;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::dns::resolve::check::CheckFor;
use crate::dns::resolve::pipeline::Pipeline;
use crate::name::normalise_domain;

use super::blockca::BlockCa;

/// The blocked name a connection's certificate was made for: the block
/// page shows it whatever Host header the request carries.
#[derive(Debug, Clone)]
pub struct InterceptedName(pub String);

#[derive(Clone)]
pub struct BlockedNameAcceptor {
    ca: Arc<BlockCa>,
    pipeline: Arc<Pipeline>,
    /// The whole handshake must finish within this.
    timeout: Duration,
}

impl BlockedNameAcceptor {
    pub fn new(ca: Arc<BlockCa>, pipeline: Arc<Pipeline>, timeout: Duration) -> Self {
        BlockedNameAcceptor {
            ca,
            pipeline,
            timeout,
        }
    }

    /// The TLS settings for `name` asked by `client`, or why there are none.
    pub fn tls_for(
        &self,
        name: Option<&str>,
        client: IpAddr,
    ) -> Result<(String, Arc<rustls::ServerConfig>), String> {
        let name = name.ok_or("no server name (SNI) in the handshake")?;
        let name = normalise_domain(name).map_err(|error| format!("{name}: {error}"))?;
        if !self.ca.may_sign(&name) {
            return Err(format!("{name} is never intercepted"));
        }
        // The very decision DNS gives this device, staff unlocks included.
        let check = self.pipeline.check(
            &name,
            &CheckFor::Device {
                address: client,
                listener: None,
            },
        )?;
        if !check.blocked {
            return Err(format!("{name} is not blocked for {client}"));
        }
        let now = self.pipeline.clock().now_unix_ms() / 1000;
        let tls = self
            .ca
            .server_config(&name, now)
            .map_err(|error| format!("{error:#}"))?;
        Ok((name, tls))
    }
}

type Service<S> = <Extension<InterceptedName> as tower_layer::Layer<S>>::Service;
type Accepted<S> = Pin<
    Box<
        dyn Future<Output = io::Result<(tokio_rustls::server::TlsStream<TcpStream>, Service<S>)>>
            + Send,
    >,
>;

impl<S: Send + 'static> Accept<TcpStream, S> for BlockedNameAcceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    type Service = Service<S>;
    type Future = Accepted<S>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let peer = stream.peer_addr()?;
            let client = peer.ip().to_canonical();
            let handshake = async {
                let start =
                    LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
                let asked = start.client_hello().server_name().map(str::to_owned);
                let (name, tls) = this.tls_for(asked.as_deref(), client).map_err(|why| {
                    tracing::debug!("HTTPS block page: no certificate for {client}: {why}");
                    io::Error::new(io::ErrorKind::PermissionDenied, why)
                })?;
                let stream = start.into_stream(tls).await?;
                Ok::<_, io::Error>((stream, name))
            };
            let (stream, name) = tokio::time::timeout(this.timeout, handshake)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake too slow"))??;
            let service = tower_layer::Layer::layer(&Extension(InterceptedName(name)), service);
            Ok((stream, service))
        })
    }
}

/// Where the HTTPS block page answers, for the log.
pub fn describe(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .map(|a| format!("https://{a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

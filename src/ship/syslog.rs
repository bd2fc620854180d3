//! An rsyslog or syslog-ng server as a destination: each batch goes as RFC
//! 5424 messages with octet-counting framing (`syslog_format`) over one TCP
//! connection (TLS when asked). Plain syslog over TCP has no
//! acknowledgement, and a write that returns has only reached this box's
//! kernel; so after the batch the connection is closed for writing and the
//! batch counts as delivered only when the server, having read to the end,
//! closes its side. A batch cut short is sent again whole: at least once,
//! each message carrying its box, kind and event id so repeats can be
//! dropped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::journal::ShipBatch;

use super::Destination;
use super::syslog_format::{self, Origin};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to read a batch and close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Syslog {
    host: String,
    port: u16,
    tls: Option<TlsConnector>,
    origin: Origin,
}

impl Syslog {
    pub fn new(
        host: String,
        port: u16,
        tls: Option<&[std::path::PathBuf]>,
        origin: Origin,
    ) -> anyhow::Result<Syslog> {
        let tls = match tls {
            Some(roots) => Some(TlsConnector::from(Arc::new(super::postgres::tls_config(
                roots,
            )?))),
            None => None,
        };
        Ok(Syslog {
            host,
            port,
            tls,
            origin,
        })
    }

    fn frames(&self, batch: &ShipBatch) -> Vec<u8> {
        let mut out = Vec::with_capacity(batch.len() * 400);
        for row in &batch.blocked {
            syslog_format::blocked(&mut out, &self.origin, row);
        }
        for row in &batch.alerts {
            syslog_format::alert(&mut out, &self.origin, row);
        }
        for row in &batch.audit {
            syslog_format::audit(&mut out, &self.origin, row);
        }
        out
    }
}

/// Writes `bytes`, closes for writing, and waits for the server to close.
async fn deliver(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    bytes: &[u8],
) -> Result<(), String> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    stream
        .shutdown()
        .await
        .map_err(|e| format!("close failed: {e}"))?;
    let mut sink = [0u8; 512];
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("the server did not take the batch: {e}")),
            }
        }
    })
    .await;
    drained.unwrap_or_else(|_| Err("the server did not confirm the batch in time".into()))
}

#[async_trait]
impl Destination for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    async fn send(&mut self, batch: &ShipBatch) -> Result<(), String> {
        let bytes = self.frames(batch);
        let address = (self.host.as_str(), self.port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| format!("no connection to {}:{} in time", self.host, self.port))?
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => deliver(tcp, &bytes).await,
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{} is not a TLS server name: {e}", self.host))?;
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| "TLS handshake took too long".to_string())?
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                deliver(stream, &bytes).await
            }
        }
    }
}

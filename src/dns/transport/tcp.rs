//! DNS over TCP (RFC 7766): each connection reads length-prefixed queries
//! and answers them as they complete, so a slow upstream answer does not
//! hold up the quick ones behind it (pipelining). A connection closes after
//! its idle time without a query, or when the listener stops; answers in
//! flight are written first. Connections are capped in total and per
//! client address (a new one over a cap is closed at once), and a query
//! over its client's rate limit is answered REFUSED (`limits`).

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use crate::dns::codec::{self, FORMERR, Incoming, REFUSED, Transport};
use crate::dns::resolve::answer::Answer;
use crate::dns::resolve::pipeline::Pipeline;
use crate::dns::resolve::settings::Client;
use crate::metrics::Metrics;

use super::Access;
use super::limits::{RateLimiter, TcpConnections, TcpSlot};

/// Queries of one connection answered at once; the next is read when one
/// of them is done.
const MAX_PIPELINED: usize = 32;

/// One TCP listener, serving until told to stop.
pub struct TcpServer {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpServer {
    /// Stops accepting, lets each connection finish the answers it owes,
    /// and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What every connection of one listener shares.
struct Shared {
    pipeline: Arc<Pipeline>,
    listener: usize,
    access: Arc<Access>,
    /// Who may ask how fast, and the connections open; shared by every
    /// listener.
    limiter: Arc<RateLimiter>,
    connections: Arc<TcpConnections>,
    /// Where unreadable and rate-limited messages are counted.
    metrics: Arc<Metrics>,
}

/// What one listener shares with every other: the query buckets and the
/// open connections, so a client's limits hold across listen addresses.
pub struct Limiters {
    pub rate: Arc<RateLimiter>,
    pub connections: Arc<TcpConnections>,
}

/// Starts accepting connections on `tcp` (inside the Tokio runtime).
pub fn serve(
    tcp: TcpListener,
    pipeline: Arc<Pipeline>,
    listener: usize,
    access: Arc<Access>,
    limiters: Limiters,
    metrics: Arc<Metrics>,
) -> TcpServer {
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        pipeline,
        listener,
        access,
        limiter: limiters.rate,
        connections: limiters.connections,
        metrics,
    });
    let task = tokio::spawn(accept(tcp, shared, stopped));
    TcpServer { stop, task }
}

async fn accept(tcp: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = stopped.changed() => break,
        };
        // Reap the connections that have ended.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                // Over a cap the connection is closed at once (dropped):
                // the connections already open keep being answered, and
                // the client can still ask over UDP.
                let limits = &shared.pipeline.settings().limits;
                let Some(slot) = shared.connections.open(peer.ip(), limits) else {
                    shared.metrics.limits.dns_tcp_closed.inc();
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(
                    stream,
                    peer,
                    shared.clone(),
                    stopped.clone(),
                    slot,
                ));
            }
            Err(error) => {
                // Out of descriptors, or a connection reset before it was
                // taken: pause briefly rather than spin.
                tracing::debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    // Held until the connection ends, answers owed included.
    _slot: TcpSlot,
) {
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(Mutex::new(writer));
    let mut answering = JoinSet::new();
    loop {
        while answering.len() >= MAX_PIPELINED {
            answering.join_next().await;
        }
        // Read from the settings in force, so a reload applies it to the
        // connections already open, from their next wait.
        let idle_timeout = shared.pipeline.settings().tcp_idle_timeout;
        let message = tokio::select! {
            message = read_message(&mut reader, idle_timeout) => message,
            _ = stopped.changed() => None,
        };
        let Some(message) = message else {
            break;
        };
        while answering.try_join_next().is_some() {}
        if !codec::is_query(&message) {
            continue;
        }
        if !shared.access.allows(peer.ip()) {
            if let Some(reply) = codec::bare_error(&message, REFUSED) {
                write(&writer, &reply).await;
            }
            continue;
        }
        let limits = &shared.pipeline.settings().limits;
        if !shared.limiter.allows(peer.ip(), limits, Instant::now()) {
            // REFUSED, not silence or delay: a TCP source is not spoofed,
            // so the answer reaches the real sender at once and holds no
            // connection or memory for it.
            shared.metrics.limits.refused.inc();
            if let Some(reply) = codec::bare_error(&message, REFUSED) {
                write(&writer, &reply).await;
            }
            continue;
        }
        match codec::read(&message) {
            Incoming::Question(query) => {
                let client = Client {
                    address: peer.ip(),
                    listener: Some(shared.listener),
                };
                // An answer ready at once is written in turn; only one
                // that must wait for the upstream becomes a task, so the
                // connection's later questions are not held behind it. A
                // panic (a bug reached by some message) loses that one
                // message, as in a task, not the connection: the hook has
                // counted and logged it.
                let at_once = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    shared.pipeline.answer_at_once(
                        &query.name,
                        query.record_type,
                        client,
                        query.checking_disabled(),
                    )
                }));
                match at_once {
                    Ok(Some(answer)) => {
                        let reply = codec::respond(&query, &answer, Transport::Tcp, <[u8]>::to_vec);
                        write(&writer, &reply).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => continue,
                }
                let shared = shared.clone();
                let writer = writer.clone();
                answering.spawn(async move {
                    let answer = shared
                        .pipeline
                        .answer_checking(
                            &query.name,
                            query.record_type,
                            client,
                            query.checking_disabled(),
                        )
                        .await;
                    let reply = codec::respond(&query, &answer, Transport::Tcp, <[u8]>::to_vec);
                    write(&writer, &reply).await;
                });
            }
            Incoming::Error(query, code) => {
                shared.metrics.malformed.inc();
                let reply =
                    codec::respond(&query, &Answer::code(code), Transport::Tcp, <[u8]>::to_vec);
                write(&writer, &reply).await;
            }
            Incoming::Malformed => {
                shared.metrics.malformed.inc();
                if let Some(reply) = codec::bare_error(&message, FORMERR) {
                    write(&writer, &reply).await;
                }
            }
            Incoming::Ignored => {}
        }
    }
    while answering.join_next().await.is_some() {}
}

/// The next length-prefixed message, or `None` when the client closed the
/// connection, broke it, or sent nothing for `idle_timeout`.
async fn read_message(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    idle_timeout: Duration,
) -> Option<Vec<u8>> {
    let mut length = [0u8; 2];
    tokio::time::timeout(idle_timeout, reader.read_exact(&mut length))
        .await
        .ok()?
        .ok()?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    tokio::time::timeout(idle_timeout, reader.read_exact(&mut message))
        .await
        .ok()?
        .ok()?;
    Some(message)
}

/// Writes one message with its length; a client gone away is not an error
/// worth more than a debug line.
async fn write(writer: &Mutex<OwnedWriteHalf>, message: &[u8]) {
    let Ok(length) = u16::try_from(message.len()) else {
        return;
    };
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    if let Err(error) = writer.lock().await.write_all(&framed).await {
        tracing::debug!(%error, "could not send a TCP response");
    }
}

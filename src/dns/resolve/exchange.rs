//! One question sent once to one plain-DNS upstream: over UDP (then TCP if
//! the answer was truncated) or over TCP alone. Each send has a fresh random
//! ID and, over UDP, its own connected socket on a random port, so a reply
//! must match the ID, the server and the question, and a closed port
//! (ICMP port unreachable) is known at once rather than waited out. Why a
//! send failed is told apart, for the forwarder's failover and the
//! Extended DNS Error a client is given.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::dns::protocol::MAX_UDP_PAYLOAD;

/// Why one send brought no usable reply.
#[derive(Debug)]
pub enum ExchangeError {
    /// Nothing that matched came back in time.
    TimedOut,
    /// The server's port is closed (ICMP port unreachable, or TCP reset).
    Refused,
    /// The network said no: no route, host unreachable, a broken connection.
    Network(io::Error),
    /// A reply came that is not DNS, or not an answer to this question.
    Malformed(String),
}

impl ExchangeError {
    fn from_io(error: io::Error) -> ExchangeError {
        match error.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
                ExchangeError::Refused
            }
            io::ErrorKind::TimedOut => ExchangeError::TimedOut,
            _ => ExchangeError::Network(error),
        }
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::TimedOut => write!(f, "no answer in time"),
            ExchangeError::Refused => write!(f, "connection refused"),
            ExchangeError::Network(error) => write!(f, "network error: {error}"),
            ExchangeError::Malformed(what) => write!(f, "bad reply: {what}"),
        }
    }
}

/// The question as a query message with a fresh random ID; DO set when
/// the signatures are wanted (a validating forwarder checks them here).
fn query(name: &Name, record_type: RecordType, dnssec_ok: bool) -> Message {
    let mut message = Message::new(random_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_PAYLOAD);
    edns.set_dnssec_ok(dnssec_ok);
    message.set_edns(edns);
    message
}

/// The query and its wire form.
fn encoded_query(
    name: &Name,
    record_type: RecordType,
    dnssec_ok: bool,
) -> Result<(Message, Vec<u8>), ExchangeError> {
    let sent = query(name, record_type, dnssec_ok);
    let bytes = sent
        .to_vec()
        .map_err(|error| ExchangeError::Malformed(error.to_string()))?;
    Ok((sent, bytes))
}

fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    // Without the system's randomness a fixed ID still works: the random
    // source port and the question check still guard the reply.
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// Whether `reply` answers `sent`: the same ID, a response, the same question.
fn answers(sent: &Message, reply: &Message) -> bool {
    reply.metadata.id == sent.metadata.id
        && reply.metadata.message_type == MessageType::Response
        && match (sent.queries.first(), reply.queries.first()) {
            (Some(asked), Some(answered)) => {
                // Names compare case-insensitively (an upstream may echo
                // the question in another case).
                asked.name() == answered.name()
                    && asked.query_type() == answered.query_type()
                    && answered.query_class() == DNSClass::IN
            }
            _ => false,
        }
}

/// Sends the question over UDP once and waits up to `wait` for its answer;
/// a truncated answer is asked again over TCP within the same time.
pub async fn udp(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    dnssec_ok: bool,
    wait: Duration,
) -> Result<Message, ExchangeError> {
    let (sent, bytes) = encoded_query(name, record_type, dnssec_ok)?;
    let started = tokio::time::Instant::now();
    let reply = timeout(wait, async {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(ExchangeError::from_io)?;
        // Connected: only the server's datagrams arrive, and an ICMP port
        // unreachable comes back as an error on the next receive.
        socket
            .connect(server)
            .await
            .map_err(ExchangeError::from_io)?;
        socket.send(&bytes).await.map_err(ExchangeError::from_io)?;
        let mut buffer = vec![0u8; usize::from(MAX_UDP_PAYLOAD).max(4096)];
        loop {
            let n = socket
                .recv(&mut buffer)
                .await
                .map_err(ExchangeError::from_io)?;
            // A reply that does not match is ignored, not believed: it may
            // be a late answer to an earlier send, or a forgery.
            match Message::from_vec(&buffer[..n]) {
                Ok(reply) if answers(&sent, &reply) => return Ok(reply),
                Ok(_) => tracing::debug!(%server, %name, "ignored a reply that does not match the question"),
                Err(error) => tracing::debug!(%server, %name, %error, "ignored a reply that is not DNS"),
            }
        }
    })
    .await
    .map_err(|_| ExchangeError::TimedOut)??;
    if reply.metadata.truncation {
        let left = wait.saturating_sub(started.elapsed());
        return tcp(server, name, record_type, dnssec_ok, left).await;
    }
    Ok(reply)
}

/// Sends the question over a new TCP connection and waits up to `wait`
/// (connecting included) for its answer.
pub async fn tcp(
    server: SocketAddr,
    name: &Name,
    record_type: RecordType,
    dnssec_ok: bool,
    wait: Duration,
) -> Result<Message, ExchangeError> {
    let (sent, bytes) = encoded_query(name, record_type, dnssec_ok)?;
    let length = u16::try_from(bytes.len())
        .map_err(|_| ExchangeError::Malformed("query too long".into()))?;
    let reply = timeout(wait, async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(ExchangeError::from_io)?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream
            .write_all(&framed)
            .await
            .map_err(ExchangeError::from_io)?;
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(ExchangeError::from_io)?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream
            .read_exact(&mut body)
            .await
            .map_err(ExchangeError::from_io)?;
        Ok::<_, ExchangeError>(body)
    })
    .await
    .map_err(|_| ExchangeError::TimedOut)??;
    let reply =
        Message::from_vec(&reply).map_err(|error| ExchangeError::Malformed(error.to_string()))?;
    if !answers(&sent, &reply) {
        return Err(ExchangeError::Malformed(
            "the reply does not match the question".into(),
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn name() -> Name {
        Name::from_ascii("www.example.org.").expect("name")
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_at_once_not_waited_out() {
        // A port that was just free: nothing listens there.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("port");
        let started = Instant::now();
        let result = udp(port, &name(), RecordType::A, false, Duration::from_secs(5)).await;
        assert!(matches!(result, Err(ExchangeError::Refused)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A server that answers every question with the question itself as a
    /// response, changed by `change` first; how many replies it sent.
    async fn echo_server(
        change: fn(&mut Message),
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let address = server.local_addr().expect("address");
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((n, from)) = server.recv_from(&mut buffer).await {
                let Ok(mut reply) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                reply.metadata.message_type = MessageType::Response;
                change(&mut reply);
                if let Ok(bytes) = reply.to_vec()
                    && server.send_to(&bytes, from).await.is_ok()
                {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        (address, sent)
    }

    #[tokio::test]
    async fn a_reply_with_another_id_is_ignored_until_the_time_is_up() {
        let (address, sent) = echo_server(|reply| {
            reply.metadata.id = reply.metadata.id.wrapping_add(1);
        })
        .await;
        let result = udp(
            address,
            &name(),
            RecordType::A,
            false,
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(result, Err(ExchangeError::TimedOut)), "{result:?}");
        assert_eq!(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the forged reply was sent"
        );
    }

    #[tokio::test]
    async fn a_matching_reply_is_taken() {
        let (address, _) = echo_server(|_| {}).await;
        let reply = udp(
            address,
            &name(),
            RecordType::A,
            false,
            Duration::from_secs(2),
        )
        .await
        .expect("answered");
        assert_eq!(reply.queries[0].name(), &name());
    }
}

//! Forwarding to the school's upstream resolvers: plain DNS (UDP, then TCP
//! on truncation; or TCP) through `exchange`, DNS-over-TLS and
//! DNS-over-HTTPS through a hickory name-server pool per server, which
//! keeps the connection open. Every transport hands back the whole
//! response, so `validating` can check its signatures. Each question goes to the servers in turn, a new send (with a new
//! ID) every `timeout_ms` or as soon as one fails, for at most `attempts`
//! rounds; earlier sends keep listening, so a slow server's late answer is
//! still taken. A server whose port is closed is not asked again for that
//! question. Negative answers come back as answers, not
//! errors; a question no server answered comes back as SERVFAIL with an
//! Extended DNS Error saying why (RFC 8914: 22 no reachable authority when
//! they were silent, 23 network error when they could not be reached).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{DnsRequestOptions, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{Config, UpstreamProtocol, parse_upstream_address};
use crate::dns::protocol::{EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, MAX_UDP_PAYLOAD};

use super::answer::{ExtendedError, UpstreamAnswer};
use super::exchange::{self, ExchangeError};
use super::upstream::{Asked, Upstream};

/// The school's upstream resolvers, asked in turn.
pub struct Forwarder {
    servers: Vec<Server>,
    attempts: usize,
    /// The wait before the next send, if no answer came.
    per_send: Duration,
    /// How long each send listens for its answer: the client's whole wait,
    /// since the cache's deadline ends the lookup anyway.
    patience: Duration,
}

struct Server {
    address: SocketAddr,
    transport: Transport,
}

enum Transport {
    Udp,
    Tcp,
    /// DNS-over-TLS or DNS-over-HTTPS: a hickory name-server pool for this
    /// server alone, which sends each question once, keeps the connection
    /// open and hands back the whole response (signatures included).
    Encrypted(Box<NameServerPool<TokioRuntimeProvider>>),
}

/// How one send to one server went.
enum Sent {
    Answered(Message),
    /// The server answered SERVFAIL or REFUSED: another may do better.
    Declined(ResponseCode),
    Failed(ExchangeError),
}

impl Forwarder {
    pub fn new(config: &Config) -> Result<Forwarder> {
        let per_send = Duration::from_millis(config.resolver.timeout_ms);
        let mut servers = Vec::new();
        let mut tls = None;
        for (i, upstream) in config.upstream.iter().enumerate() {
            let default_port = match upstream.protocol {
                UpstreamProtocol::Udp | UpstreamProtocol::Tcp => 53,
                UpstreamProtocol::Tls => 853,
                UpstreamProtocol::Https => 443,
            };
            let address = parse_upstream_address(upstream.address.get_ref(), default_port)
                .map_err(|message| anyhow::anyhow!("upstream[{i}].address: {message}"))?;
            let tls_name: Arc<str> = Arc::from(upstream.tls_name.clone().unwrap_or_default());
            let transport = match upstream.protocol {
                UpstreamProtocol::Udp => Transport::Udp,
                UpstreamProtocol::Tcp => Transport::Tcp,
                UpstreamProtocol::Tls | UpstreamProtocol::Https => {
                    let protocol = if upstream.protocol == UpstreamProtocol::Tls {
                        ProtocolConfig::Tls {
                            server_name: tls_name,
                        }
                    } else {
                        ProtocolConfig::Https {
                            server_name: tls_name,
                            path: Arc::from(upstream.https_path.as_deref().unwrap_or("/dns-query")),
                        }
                    };
                    if tls.is_none() {
                        let extra_roots: Vec<_> = config
                            .upstream
                            .iter()
                            .filter_map(|u| u.ca_file.as_ref())
                            .map(|path| config.resolve_path(path))
                            .collect();
                        tls = Some(tls_client_config(&extra_roots)?);
                    }
                    let tls = tls.clone().context("TLS set-up failed")?;
                    Transport::Encrypted(Box::new(encrypted_pool(address, protocol, per_send, tls)))
                }
            };
            servers.push(Server { address, transport });
        }
        Ok(Forwarder {
            servers,
            attempts: config.resolver.attempts.max(1),
            per_send,
            patience: Duration::from_millis(config.resolver.answer_within_ms),
        })
    }

    /// A forwarder to plain-DNS `servers` (a zone's own), timed as the
    /// config's `[resolver]` says.
    pub fn plain(servers: &[SocketAddr], config: &Config) -> Forwarder {
        Forwarder {
            servers: servers
                .iter()
                .map(|&address| Server {
                    address,
                    transport: Transport::Udp,
                })
                .collect(),
            attempts: config.resolver.attempts.max(1),
            per_send: Duration::from_millis(config.resolver.timeout_ms),
            patience: Duration::from_millis(config.resolver.answer_within_ms),
        }
    }

    async fn send(
        &self,
        server: &Server,
        name: &Name,
        record_type: RecordType,
        dnssec_ok: bool,
    ) -> Sent {
        let wait = self.patience;
        let reply = match &server.transport {
            Transport::Udp => {
                exchange::udp(server.address, name, record_type, dnssec_ok, wait).await
            }
            Transport::Tcp => {
                exchange::tcp(server.address, name, record_type, dnssec_ok, wait).await
            }
            Transport::Encrypted(pool) => encrypted(pool, name, record_type, dnssec_ok).await,
        };
        match reply {
            Ok(message) => match message.metadata.response_code {
                code @ (ResponseCode::ServFail | ResponseCode::Refused) => Sent::Declined(code),
                _ => Sent::Answered(message),
            },
            Err(error) => Sent::Failed(error),
        }
    }

    /// The first response to the question from any server, as it came
    /// (with its signatures when `dnssec_ok`); or, when none answered, the
    /// SERVFAIL to give the client, saying why.
    pub async fn ask_message(
        &self,
        name: &Name,
        record_type: RecordType,
        dnssec_ok: bool,
    ) -> Result<Message, UpstreamAnswer> {
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let fqdn = &fqdn;
        // The sends to make, in order: each server in turn, round after round.
        let mut order = (0..self.attempts).flat_map(|_| 0..self.servers.len());
        let mut closed = vec![false; self.servers.len()];
        let mut pending = FuturesUnordered::new();
        let mut why = Vec::new();
        let mut declined = None;
        let mut next_send = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_send {
                match order.find(|&i| !closed[i]) {
                    Some(i) => {
                        let server = &self.servers[i];
                        pending.push(async move {
                            (i, self.send(server, fqdn, record_type, dnssec_ok).await)
                        });
                        next_send = tokio::time::Instant::now() + self.per_send;
                    }
                    None if pending.is_empty() => break,
                    None => next_send = tokio::time::Instant::now() + self.patience,
                }
            }
            let sent = tokio::select! {
                sent = pending.next(), if !pending.is_empty() => sent,
                () = tokio::time::sleep_until(next_send) => continue,
            };
            let Some((i, sent)) = sent else { continue };
            let address = self.servers[i].address;
            match sent {
                Sent::Answered(message) => return Ok(message),
                Sent::Declined(code) => {
                    declined = Some(code);
                    let code_name = if code == ResponseCode::Refused {
                        "REFUSED"
                    } else {
                        "SERVFAIL"
                    };
                    why.push(format!("{address} answered {code_name}"));
                }
                Sent::Failed(error) => {
                    if matches!(error, ExchangeError::Refused | ExchangeError::Network(_)) {
                        closed[i] = true;
                    }
                    tracing::debug!(%name, %record_type, server = %address, %error, "upstream send failed");
                    why.push(format!("{address}: {error}"));
                }
            }
            // A failure moves on to the next send at once.
            next_send = tokio::time::Instant::now();
        }
        Err(failed(&why, declined, closed.iter().all(|&c| c)))
    }
}

impl Upstream for Forwarder {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(async move {
            match self.ask_message(name, record_type, false).await {
                Ok(message) => UpstreamAnswer::new(
                    message.metadata.response_code,
                    message.answers,
                    message.authorities,
                ),
                Err(failed) => failed,
            }
        })
    }
}

/// The SERVFAIL for a question no server answered, with why.
fn failed(why: &[String], declined: Option<ResponseCode>, all_unreachable: bool) -> UpstreamAnswer {
    let mut reasons = why.to_vec();
    reasons.dedup();
    let (code, text) = if all_unreachable {
        (
            EDE_NETWORK_ERROR,
            "the upstream servers could not be reached",
        )
    } else if declined.is_some() {
        (
            EDE_NO_REACHABLE_AUTHORITY,
            "the upstream servers could not answer",
        )
    } else {
        (
            EDE_NO_REACHABLE_AUTHORITY,
            "no upstream server answered in time",
        )
    };
    let mut answer = UpstreamAnswer::servfail();
    answer.extended_error = Some(ExtendedError {
        code,
        text: format!("Lollipop: {text} ({})", reasons.join("; ")).into(),
    });
    answer
}

fn encrypted_pool(
    address: SocketAddr,
    protocol: ProtocolConfig,
    per_send: Duration,
    tls: rustls::ClientConfig,
) -> NameServerPool<TokioRuntimeProvider> {
    let mut connection = ConnectionConfig::new(protocol);
    connection.port = address.port();
    let server = NameServerConfig::new(address.ip(), true, vec![connection]);
    let mut options = ResolverOpts::default();
    options.timeout = per_send;
    // One send per question: the forwarder does the retrying, across servers.
    options.attempts = 0;
    options.num_concurrent_reqs = 1;
    options.edns_payload_len = MAX_UDP_PAYLOAD;
    let context = PoolContext::new(options, TlsConfig { config: tls });
    NameServerPool::from_config([server], Arc::new(context), TokioRuntimeProvider::default())
}

/// One send over DNS-over-TLS or -HTTPS. hickory turns negative and
/// failed responses into errors; they are turned back into the response
/// they were, so every transport gives the forwarder the same shape.
async fn encrypted(
    pool: &NameServerPool<TokioRuntimeProvider>,
    name: &Name,
    record_type: RecordType,
    dnssec_ok: bool,
) -> Result<Message, ExchangeError> {
    let mut options = DnsRequestOptions::default();
    options.edns_payload_len = MAX_UDP_PAYLOAD;
    options.edns_set_dnssec_ok = dnssec_ok;
    let query = Query::query(name.clone(), record_type);
    let response = pool.lookup(query.clone(), options).next().await;
    let mut message = Message::query();
    message.add_query(query);
    let message = message.into_response();
    match response {
        Some(Ok(response)) => Ok(response.into_message()),
        Some(Err(NetError::Dns(DnsError::NoRecordsFound(no_records)))) => {
            let mut message = message;
            message.metadata.response_code = no_records.response_code;
            if let Some(authorities) = &no_records.authorities {
                message.authorities.extend(authorities.iter().cloned());
            }
            if let Some(soa) = no_records.soa {
                let soa = soa.into_record_of_rdata();
                if !message.authorities.contains(&soa) {
                    message.authorities.push(soa);
                }
            }
            Ok(message)
        }
        Some(Err(NetError::Dns(DnsError::ResponseCode(code)))) => {
            let mut message = message;
            message.metadata.response_code = code;
            Ok(message)
        }
        Some(Err(NetError::Timeout)) => Err(ExchangeError::TimedOut),
        Some(Err(NetError::Io(error))) => Err(match error.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
                ExchangeError::Refused
            }
            kind => ExchangeError::Network(std::io::Error::new(kind, error.to_string())),
        }),
        Some(Err(error)) => Err(ExchangeError::Malformed(error.to_string())),
        None => Err(ExchangeError::Malformed("no response".into())),
    }
}

/// The public web roots plus any certificate authorities the config names
/// (also the trust dashboard's, for its database).
pub fn tls_client_config(extra_roots: &[std::path::PathBuf]) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_roots {
        let mut added = 0;
        let certificates = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read the CA file {}", path.display()))?;
        for certificate in certificates {
            let certificate = certificate
                .with_context(|| format!("the CA file {} is not valid PEM", path.display()))?;
            roots
                .add(certificate)
                .with_context(|| format!("the CA file {}: bad certificate", path.display()))?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!("the CA file {} holds no PEM certificate", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up failed")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

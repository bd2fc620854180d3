//! Forwarding to the school's upstream resolvers (UDP/TCP, DNS-over-TLS,
//! DNS-over-HTTPS) through hickory-resolver, with failover between servers,
//! behind Lollipop's response cache; negative answers come back as answers,
//! not errors.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, Record, RecordType};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{Config, UpstreamProtocol, parse_upstream_address};
use crate::metrics::{UpstreamHealth, UpstreamStats};

use super::cache::{Lookup, ResponseCache};
use super::wire::WireRecords;

/// hickory-resolver's own cache sits behind Lollipop's, which answers every
/// repeat question; a small one is enough for the names a CNAME chain visits.
const RESOLVER_CACHE_ENTRIES: u64 = 256;

/// What the upstream said, in the shape of a response.
#[derive(Debug)]
pub struct UpstreamAnswer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// The records in wire form, written by the first response that
    /// carries them and copied by the rest (see `wire`).
    pub wire: OnceLock<Option<WireRecords>>,
}

impl UpstreamAnswer {
    pub fn new(code: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Self {
        UpstreamAnswer {
            code,
            answers,
            authorities,
            wire: OnceLock::new(),
        }
    }
}

impl Clone for UpstreamAnswer {
    /// A copy is made to be changed (its TTLs counted down): it starts
    /// without the wire form, which would no longer match.
    fn clone(&self) -> Self {
        UpstreamAnswer::new(self.code, self.answers.clone(), self.authorities.clone())
    }
}

pub struct Upstream {
    resolver: TokioResolver,
    /// Bounds the lookups waiting on the upstreams at once.
    in_flight: tokio::sync::Semaphore,
    cache: ResponseCache,
    stats: Arc<UpstreamStats>,
}

impl Upstream {
    pub fn new(config: &Config, stats: Arc<UpstreamStats>) -> Result<Upstream> {
        let mut name_servers = Vec::new();
        let mut extra_roots = Vec::new();
        for (i, upstream) in config.upstream.iter().enumerate() {
            let default_port = match upstream.protocol {
                UpstreamProtocol::Udp | UpstreamProtocol::Tcp => 53,
                UpstreamProtocol::Tls => 853,
                UpstreamProtocol::Https => 443,
            };
            let address = parse_upstream_address(upstream.address.get_ref(), default_port)
                .map_err(|message| anyhow::anyhow!("upstream[{i}].address: {message}"))?;
            let tls_name: Arc<str> = Arc::from(upstream.tls_name.clone().unwrap_or_default());
            let protocols = match upstream.protocol {
                // TCP follows UDP so truncated answers are retried over TCP.
                UpstreamProtocol::Udp => vec![ProtocolConfig::Udp, ProtocolConfig::Tcp],
                UpstreamProtocol::Tcp => vec![ProtocolConfig::Tcp],
                UpstreamProtocol::Tls => vec![ProtocolConfig::Tls {
                    server_name: tls_name,
                }],
                UpstreamProtocol::Https => vec![ProtocolConfig::Https {
                    server_name: tls_name,
                    path: Arc::from(upstream.https_path.as_deref().unwrap_or("/dns-query")),
                }],
            };
            let connections = protocols
                .into_iter()
                .map(|protocol| {
                    let mut connection = ConnectionConfig::new(protocol);
                    connection.port = address.port();
                    connection
                })
                .collect();
            name_servers.push(NameServerConfig::new(address.ip(), true, connections));
            if let Some(ca_file) = &upstream.ca_file {
                extra_roots.push(config.resolve_path(ca_file));
            }
        }

        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_millis(config.resolver.timeout_ms);
        options.attempts = config.resolver.attempts;
        options.cache_size = RESOLVER_CACHE_ENTRIES;
        options.use_hosts_file = ResolveHosts::Never;
        options.preserve_intermediates = true;
        options.ndots = 0;
        options.max_active_requests = 256;
        options.edns_payload_len = 1232;

        let provider = TokioRuntimeProvider::default();
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            provider,
        )
        .with_options(options)
        .with_tls_config(tls_client_config(&extra_roots)?)
        .build()
        .context("cannot set up the upstream resolvers")?;
        let cache_entries = usize::try_from(config.resolver.cache_entries).unwrap_or(usize::MAX);
        Ok(Upstream {
            resolver,
            in_flight: tokio::sync::Semaphore::new(config.resolver.max_in_flight.max(1)),
            cache: ResponseCache::new(cache_entries, stats.clone()),
            stats,
        })
    }

    /// Whether the upstreams are answering, for the status page.
    pub fn health(&self) -> UpstreamHealth {
        self.stats.health()
    }

    /// The answer for `name`/`record_type`: from the cache, from a lookup
    /// of the same question already in flight, or from the upstreams. Never
    /// fails: a failure is SERVFAIL, as a client expects.
    pub async fn resolve(&self, name: &Name, record_type: RecordType) -> Arc<UpstreamAnswer> {
        let key = self.cache.key(name, record_type);
        match self.cache.lookup(key, name, record_type) {
            Lookup::Hit(answer) => answer,
            Lookup::Ask(asking) => {
                let answer = self.ask(name, record_type).await;
                asking.finish(name, record_type, answer)
            }
            Lookup::Wait(mut answer) => {
                let shared = answer
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|answer| answer.clone());
                match shared {
                    Some(answer) => answer,
                    // The query that was asking gave up: ask ourselves.
                    None => Arc::new(self.ask(name, record_type).await),
                }
            }
        }
    }

    /// Answers held in the response cache now.
    pub fn cached_answers(&self) -> usize {
        self.cache.len()
    }

    /// One lookup at the upstreams, timed for `/metrics`.
    async fn ask(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let Ok(_slot) = self.in_flight.try_acquire() else {
            tracing::debug!(%name, %record_type, "too many upstream lookups at once: SERVFAIL");
            return UpstreamAnswer::new(ResponseCode::ServFail, Vec::new(), Vec::new());
        };
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let started = Instant::now();
        let lookup = self.resolver.lookup(fqdn, record_type).await;
        self.stats.observe(started.elapsed());
        let answer = match lookup {
            Ok(lookup) => UpstreamAnswer::new(
                ResponseCode::NoError,
                lookup.answers().to_vec(),
                lookup.authorities().to_vec(),
            ),
            Err(NetError::Dns(DnsError::NoRecordsFound(no_records))) => UpstreamAnswer::new(
                no_records.response_code,
                Vec::new(),
                no_records
                    .soa
                    .map(|soa| vec![soa.into_record_of_rdata()])
                    .unwrap_or_default(),
            ),
            Err(NetError::Dns(DnsError::ResponseCode(code))) => {
                UpstreamAnswer::new(code, Vec::new(), Vec::new())
            }
            Err(error) => {
                tracing::debug!(%name, %record_type, %error, "upstream lookup failed");
                UpstreamAnswer::new(ResponseCode::ServFail, Vec::new(), Vec::new())
            }
        };
        self.stats
            .note_outcome(answer.code == ResponseCode::ServFail);
        answer
    }
}

/// The public web roots plus any certificate authorities the config names.
fn tls_client_config(extra_roots: &[std::path::PathBuf]) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_roots {
        let mut added = 0;
        let certificates = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read upstream ca_file {}", path.display()))?;
        for certificate in certificates {
            let certificate = certificate
                .with_context(|| format!("upstream ca_file {} is not valid PEM", path.display()))?;
            roots
                .add(certificate)
                .with_context(|| format!("upstream ca_file {}: bad certificate", path.display()))?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!(
                "upstream ca_file {} holds no PEM certificate",
                path.display()
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up failed")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

//! Forwarding to the school's upstream resolvers (UDP/TCP, DNS-over-TLS,
//! DNS-over-HTTPS) through hickory-resolver, with failover between servers;
//! negative answers come back as answers, not errors.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{Config, UpstreamProtocol, parse_upstream_address};
use crate::dns::protocol::MAX_UDP_PAYLOAD;

use super::answer::UpstreamAnswer;
use super::upstream::{Asked, Upstream};

/// hickory-resolver's own cache sits behind Lollipop's, which answers every
/// repeat question; a small one is enough for the names a CNAME chain visits.
const RESOLVER_CACHE_ENTRIES: u64 = 256;

/// The school's upstream resolvers, asked in turn.
pub struct Forwarder {
    resolver: TokioResolver,
}

impl Forwarder {
    pub fn new(config: &Config) -> Result<Forwarder> {
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
        options.edns_payload_len = MAX_UDP_PAYLOAD;

        let provider = TokioRuntimeProvider::default();
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            provider,
        )
        .with_options(options)
        .with_tls_config(tls_client_config(&extra_roots)?)
        .build()
        .context("cannot set up the upstream resolvers")?;
        Ok(Forwarder { resolver })
    }
}

impl Upstream for Forwarder {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(async move {
            let mut fqdn = name.clone();
            fqdn.set_fqdn(true);
            match self.resolver.lookup(fqdn, record_type).await {
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
                    UpstreamAnswer::servfail()
                }
            }
        })
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

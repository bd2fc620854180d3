//! Forwarding with DNSSEC validation (`dnssec = "validate"` with
//! `mode = "forward"`): the school's upstreams are asked as by the plain
//! forwarder, with DO set, and hickory's DNSSEC handle checks what comes
//! back against the root trust anchor, asking the same upstreams for the
//! DNSKEY and DS sets on the way. Verdicts become answers as in recursion
//! (`validated`); a question no upstream answered keeps the forwarder's
//! own SERVFAIL and reason.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use futures_util::stream::{self, Stream, StreamExt};
use hickory_resolver::net::NetError;
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, DnsResponse, Query};
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::clock::Clock;
use crate::config::Config;
use crate::dns::protocol::{EDE_OTHER, MAX_UDP_PAYLOAD};
use crate::metrics::UpstreamStats;

use super::answer::UpstreamAnswer;
use super::forward::Forwarder;
use super::root_files::{read_trust_anchor, trust_anchor_path};
use super::trusted_clock::TrustedClock;
use super::upstream::{Asked, Upstream};
use super::validated;
use super::validation_time::{ClockedRuntime, with_clock};

/// Validation results remembered: as in recursion, repeats are answered
/// by Lollipop's cache in front, so this covers the DNSKEY and DS sets of
/// the zones in use.
const VALIDATION_CACHE_ENTRIES: usize = 4096;

tokio::task_local! {
    /// The forwarder's SERVFAIL (with its reason) for the question being
    /// validated, if no upstream answered: hickory's handle passes errors
    /// on as text, and the client is owed the Extended DNS Error.
    static UNANSWERED: Arc<Mutex<Option<UpstreamAnswer>>>;
}

/// The school's upstreams, their answers checked by DNSSEC.
pub struct ValidatingForwarder {
    handle: DnssecDnsHandle<ForwardHandle>,
    clock: Arc<TrustedClock>,
    stats: Arc<UpstreamStats>,
}

impl ValidatingForwarder {
    pub fn new(
        config: &Config,
        clock: &Clock,
        stats: Arc<UpstreamStats>,
    ) -> Result<ValidatingForwarder> {
        let anchor_path = trust_anchor_path(config);
        let anchors = Arc::new(read_trust_anchor(&anchor_path)?);
        let clock = Arc::new(TrustedClock::from_config(config, clock.clone()));
        let forwarder = ForwardHandle {
            forwarder: Arc::new(Forwarder::new(config)?),
        };
        let handle = DnssecDnsHandle::with_trust_anchor(forwarder, anchors)
            .validation_cache_size(VALIDATION_CACHE_ENTRIES);
        Ok(ValidatingForwarder {
            handle,
            clock,
            stats,
        })
    }

    async fn resolve(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let now = self.clock.note(&self.stats, true);
        let mut options = DnsRequestOptions::default();
        options.edns_payload_len = MAX_UDP_PAYLOAD;
        options.edns_set_dnssec_ok = true;
        let query = Query::query(fqdn.clone(), record_type);
        let unanswered = Arc::new(Mutex::new(None));
        let validated = UNANSWERED
            .scope(
                unanswered.clone(),
                with_clock(self.clock.clone(), async {
                    self.handle.lookup(query, options).next().await
                }),
            )
            .await;
        let mut answer = match validated {
            Some(Ok(response)) => {
                validated::from_message(response.into_message(), &fqdn, record_type, now)
            }
            Some(Err(error)) => validated::from_dnssec_error(name, &error).unwrap_or_else(|| {
                let forwarders_own = unanswered.lock().ok().and_then(|mut slot| slot.take());
                forwarders_own.unwrap_or_else(|| {
                    tracing::debug!(%name, %error, "validating forwarder failed: SERVFAIL");
                    validated::failure(
                        EDE_OTHER,
                        format!("Lollipop: DNSSEC validation of {name} could not finish: {error}"),
                    )
                })
            }),
            None => validated::failure(
                EDE_OTHER,
                format!("Lollipop: no answer came back for {name}"),
            ),
        };
        if let Some((signer, tag)) = validated::bogus_signature(&answer) {
            let keys = with_clock(self.clock.clone(), async {
                self.handle
                    .lookup(Query::query(signer.clone(), RecordType::DNSKEY), options)
                    .next()
                    .await
            })
            .await;
            if let Some(Ok(keys)) = keys {
                validated::note_missing_key(
                    &mut answer,
                    &signer,
                    tag,
                    &keys.into_message().answers,
                );
            }
        }
        // Signatures checked by a guessed time vouch for less.
        answer.authentic &= self.clock.is_trusted();
        answer
    }
}

impl Upstream for ValidatingForwarder {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(self.resolve(name, record_type))
    }
}

/// The forwarder as hickory's DNSSEC handle sees it: one request in, the
/// upstream's whole response (signatures included) out.
#[derive(Clone)]
struct ForwardHandle {
    forwarder: Arc<Forwarder>,
}

impl DnsHandle for ForwardHandle {
    type Response = Pin<Box<dyn Stream<Item = Result<DnsResponse, NetError>> + Send>>;
    type Runtime = ClockedRuntime;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let forwarder = self.forwarder.clone();
        Box::pin(stream::once(async move {
            let Some(query) = request.queries.first() else {
                return Err(NetError::from("no question in the request"));
            };
            match forwarder
                .ask_message(query.name(), query.query_type(), true)
                .await
            {
                Ok(message) => DnsResponse::from_message(message).map_err(NetError::from),
                Err(failed) => {
                    let text = failed
                        .extended_error
                        .as_ref()
                        .map(|error| error.text.clone())
                        .unwrap_or_else(|| "no upstream answered".into());
                    // The first failure is the one that ended the lookup.
                    let _ = UNANSWERED.try_with(|slot| {
                        if let Ok(mut slot) = slot.lock()
                            && slot.is_none()
                        {
                            *slot = Some(failed);
                        }
                    });
                    Err(NetError::from(text.to_string()))
                }
            }
        }))
    }
}

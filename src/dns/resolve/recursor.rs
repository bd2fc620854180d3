//! Recursion: answering from the authoritative servers themselves, from the
//! root hints down, through hickory-resolver's recursor, with DNSSEC
//! validation against the root trust anchor when asked. Turns what the
//! recursor returns into an [`UpstreamAnswer`]: negative answers as answers,
//! Bogus data and failures as SERVFAIL with an Extended DNS Error saying why,
//! validated answers marked authentic (the codec sets AD for clients that
//! ask). Filtering is the pipeline's, the same as for forwarding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, Record, RecordType};
use hickory_resolver::recursor::{
    self, DnssecConfig, DnssecPolicy, QNameMinimization, RecursorError, RecursorOptions,
};

use crate::clock::Clock;
use crate::config::{Config, DnssecMode, parse_network};
use crate::dns::protocol::{EDE_NO_REACHABLE_AUTHORITY, EDE_OTHER, is_dnssec_only};
use crate::metrics::UpstreamStats;

use super::answer::UpstreamAnswer;
use super::trusted_clock::TrustedClock;
use super::upstream::{Asked, Upstream};
use super::validated::{self, failure, from_message};

pub use super::root_files::{read_root_hints, read_trust_anchor, trust_anchor_path};
use super::validation_time::{ClockedRuntime, with_clock};

/// The recursor's own response cache, in bytes: a quarter of
/// `[resolver] cache_mb`, at least 1 MiB (hickory counts entries, up to
/// 1,048,576 by default; the copy under vendor/ weighs them by their wire
/// size). Lollipop's cache sits in front and answers every repeat
/// question, so this one only needs the names a resolution passes through:
/// the NS probes of QNAME minimisation, CNAME targets, and (validating) the
/// DS and DNSKEY sets. A validating recursor keeps a second cache of the
/// same budget for validated responses.
fn response_cache_bytes(config: &Config) -> u64 {
    const AT_LEAST: u64 = 1 << 20;
    (config.resolver.cache_bytes() as u64 / 4).max(AT_LEAST)
}

/// Zones whose name servers are remembered (hickory's default, already
/// bounded): each entry is a zone's server pool. Dropping one costs a walk
/// down from the nearest cached parent, not from the root.
const NS_CACHE_ENTRIES: usize = 1024;

/// Validation results remembered (the default is 1,048,576): as for the
/// response cache, repeats are answered in front, so this need only cover
/// the DNSKEY/DS sets of the zones in use.
const VALIDATION_CACHE_ENTRIES: usize = 4096;

/// How deep CNAME chains and the name-server lookups of glueless
/// delegations may nest (hickory's default, kept: real CNAME chains of
/// CDNs reach 4–6 links, and each level also counts name-server lookups).
/// The work per question is bounded besides by hickory's own cap of 200
/// upstream queries per request and by [`Recursor::ceiling`].
const RECURSION_LIMIT: u8 = 24;

/// The time left to the client's deadline that a recursion gives back, so
/// its own SERVFAIL (with the reason) reaches the client before the cache's
/// generic "no answer in time".
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// Answers from the root down.
pub struct Recursor {
    inner: recursor::Recursor<ClockedRuntime>,
    /// What signatures are checked against while the clock is not trusted.
    clock: Arc<TrustedClock>,
    stats: Arc<UpstreamStats>,
    /// Longest a question may take in all: the client's `answer_within`
    /// less [`DEADLINE_MARGIN`]; the recursion's future is dropped at that
    /// point, and with it the queries it was waiting on.
    ceiling: Duration,
    validating: bool,
}

impl Recursor {
    pub fn new(config: &Config, clock: &Clock, stats: Arc<UpstreamStats>) -> Result<Recursor> {
        let resolver = &config.resolver;
        let lists_dir = config.resolve_path(&config.server.lists_dir);
        let hints_path = config.resolve_path(&resolver.root_hints_in(&lists_dir));
        let roots = read_root_hints(&hints_path)?;
        let options = RecursorOptions {
            response_cache_size: response_cache_bytes(config),
            ns_cache_size: NS_CACHE_ENTRIES,
            recursion_limit: RECURSION_LIMIT,
            ns_recursion_limit: RECURSION_LIMIT,
            allow_server: resolver
                .allow_servers
                .iter()
                .filter_map(|net| parse_network(net.get_ref()).ok())
                .collect(),
            // QNAME minimisation (RFC 9156), relaxed: an NXDOMAIN for a
            // shortened name does not end the lookup, since some servers
            // wrongly answer NXDOMAIN for empty non-terminals (Unbound's
            // default is the same, qname-minimisation-strict: no).
            qname_minimization: QNameMinimization::Relaxed,
            // The rest as hickory has them: EDNS 1232, the deny list of
            // private and special server addresses.
            ..RecursorOptions::default()
        };
        let validating = resolver.dnssec_mode() == DnssecMode::Validate;
        let policy = if validating {
            let anchor_path = trust_anchor_path(config);
            let mut dnssec = DnssecConfig::default();
            dnssec.trust_anchor = Some(Arc::new(read_trust_anchor(&anchor_path)?));
            dnssec.validation_cache_size = Some(VALIDATION_CACHE_ENTRIES);
            DnssecPolicy::ValidateWithStaticKey(dnssec)
        } else {
            DnssecPolicy::SecurityUnaware
        };
        let clock = Arc::new(TrustedClock::from_config(config, clock.clone()));
        let inner = recursor::Recursor::new(
            &roots,
            policy,
            None,
            options,
            ClockedRuntime::new(clock.clone()),
        )
        .map_err(|error| {
            anyhow::anyhow!(
                "[resolver] mode = \"recursive\": the recursor could not start: {error}"
            )
        })?;
        let recursor = Recursor {
            inner,
            clock,
            stats,
            ceiling: Duration::from_millis(resolver.answer_within_ms)
                .saturating_sub(DEADLINE_MARGIN),
            validating,
        };
        recursor.clock.note(&recursor.stats, recursor.validating);
        Ok(recursor)
    }

    async fn resolve(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let query = Query::query(fqdn.clone(), record_type);
        // DO set whenever validating, whatever the client asked: the answer
        // is cached for every client, the RRSIGs tell an expired signature,
        // and the codec leaves them out for clients without DO.
        let now = self.clock.note(&self.stats, self.validating);
        let started = Instant::now();
        let asked = with_clock(
            self.clock.clone(),
            self.inner.resolve(query, started, self.validating),
        );
        let mut answer = match tokio::time::timeout(self.ceiling, asked).await {
            Ok(Ok(message)) => from_message(message, &fqdn, record_type, now),
            Ok(Err(error)) => from_error(name, error),
            Err(_) => failure(
                EDE_NO_REACHABLE_AUTHORITY,
                format!(
                    "Lollipop: recursion for {name} got no answer from the authoritative servers within {:.1} s",
                    self.ceiling.as_secs_f32()
                ),
            ),
        };
        if let Some((signer, tag)) = validated::bogus_signature(&answer) {
            let left = self.ceiling.saturating_sub(started.elapsed());
            if let Some(keys) = self.signer_keys(&signer, left).await {
                validated::note_missing_key(&mut answer, &signer, tag, &keys);
            }
        }
        // Signatures checked by a guessed time vouch for less: no AD
        // until the clock is trusted.
        answer.authentic &= self.clock.is_trusted();
        answer
    }

    /// `signer`'s DNSKEY set, as validated (usually cached already), if it
    /// comes within `left`.
    async fn signer_keys(&self, signer: &Name, left: Duration) -> Option<Vec<Record>> {
        let query = Query::query(signer.clone(), RecordType::DNSKEY);
        let asked = with_clock(
            self.clock.clone(),
            self.inner.resolve(query, Instant::now(), false),
        );
        match tokio::time::timeout(left, asked).await {
            Ok(Ok(message)) => Some(message.answers),
            _ => None,
        }
    }
}

impl Upstream for Recursor {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(self.resolve(name, record_type))
    }
}

/// A failed resolution: a negative answer (NXDOMAIN, NODATA) as an answer
/// with its SOA; Bogus data as SERVFAIL with EDE 6 (see `validated`);
/// everything else as SERVFAIL saying what went wrong.
fn from_error(name: &Name, error: RecursorError) -> UpstreamAnswer {
    if let RecursorError::Net(error) = &error
        && let Some(answer) = validated::from_dnssec_error(name, error)
    {
        return answer;
    }
    let nx_domain = error.is_nx_domain();
    if nx_domain || error.is_no_records_found() {
        let code = if nx_domain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        // The denial's proof (NSEC/NSEC3 and the signatures), for clients
        // that set DO; the codec keeps it from the others.
        let proof: Vec<Record> = match &error {
            RecursorError::Negative(data) => data.authorities.clone(),
            RecursorError::Net(NetError::Dns(DnsError::NoRecordsFound(no_records))) => {
                no_records.authorities.clone()
            }
            _ => None,
        }
        .iter()
        .flat_map(|records| records.iter())
        .filter(|record| is_dnssec_only(record.record_type()))
        .cloned()
        .collect();
        let soa: Vec<Record> = error
            .into_soa()
            .map(|soa| soa.into_record_of_rdata())
            .into_iter()
            .collect();
        let authentic = !soa.is_empty() && soa.iter().all(|r| r.proof == Proof::Secure);
        let mut authorities = soa;
        authorities.extend(proof);
        let mut answer = UpstreamAnswer::new(code, Vec::new(), authorities);
        answer.authentic = authentic;
        return answer;
    }
    tracing::debug!(%name, %error, "recursion failed: SERVFAIL");
    // hickory passes some errors on as text only ("net error: net error:
    // DNS error: error response: Query Refused"): the kind is read from the
    // text then, and the repeated prefixes dropped.
    let text = error.to_string().replace("net error: ", "");
    let unreachable = matches!(
        &error,
        RecursorError::Timeout
            | RecursorError::Io(_)
            | RecursorError::Net(
                NetError::Timeout
                    | NetError::NoConnections
                    | NetError::Io(_)
                    | NetError::Dns(DnsError::ResponseCode(_))
            )
    ) || ["error response:", "timed out", "no connections"]
        .iter()
        .any(|sign| text.contains(sign));
    // RFC 8914: 22 when no authoritative server could be reached or all
    // refused to answer; 0 with the reason for the rest (limits met, a
    // malformed answer).
    let code = if unreachable {
        EDE_NO_REACHABLE_AUTHORITY
    } else {
        EDE_OTHER
    };
    failure(
        code,
        format!("Lollipop: recursion for {name} failed: {text}"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
    use hickory_resolver::proto::rr::rdata::TXT;
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    use hickory_resolver::{ResponseCache, TtlConfig};

    #[test]
    fn the_recursors_cache_is_bounded_by_bytes_whatever_the_responses_sizes() {
        const BUDGET: u64 = 256 * 1024;
        let cache = ResponseCache::with_byte_capacity(BUDGET, TtlConfig::default());
        let now = Instant::now();
        // 2,000 responses of about 1.2 KiB: 2.4 MiB offered to 256 KiB.
        for i in 0..2000 {
            let name = Name::from_ascii(format!("n{i}.example.")).expect("name");
            let query = Query::query(name.clone(), RecordType::TXT);
            let mut message = Message::new(1, MessageType::Response, OpCode::Query);
            message.add_query(query.clone());
            let text = TXT::new(vec!["x".repeat(200); 6]);
            message.add_answer(Record::from_rdata(name, 3600, RData::TXT(text)));
            cache.insert(query, Ok(message), now);
        }
        let (entries, bytes) = cache.usage();
        assert!(bytes <= BUDGET, "{bytes} bytes in a {BUDGET}-byte cache");
        assert!(
            (100..=250).contains(&entries),
            "about 256 KiB / 1.4 KiB entries kept, not a count: {entries}"
        );
    }
}

//! Recursion: answering from the authoritative servers themselves, from the
//! root hints down, through hickory-resolver's recursor, with DNSSEC
//! validation against the root trust anchor when asked. Turns what the
//! recursor returns into an [`UpstreamAnswer`]: negative answers as answers,
//! Bogus data and failures as SERVFAIL with an Extended DNS Error saying why,
//! validated answers marked authentic (the codec sets AD for clients that
//! ask). Filtering is the pipeline's, the same as for forwarding.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Result;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType, SerialNumber};
use hickory_resolver::recursor::{
    self, DnssecConfig, DnssecPolicy, QNameMinimization, RecursorError, RecursorOptions,
};

use crate::clock::Clock;
use crate::config::{Config, DnssecMode, parse_network};
use crate::dns::protocol::{
    EDE_DNSSEC_BOGUS, EDE_NO_REACHABLE_AUTHORITY, EDE_OTHER, EDE_SIGNATURE_EXPIRED, is_dnssec_only,
};
use crate::metrics::UpstreamStats;

use super::answer::{ExtendedError, UpstreamAnswer};
use super::trusted_clock::TrustedClock;
use super::upstream::{Asked, Upstream};

pub use super::root_files::{read_root_hints, read_trust_anchor};
use super::validation_time::{ClockedRuntime, with_clock};

/// The recursor's own response cache, in entries (its default is
/// 1,048,576). Lollipop's byte-bounded cache sits in front and answers
/// every repeat question, so this one only needs the names a resolution
/// passes through: the NS probes of QNAME minimisation, CNAME targets, and
/// (validating) the DS and DNSKEY sets. A few thousand covers a school's
/// working set of zones; at a few hundred bytes to ~2 KiB an entry it stays
/// within a few MiB on a Pi. A validating recursor keeps a second cache of
/// the same size for validated responses.
const RESPONSE_CACHE_ENTRIES: u64 = 4096;

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
            response_cache_size: RESPONSE_CACHE_ENTRIES,
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
            let anchor_path = config.resolve_path(&resolver.trust_anchor_in(&lists_dir));
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
        recursor.note_clock();
        Ok(recursor)
    }

    /// Tells the status page and `/metrics` whether signatures are being
    /// checked by a clock not yet trusted; returns the time they are
    /// checked against.
    fn note_clock(&self) -> u32 {
        let time = self.clock.validation_time();
        let untrusted = self.validating && !self.clock.is_trusted();
        self.stats.clock_untrusted.store(untrusted, Relaxed);
        self.stats.validating_as_of.store(time, Relaxed);
        time as u32
    }

    async fn resolve(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let query = Query::query(fqdn.clone(), record_type);
        // DO set whenever validating, whatever the client asked: the answer
        // is cached for every client, the RRSIGs tell an expired signature,
        // and the codec leaves them out for clients without DO.
        let now = self.note_clock();
        let asked = with_clock(
            self.clock.clone(),
            self.inner.resolve(query, Instant::now(), self.validating),
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
        // Signatures checked by a guessed time vouch for less: no AD
        // until the clock is trusted.
        answer.authentic &= self.clock.is_trusted();
        answer
    }
}

impl Upstream for Recursor {
    fn ask<'a>(&'a self, name: &'a Name, record_type: RecordType) -> Asked<'a> {
        Box::pin(self.resolve(name, record_type))
    }
}

/// A positive (or referral-free NOERROR) response: Bogus data becomes
/// SERVFAIL; otherwise the records in CNAME-chain order, marked authentic
/// when every record was proven Secure.
fn from_message(
    message: Message,
    qname: &Name,
    record_type: RecordType,
    now: u32,
) -> UpstreamAnswer {
    let bogus: Vec<&Record> = message
        .answers
        .iter()
        .chain(&message.authorities)
        .filter(|record| record.proof == Proof::Bogus)
        .collect();
    if let Some(first) = bogus.first() {
        let expired = message
            .answers
            .iter()
            .chain(&message.authorities)
            .any(|record| signature_expired(record, now));
        let (code, why) = if expired {
            (EDE_SIGNATURE_EXPIRED, "its signature has expired")
        } else {
            (EDE_DNSSEC_BOGUS, "its signature does not validate")
        };
        tracing::debug!(name = %first.name, record_type = %first.record_type(), why, "DNSSEC Bogus answer: SERVFAIL");
        let text = format!(
            "Lollipop: DNSSEC validation failed for {} {}: {why}",
            first.name,
            first.record_type()
        );
        let mut failed = failure(code, text);
        // The data as given, for a client that set CD: never authentic.
        let code = message.metadata.response_code;
        let answers = in_chain_order(message.answers, qname);
        failed.unchecked = Some(Arc::new(UpstreamAnswer::new(
            code,
            answers,
            message.authorities,
        )));
        return failed;
    }
    // The data itself decides; the signatures' own proof is not what AD
    // vouches for (an RRSIG asked for by type is data, though).
    let is_data = |record: &Record| {
        record.record_type() == record_type || !is_dnssec_only(record.record_type())
    };
    let authentic = !message.answers.is_empty()
        && message
            .answers
            .iter()
            .chain(&message.authorities)
            .filter(|record| is_data(record))
            .all(|record| record.proof == Proof::Secure);
    let code = message.metadata.response_code;
    // RRSIGs (and NSECs) are kept: a client that sets DO is owed them (RFC
    // 4035 3.2.1, and a validating stub or DC behind Lollipop checks them);
    // the codec leaves them out for clients without DO, and the cache
    // counts their bytes against its budget.
    // The question as asked: the message's own may be a later link's.
    let answers = in_chain_order(message.answers, qname);
    let mut answer = UpstreamAnswer::new(code, answers, message.authorities);
    answer.authentic = authentic;
    answer
}

/// `answers` in the order of the CNAME chain from `qname`: the recursor
/// puts the chain's first CNAME last, and a stub that reads the answer
/// section in order (glibc's) skips records whose owner it has not reached
/// yet. Records off the chain keep their place after it.
fn in_chain_order(mut answers: Vec<Record>, qname: &Name) -> Vec<Record> {
    let mut ordered = Vec::with_capacity(answers.len());
    let mut owner = qname.clone();
    loop {
        let (here, rest): (Vec<Record>, Vec<Record>) =
            answers.into_iter().partition(|record| record.name == owner);
        answers = rest;
        // Each turn takes at least one record, so the loop ends.
        if here.is_empty() {
            break;
        }
        let next = here.iter().find_map(|record| match &record.data {
            RData::CNAME(target) => Some(target.0.clone()),
            _ => None,
        });
        ordered.extend(here);
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    ordered.extend(answers);
    ordered
}

/// Whether `record` is an RRSIG past its expiry time (serial arithmetic,
/// RFC 4034 3.1.5, as the times wrap in 2106).
fn signature_expired(record: &Record, now: u32) -> bool {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => {
            rrsig.input().sig_expiration < SerialNumber::new(now)
        }
        _ => false,
    }
}

/// A failed resolution: a negative answer (NXDOMAIN, NODATA) as an answer
/// with its SOA; Bogus data as SERVFAIL with EDE 6; everything else as
/// SERVFAIL saying what went wrong.
fn from_error(name: &Name, error: RecursorError) -> UpstreamAnswer {
    if let RecursorError::Net(NetError::Dns(DnsError::Nsec {
        response, proof, ..
    })) = &error
    {
        if *proof == Proof::Bogus {
            tracing::debug!(%name, "DNSSEC Bogus denial of existence: SERVFAIL");
            let mut failed = failure(
                EDE_DNSSEC_BOGUS,
                format!(
                    "Lollipop: DNSSEC validation failed for {name}: the proof that it does not exist does not validate"
                ),
            );
            // The denial as given, for a client that set CD.
            failed.unchecked = Some(Arc::new(UpstreamAnswer::new(
                response.metadata.response_code,
                Vec::new(),
                response.authorities.clone(),
            )));
            return failed;
        }
        // An unproven (Insecure) negative answer: as the server gave it.
        let code = response.metadata.response_code;
        let authorities = response
            .authorities
            .iter()
            .filter(|record| record.record_type() == RecordType::SOA)
            .cloned()
            .collect();
        return UpstreamAnswer::new(code, Vec::new(), authorities);
    }
    if matches!(
        &error,
        RecursorError::Net(NetError::Dns(DnsError::DnssecBogus))
    ) {
        return failure(
            EDE_DNSSEC_BOGUS,
            format!("Lollipop: DNSSEC validation failed for {name}"),
        );
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

fn failure(code: u16, text: String) -> UpstreamAnswer {
    let mut answer = UpstreamAnswer::servfail();
    answer.extended_error = Some(ExtendedError { code, text });
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cname_chain_is_put_in_order_from_the_question() {
        let record = |owner: &str, data: RData| {
            Record::from_rdata(Name::from_ascii(owner).expect("name"), 60, data)
        };
        let cname = |target: &str| {
            RData::CNAME(hickory_resolver::proto::rr::rdata::CNAME(
                Name::from_ascii(target).expect("name"),
            ))
        };
        let address = RData::A(hickory_resolver::proto::rr::rdata::A([192, 0, 2, 1].into()));
        let shuffled = vec![
            record("b.test.", cname("c.test.")),
            record("c.test.", address.clone()),
            record("A.test.", cname("b.test.")),
        ];
        let ordered = in_chain_order(shuffled, &Name::from_ascii("a.test.").expect("name"));
        let owners: Vec<String> = ordered.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(owners, ["A.test.", "b.test.", "c.test."]);
    }
}

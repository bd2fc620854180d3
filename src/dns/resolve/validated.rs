//! What a DNSSEC-validated response becomes, for recursion and for a
//! validating forwarder alike: Bogus data SERVFAIL with the Extended DNS
//! Error that says why (6 Bogus, 7 Signature Expired, 8 Signature Not Yet
//! Valid, 9 DNSKEY Missing once the signer's keys are looked at), the data as given kept aside for clients that set CD, answers
//! put in CNAME-chain order, and AD earned only when every data record was
//! proven Secure, negative answers included.

use std::sync::Arc;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use crate::dns::protocol::{
    EDE_DNSKEY_MISSING, EDE_DNSSEC_BOGUS, EDE_SIGNATURE_EXPIRED, EDE_SIGNATURE_NOT_YET_VALID,
    is_dnssec_only,
};

use super::answer::{ExtendedError, UpstreamAnswer};

/// A positive (or referral-free NOERROR) response: Bogus data becomes
/// SERVFAIL; otherwise the records in CNAME-chain order, marked authentic
/// when every record was proven Secure.
pub fn from_message(
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
        let signatures = || message.answers.iter().chain(&message.authorities);
        let (code, why) = if signatures().any(|record| signature_expired(record, now)) {
            (EDE_SIGNATURE_EXPIRED, "its signature has expired")
        } else if signatures().any(|record| signature_not_yet_valid(record, now)) {
            (
                EDE_SIGNATURE_NOT_YET_VALID,
                "its signature is not valid yet",
            )
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
    // A positive answer is authentic when its records were proven; a
    // negative one (hickory has already checked its NSEC/NSEC3 denial)
    // when its SOA was.
    let authentic = if message.answers.is_empty() {
        let mut soa = message
            .authorities
            .iter()
            .filter(|record| record.record_type() == RecordType::SOA)
            .peekable();
        soa.peek().is_some() && soa.all(|record| record.proof == Proof::Secure)
    } else {
        message
            .answers
            .iter()
            .chain(&message.authorities)
            .filter(|record| is_data(record))
            .all(|record| record.proof == Proof::Secure)
    };
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

/// Whether `record` is an RRSIG whose inception is still to come (serial
/// arithmetic, as for expiry).
fn signature_not_yet_valid(record: &Record, now: u32) -> bool {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => {
            rrsig.input().sig_inception > SerialNumber::new(now)
        }
        _ => false,
    }
}

/// A validation verdict hickory gives as an error: a Bogus denial of
/// existence SERVFAILs with EDE 6 (the denial as given kept for CD
/// clients); an unproven (Insecure) one is the negative answer as the
/// server gave it; other Bogus data SERVFAILs. `None` for every other error.
pub fn from_dnssec_error(name: &Name, error: &NetError) -> Option<UpstreamAnswer> {
    match error {
        NetError::Dns(DnsError::Nsec {
            response, proof, ..
        }) => {
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
                return Some(failed);
            }
            let code = response.metadata.response_code;
            let authorities = response
                .authorities
                .iter()
                .filter(|record| record.record_type() == RecordType::SOA)
                .cloned()
                .collect();
            Some(UpstreamAnswer::new(code, Vec::new(), authorities))
        }
        NetError::Dns(DnsError::DnssecBogus) => Some(failure(
            EDE_DNSSEC_BOGUS,
            format!("Lollipop: DNSSEC validation failed for {name}"),
        )),
        _ => None,
    }
}

/// For a Bogus SERVFAIL (EDE 6): the zone and key tag its first signature
/// names, so the caller can fetch that zone's keys and tell a missing key
/// (EDE 9) from a bad signature. hickory's verdict does not say which.
pub fn bogus_signature(answer: &UpstreamAnswer) -> Option<(Name, u16)> {
    if answer.extended_error.as_ref()?.code != EDE_DNSSEC_BOGUS {
        return None;
    }
    let data = answer.unchecked.as_ref()?;
    data.answers
        .iter()
        .chain(&data.authorities)
        .find_map(|record| match &record.data {
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => {
                Some((rrsig.input().signer_name.clone(), rrsig.input().key_tag))
            }
            _ => None,
        })
}

/// Makes a Bogus SERVFAIL say EDE 9 (DNSKEY Missing) when `keys`, the
/// signer's DNSKEY set, holds no key with the signature's tag.
pub fn note_missing_key(answer: &mut UpstreamAnswer, signer: &Name, tag: u16, keys: &[Record]) {
    let published = keys.iter().any(|record| match &record.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(key)) => key.calculate_key_tag().ok() == Some(tag),
        _ => false,
    });
    if published {
        return;
    }
    if let Some(error) = answer.extended_error.as_mut() {
        error.code = EDE_DNSKEY_MISSING;
        error.text = Arc::from(format!(
            "{}: it is signed with key {tag}, which {signer} does not publish",
            error
                .text
                .split(": its signature")
                .next()
                .unwrap_or(&error.text)
        ));
    }
}

pub fn failure(code: u16, text: String) -> UpstreamAnswer {
    let mut answer = UpstreamAnswer::servfail();
    answer.extended_error = Some(ExtendedError {
        code,
        text: text.into(),
    });
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

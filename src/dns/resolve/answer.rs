//! The shapes of Lollipop's answers: what the upstream said, blocked
//! answers (null address, NXDOMAIN or block page) with their Extended DNS
//! Error, special-name answers, and safe-search CNAME rewrites joined to
//! the target's records. `codec` writes them to the wire.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, HINFO};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use crate::config::{BlockAnswer, BlockingConfig};
use crate::policy::Explanation;

/// The minimal ANY answer's TTL: RFC 8482 suggests a long one, since the
/// answer never changes.
const MINIMAL_ANY_TTL: u32 = 3600;

/// What the upstream said, in the shape of a response.
#[derive(Debug)]
pub struct UpstreamAnswer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// The records in wire form, written by the codec for the first
    /// response that carries them and copied by the rest.
    pub wire: OnceLock<Option<WireRecords>>,
    /// Why there is no better answer: an upstream failure, or an answer
    /// served stale (RFC 8767); passed on to the client.
    pub extended_error: Option<ExtendedError>,
    /// Every record was proven Secure by DNSSEC validation here: the codec
    /// sets AD for a client that asked with DO or AD (RFC 6840 5.7).
    pub authentic: bool,
    /// For an answer that failed DNSSEC validation (this one is then its
    /// SERVFAIL): the data as the servers gave it, unvalidated, for a
    /// client that set CD (RFC 4035 3.2.2) and so checks it itself. Kept
    /// beside the verdict, never in its place, so the cache can only hand
    /// it to a client that asked for it.
    pub unchecked: Option<Arc<UpstreamAnswer>>,
}

impl UpstreamAnswer {
    pub fn new(code: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Self {
        UpstreamAnswer {
            code,
            answers,
            authorities,
            wire: OnceLock::new(),
            extended_error: None,
            authentic: false,
            unchecked: None,
        }
    }

    /// A failure to get any answer.
    pub fn servfail() -> Self {
        UpstreamAnswer::new(ResponseCode::ServFail, Vec::new(), Vec::new())
    }

    /// What a client that set CD (checking disabled) is given: the
    /// unvalidated data when validation failed, otherwise this answer.
    pub fn for_checking_disabled(self: &Arc<Self>) -> Arc<UpstreamAnswer> {
        self.unchecked.clone().unwrap_or_else(|| self.clone())
    }
}

impl Clone for UpstreamAnswer {
    /// A copy is made to be changed (its TTLs counted down): it starts
    /// without the wire form, which would no longer match.
    fn clone(&self) -> Self {
        let mut copy =
            UpstreamAnswer::new(self.code, self.answers.clone(), self.authorities.clone());
        copy.extended_error = self.extended_error.clone();
        copy.authentic = self.authentic;
        copy.unchecked = self.unchecked.clone();
        copy
    }
}

/// An upstream answer's answer and authority records as they go on the
/// wire after a question of `start - 12` bytes; only `codec` writes and
/// reads them.
#[derive(Debug, Clone)]
pub struct WireRecords {
    /// Where the records start: the header and question length.
    pub start: usize,
    pub bytes: Box<[u8]>,
    pub answers: u16,
    pub authorities: u16,
    /// Holds RRSIG, NSEC or NSEC3, which a client without DO is not sent.
    pub dnssec_only: bool,
    /// Where each record's TTL is in `bytes`, so a countdown rewrites
    /// four bytes a record instead of writing the records again.
    pub ttl_offsets: Box<[u16]>,
}

impl WireRecords {
    /// The same records with every TTL lowered by `age` seconds (not below
    /// zero): byte for byte what writing the counted-down records gives.
    /// `None` if an offset is out of place (never, for bytes the codec wrote).
    pub fn counted_down(&self, age: u32) -> Option<WireRecords> {
        let mut counted = self.clone();
        for &offset in &self.ttl_offsets {
            let ttl = counted
                .bytes
                .get_mut(usize::from(offset)..usize::from(offset) + 4)?;
            let left = u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]]).saturating_sub(age);
            ttl.copy_from_slice(&left.to_be_bytes());
        }
        Some(counted)
    }
}

/// An Extended DNS Error (RFC 8914) to attach to the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedError {
    pub code: u16,
    /// Shared, not copied: a blocked answer's text is the policy's.
    pub text: Arc<str>,
}

/// Everything the response needs besides the request's own header and question.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: ResponseCode,
    /// Records made here (a blocked answer, a safe-search CNAME), sent
    /// before the upstream's.
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// The upstream's answer, shared with the response cache, not copied.
    pub upstream: Option<Arc<UpstreamAnswer>>,
    pub extended_error: Option<ExtendedError>,
    /// Why the name was blocked, for the block log; None when it was not.
    pub explanation: Option<Explanation>,
}

impl Answer {
    pub fn from_upstream(upstream: Arc<UpstreamAnswer>) -> Answer {
        Answer {
            code: upstream.code,
            answers: Vec::new(),
            authorities: Vec::new(),
            extended_error: upstream.extended_error.clone(),
            upstream: Some(upstream),
            explanation: None,
        }
    }

    /// Whether the response may carry AD: the upstream's answer as it
    /// came, proven Secure, with nothing made here added to it.
    pub fn authentic(&self) -> bool {
        self.answers.is_empty()
            && self.authorities.is_empty()
            && self.explanation.is_none()
            && self
                .upstream
                .as_ref()
                .is_some_and(|upstream| upstream.authentic)
    }

    /// The answer section: records made here, then the upstream's.
    pub fn answer_records(&self) -> impl Iterator<Item = &Record> {
        let upstream = self.upstream.as_deref().map(|u| u.answers.as_slice());
        self.answers.iter().chain(upstream.unwrap_or_default())
    }

    /// The authority section: records made here, then the upstream's.
    pub fn authority_records(&self) -> impl Iterator<Item = &Record> {
        let upstream = self.upstream.as_deref().map(|u| u.authorities.as_slice());
        self.authorities.iter().chain(upstream.unwrap_or_default())
    }

    /// An answer that is only a response code (an error).
    pub fn code(code: ResponseCode) -> Answer {
        Answer {
            code,
            answers: Vec::new(),
            authorities: Vec::new(),
            upstream: None,
            extended_error: None,
            explanation: None,
        }
    }

    pub fn nxdomain(extended_error: Option<ExtendedError>) -> Answer {
        Answer {
            code: ResponseCode::NXDomain,
            answers: Vec::new(),
            authorities: Vec::new(),
            upstream: None,
            extended_error,
            explanation: None,
        }
    }

    pub fn nodata(extended_error: Option<ExtendedError>) -> Answer {
        Answer {
            code: ResponseCode::NoError,
            answers: Vec::new(),
            authorities: Vec::new(),
            upstream: None,
            extended_error,
            explanation: None,
        }
    }

    /// The answer for a blocked `name`: an address for A/AAAA in "null" and
    /// "blockpage" modes, NODATA for every other type (HTTPS and SVCB among
    /// them, so browsers get no alternative endpoints), or NXDOMAIN.
    pub fn blocked(
        name: &Name,
        record_type: RecordType,
        blocking: &BlockingConfig,
        extended_error: ExtendedError,
        explanation: Explanation,
    ) -> Answer {
        let (v4, v6) = match blocking.answer {
            BlockAnswer::Nxdomain => {
                let mut answer = Answer::nxdomain(Some(extended_error));
                answer.explanation = Some(explanation);
                return answer;
            }
            BlockAnswer::Null => (Some(Ipv4Addr::UNSPECIFIED), Some(Ipv6Addr::UNSPECIFIED)),
            BlockAnswer::Blockpage => (blocking.block_page_ipv4, blocking.block_page_ipv6),
        };
        let rdata = match record_type {
            RecordType::A => v4.map(|ip| RData::A(A(ip))),
            RecordType::AAAA => v6.map(|ip| RData::AAAA(AAAA(ip))),
            _ => None,
        };
        Answer {
            code: ResponseCode::NoError,
            answers: rdata
                .map(|rdata| Record::from_rdata(name.clone(), blocking.ttl_secs, rdata))
                .into_iter()
                .collect(),
            authorities: Vec::new(),
            upstream: None,
            extended_error: Some(extended_error),
            explanation: Some(explanation),
        }
    }

    /// The answer to a question of type ANY (RFC 8482, section 4.2): one
    /// synthesised HINFO record, CPU "RFC8482", OS empty, instead of every
    /// record the upstream holds, so ANY cannot be used to amplify.
    pub fn minimal_any(name: &Name) -> Answer {
        let hinfo = HINFO::new("RFC8482".to_string(), String::new());
        Answer {
            code: ResponseCode::NoError,
            answers: vec![Record::from_rdata(
                name.clone(),
                MINIMAL_ANY_TTL,
                RData::HINFO(hinfo),
            )],
            authorities: Vec::new(),
            upstream: None,
            extended_error: None,
            explanation: None,
        }
    }

    /// A safe-search rewrite: `name` CNAME `target`, then the target's own
    /// records as the upstream gave them.
    pub fn rewritten(
        name: &Name,
        target: &Name,
        ttl: u32,
        upstream: Arc<UpstreamAnswer>,
    ) -> Answer {
        let answers = vec![Record::from_rdata(
            name.clone(),
            ttl,
            RData::CNAME(CNAME(target.clone())),
        )];
        Answer {
            // A NXDOMAIN for the target still means the alias exists; keep
            // the upstream's code otherwise (SERVFAIL stays SERVFAIL).
            code: match upstream.code {
                ResponseCode::NXDomain => ResponseCode::NoError,
                code => code,
            },
            answers,
            authorities: Vec::new(),
            upstream: Some(upstream),
            extended_error: None,
            explanation: None,
        }
    }
}

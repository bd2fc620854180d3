//! The DNS codec: every wire rule in one place. It reads a query from its
//! bytes (a plain query directly, anything else through hickory's decoder),
//! decides the error answers that need no pipeline (NOTIMP, FORMERR,
//! BADVERS), and writes every response Lollipop sends, over UDP and TCP
//! alike, with one encoder: ID, opcode, RD and CD echoed, RA set; EDNS only
//! if the query had it, with the payload clamped to 1232, version 0, DO
//! echoed and the Extended DNS Error; DNSSEC records only for a client that
//! set DO; over UDP, TC and no records when the answer does not fit.
//!
//! The question is echoed as the client wrote it when it is written
//! plainly (so its 0x20 case survives at no cost), and written afresh from
//! the decoded name when the client compressed it, so no pointer into the
//! query can land in the response.

mod encode;
mod general;
mod plain;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use super::protocol::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};

pub use encode::{bare_error, record_ttl_offsets, respond, truncated};

const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
/// A name of at most 255 bytes, its type and its class.
const MAX_QUESTION: usize = 255 + 4;

/// The way a response goes back: over UDP it must fit the client's
/// payload size, over TCP anything up to 64 KiB does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The client's EDNS record, as far as the response needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientEdns {
    payload: u16,
    dnssec_ok: bool,
    /// Options not well formed (a cut-off option, a cookie of the wrong
    /// length): answered FORMERR (RFC 6891 6.1.2, RFC 7873 5.2.2).
    malformed: bool,
}

/// A query read from the wire: what the pipeline is asked and what the
/// response must echo.
pub struct Query {
    pub id: u16,
    /// Byte 2 of the header (QR, opcode, AA, TC, RD).
    flags_high: u8,
    /// Byte 3 (RA, Z, AD, CD, RCODE).
    flags_low: u8,
    pub name: Name,
    pub record_type: RecordType,
    edns: Option<ClientEdns>,
    /// The question section of the response (name, type, class), without
    /// compression; empty when the query had no single question.
    question: [u8; MAX_QUESTION],
    question_len: usize,
}

impl Query {
    /// The largest response this client takes over `transport`.
    fn size_limit(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Tcp => u16::MAX,
            Transport::Udp => self.edns.map_or(MIN_UDP_PAYLOAD, |edns| {
                edns.payload.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
            }),
        }
    }

    /// The CD bit (checking disabled): the client validates for itself.
    pub fn checking_disabled(&self) -> bool {
        self.flags_low & 0x10 != 0
    }

    fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|edns| edns.dnssec_ok)
    }
}

/// What arrived, and what to do with it.
pub enum Incoming {
    /// A question for the pipeline.
    Question(Query),
    /// A query answered at once with this error code (NOTIMP, FORMERR,
    /// BADVERS), through [`respond`] with an empty answer.
    Error(Query, ResponseCode),
    /// Bytes that do not decode as a DNS message: answer with
    /// [`bare_error`] and FORMERR.
    Malformed,
    /// Nothing to answer: a response (never answered: reflection) or fewer
    /// bytes than a header.
    Ignored,
}

/// Response codes the transports send without reading the query.
pub const FORMERR: u8 = 1;
pub const REFUSED: u8 = 5;

/// Whether `message` can be a query at all: a whole header, QR clear (a
/// response is never answered: that would be reflection).
pub fn is_query(message: &[u8]) -> bool {
    message.len() >= HEADER_LEN && message[2] & 0x80 == 0
}

/// The longest query whose answer may be given again from its bytes.
const MAX_REPEATABLE_QUERY: usize = 512;

/// The bytes after the ID of a query simple enough for its answer to be
/// given again from the bytes of the last one: a query, opcode QUERY, one
/// question, no answer or authority records, at most one additional (the
/// OPT), at most 512 bytes. Every byte of it (flags, question, OPT) is in
/// the key, so only the same question asked the same way meets the answer.
pub fn repeatable(datagram: &[u8]) -> Option<&[u8]> {
    let header = datagram.get(..HEADER_LEN)?;
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let simple = header[2] & 0xF8 == 0
        && count(4) == 1
        && count(6) == 0
        && count(8) == 0
        && count(10) <= 1
        && datagram.len() <= MAX_REPEATABLE_QUERY;
    simple.then(|| &datagram[2..])
}

/// Reads one message from a client.
pub fn read(message: &[u8]) -> Incoming {
    if !is_query(message) {
        return Incoming::Ignored;
    }
    match plain::read(message) {
        Some(query) if query.edns.is_some_and(|edns| edns.malformed) => {
            Incoming::Error(query, ResponseCode::FormErr)
        }
        Some(query) => Incoming::Question(query),
        None => general::read(message),
    }
}

#[cfg(test)]
mod tests;

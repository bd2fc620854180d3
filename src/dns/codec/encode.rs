//! Writing responses: the one encoder every response goes through, UDP or
//! TCP, plain query or not. A cached upstream answer is written to the wire
//! once ([`WireRecords`]), by the first response that carries it, and
//! copied into every later one after that response's own header and
//! question: only the ID, the flags and the EDNS record are written per
//! query. The cache counts TTLs down by replacing the answer, so its wire
//! form always carries the TTL left.

use std::cell::RefCell;

use hickory_resolver::proto::ProtoError;
use hickory_resolver::proto::rr::Record;
use hickory_resolver::proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::dns::protocol::{EDE_OPTION, MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD, is_dnssec_only};
use crate::dns::resolve::answer::{Answer, UpstreamAnswer, WireRecords};

use super::plain::uncompressed_name_end;
use super::{CLASS_IN, HEADER_LEN, Query, TYPE_OPT, Transport};

/// Bytes of Extended DNS Error text kept (Lollipop's are far shorter):
/// short enough that a truncated response always fits in 512 bytes.
const MAX_EDE_TEXT: usize = 128;

thread_local! {
    /// Each thread's response buffer, reused for every answer it writes.
    static RESPONSE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_UDP_PAYLOAD.into()));
}

/// Writes the response to `query` carrying `answer` over `transport` and
/// hands the bytes to `send`.
pub fn respond<T>(
    query: &Query,
    answer: &Answer,
    transport: Transport,
    send: impl FnOnce(&[u8]) -> T,
) -> T {
    RESPONSE.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        if encode(query, answer, transport, &mut buffer, true).is_none() {
            buffer.clear();
            // Did not fit (or could not be written): TC and no records, so
            // the client asks again over TCP.
            let _ = encode(query, answer, transport, &mut buffer, false);
        }
        send(&buffer)
    })
}

fn encode(
    query: &Query,
    answer: &Answer,
    transport: Transport,
    buffer: &mut Vec<u8>,
    records: bool,
) -> Option<()> {
    let dnssec_ok = query.dnssec_ok();
    let keep = |record: &&Record| dnssec_ok || !is_dnssec_only(record.record_type());
    let mut counts = [0u16; 2];
    let code = u16::from(answer.code);
    {
        let mut encoder = BinEncoder::new(buffer);
        encoder.set_max_size(query.size_limit(transport));
        encoder.emit_u16(query.id).ok()?;
        // QR set; opcode and RD kept; TC when the records are left out.
        let truncated = if records { 0 } else { 0x02 };
        encoder
            .emit(0x80 | (query.flags_high & 0x79) | truncated)
            .ok()?;
        // RA set; AD for a validated answer when the client asked with DO
        // or AD (RFC 6840 5.7), never otherwise; CD kept; the low 4 bits
        // of the response code.
        let authentic = if answer.authentic() && (dnssec_ok || query.flags_low & 0x20 != 0) {
            0x20
        } else {
            0
        };
        encoder
            .emit(0x80 | authentic | (query.flags_low & 0x10) | (code & 0x0F) as u8)
            .ok()?;
        // Counts are filled in once known.
        for _ in 0..4 {
            encoder.emit_u16(0).ok()?;
        }
        encoder
            .emit_vec(&query.question[..query.question_len])
            .ok()?;
        let wire = records
            .then(|| pre_encoded(query, answer, dnssec_ok))
            .flatten()
            .filter(|wire| wire.start == encoder.offset());
        if let Some(wire) = wire {
            encoder.emit_vec(&wire.bytes).ok()?;
            counts = [wire.answers, wire.authorities];
        } else if records {
            for record in answer.answer_records().filter(keep) {
                record.emit(&mut encoder).ok()?;
                counts[0] += 1;
            }
            for record in answer.authority_records().filter(keep) {
                record.emit(&mut encoder).ok()?;
                counts[1] += 1;
            }
        }
        if let Some(edns) = query.edns {
            emit_opt(&mut encoder, edns.payload, dnssec_ok, code, answer).ok()?;
        }
    }
    buffer[4..12].copy_from_slice(&[
        0,
        u8::from(query.question_len > 0),
        (counts[0] >> 8) as u8,
        counts[0] as u8,
        (counts[1] >> 8) as u8,
        counts[1] as u8,
        0,
        u8::from(query.edns.is_some()),
    ]);
    Some(())
}

/// The response's OPT record: payload clamped, the high bits of the
/// response code (BADVERS), version 0, DO echoed, and the Extended DNS
/// Error if there is one.
fn emit_opt(
    encoder: &mut BinEncoder<'_>,
    payload: u16,
    dnssec_ok: bool,
    code: u16,
    answer: &Answer,
) -> Result<(), ProtoError> {
    encoder.emit(0)?;
    encoder.emit_u16(TYPE_OPT)?;
    encoder.emit_u16(payload.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))?;
    encoder.emit((code >> 4) as u8)?;
    encoder.emit(0)?;
    encoder.emit_u16(if dnssec_ok { 0x8000 } else { 0 })?;
    match &answer.extended_error {
        Some(error) => {
            let text = error.text.as_bytes();
            let text = &text[..text.len().min(MAX_EDE_TEXT)];
            let len = 2 + text.len() as u16;
            encoder.emit_u16(len + 4)?;
            encoder.emit_u16(EDE_OPTION)?;
            encoder.emit_u16(len)?;
            encoder.emit_u16(error.code)?;
            encoder.emit_vec(text)?;
        }
        None => encoder.emit_u16(0)?,
    }
    Ok(())
}

/// Writes `answer`'s records as they follow `query`'s question; `None`
/// if they do not fit the largest UDP response. Compression pointers point
/// into the question (at offset 12 in every response) or into the records
/// themselves, so the bytes are right after any question of the same
/// length: the same name, in any case.
fn write_wire_records(query: &Query, answer: &UpstreamAnswer) -> Option<WireRecords> {
    let mut buffer = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buffer);
    encoder.set_max_size(MAX_UDP_PAYLOAD);
    encoder.emit_vec(&[0; HEADER_LEN]).ok()?;
    query.name.emit(&mut encoder).ok()?;
    encoder.emit_u16(query.record_type.into()).ok()?;
    encoder.emit_u16(CLASS_IN).ok()?;
    let start = encoder.offset();
    let records = || answer.answers.iter().chain(&answer.authorities);
    let mut record_starts = Vec::with_capacity(answer.answers.len() + answer.authorities.len());
    for record in records() {
        record_starts.push(encoder.offset());
        record.emit(&mut encoder).ok()?;
    }
    let ttl_offsets = record_starts
        .into_iter()
        .map(|at| {
            let ttl = name_end(&buffer, at)? + 4;
            u16::try_from(ttl.checked_sub(start)?).ok()
        })
        .collect::<Option<Box<[u16]>>>()?;
    Some(WireRecords {
        start,
        bytes: buffer.get(start..)?.into(),
        answers: u16::try_from(answer.answers.len()).ok()?,
        authorities: u16::try_from(answer.authorities.len()).ok()?,
        dnssec_only: records().any(|record| is_dnssec_only(record.record_type())),
        ttl_offsets,
    })
}

/// Where each TTL of `response`'s answer and authority records is (not
/// the OPT's, whose TTL field holds flags), so an answer kept to be given
/// again can have them counted down; None for a truncated response (never
/// kept) or one this cannot walk.
pub fn record_ttl_offsets(response: &[u8]) -> Option<Vec<u16>> {
    let header = response.get(..HEADER_LEN)?;
    if header[2] & 0x02 != 0 {
        return None;
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        at = name_end(response, at)? + 4;
    }
    let records = count(6) + count(8);
    let mut offsets = Vec::with_capacity(records);
    for _ in 0..records {
        let ttl = name_end(response, at)? + 4;
        let length = response.get(ttl + 4..ttl + 6)?;
        offsets.push(u16::try_from(ttl).ok()?);
        at = ttl + 6 + usize::from(u16::from_be_bytes([length[0], length[1]]));
    }
    (at <= response.len()).then_some(offsets)
}

/// Where the (possibly compressed) name written at `at` in `message` ends:
/// after its root label or its compression pointer.
fn name_end(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            _ if length & 0xC0 == 0xC0 => return Some(at + 2),
            _ if length & 0xC0 == 0 => at += 1 + usize::from(length),
            _ => return None,
        }
    }
}

/// The wire form of `answer`'s upstream records, written now if this is
/// the first response to carry them, when the response can carry them as
/// they are: nothing made here to go before them, and DNSSEC records only
/// for a client that asked for them.
fn pre_encoded<'a>(query: &Query, answer: &'a Answer, dnssec_ok: bool) -> Option<&'a WireRecords> {
    if !answer.answers.is_empty() || !answer.authorities.is_empty() || query.question_len == 0 {
        return None;
    }
    let upstream = answer.upstream.as_deref()?;
    let wire = upstream
        .wire
        .get_or_init(|| write_wire_records(query, upstream))
        .as_ref()?;
    (dnssec_ok || !wire.dnssec_only).then_some(wire)
}

/// A bare error response for bytes that could not be read as a query (or
/// a client refused before reading): the ID, opcode and RD, the code, and
/// the question when it is written plainly. A question with a compression
/// pointer is left out: copied, the pointer would point into the response.
pub fn bare_error(message: &[u8], code: u8) -> Option<Vec<u8>> {
    bare_reply(message, code, false)
}

/// An empty answer with TC set, read from nothing but the header and the
/// question: what a client over its rate limit is sometimes sent on UDP
/// (the "slip"), so a real client asks again over TCP. As small as the
/// query, it amplifies nothing.
pub fn truncated(message: &[u8]) -> Option<Vec<u8>> {
    bare_reply(message, 0, true)
}

fn bare_reply(message: &[u8], code: u8, truncated: bool) -> Option<Vec<u8>> {
    let header = message.get(..HEADER_LEN)?;
    let question_end = (header[4..6] == [0, 1])
        .then(|| uncompressed_name_end(message, HEADER_LEN).map(|end| end + 4))
        .flatten()
        .filter(|&end| end <= message.len());
    let mut reply = Vec::with_capacity(question_end.unwrap_or(HEADER_LEN));
    reply.extend_from_slice(&header[..2]);
    // QR set; opcode and RD kept; TC if asked; RA set.
    reply.push(0x80 | (header[2] & 0x79) | if truncated { 0x02 } else { 0 });
    reply.push(0x80 | (code & 0x0F));
    reply.extend_from_slice(&[0, u8::from(question_end.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(end) = question_end {
        reply.extend_from_slice(&message[HEADER_LEN..end]);
    }
    Some(reply)
}

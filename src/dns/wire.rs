//! The wire format of the common case, read and written directly: a plain
//! query (one IN question, at most an EDNS version 0 OPT) is read without
//! decoding a whole message, and its answer is written into a buffer each
//! thread reuses. Anything else — other opcodes, several questions, other
//! classes, EDNS versions, damaged messages — goes the general way through
//! hickory-server and `handler`, which answers it with the right error.
//!
//! The response is the one `handler` gives for the same answer: ID, RD and
//! CD echoed, RA set; EDNS only if the query had it, with the payload size
//! clamped to 1232, version 0, DO echoed and the Extended DNS Error; DNSSEC
//! records only for a client that set DO; TC and no records when the answer
//! does not fit.
//!
//! A cached upstream answer is written to the wire once ([`WireRecords`]),
//! by the first response that carries it, and copied into every later one
//! after that response's own header and question: only the ID, the flags
//! and the EDNS record are written per query. The cache counts TTLs down
//! by replacing the answer, so its wire form always carries the TTL left.

use std::cell::RefCell;

use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder,
};

use super::answer::Answer;
use super::handler::MAX_UDP_PAYLOAD;
use super::upstream::UpstreamAnswer;

const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
const EDE_OPTION: u16 = 15;
/// Bytes of Extended DNS Error text kept (Lollipop's are far shorter).
const MAX_EDE_TEXT: usize = 128;

/// What the answer needs to know about a plain query.
pub struct PlainQuery {
    pub id: u16,
    /// Byte 2 of the header (QR, opcode, AA, TC, RD).
    flags_high: u8,
    /// Byte 3 (RA, Z, AD, CD, RCODE).
    flags_low: u8,
    pub name: Name,
    pub record_type: RecordType,
    /// The client's EDNS: (payload size, DO bit).
    edns: Option<(u16, bool)>,
    /// The question as the client wrote it (name, type, class), echoed
    /// byte for byte: the client's case kept, and nothing to encode.
    question: [u8; MAX_QUESTION],
    question_len: usize,
}

/// A name of at most 255 bytes, its type and its class.
const MAX_QUESTION: usize = 255 + 4;

impl PlainQuery {
    /// The query in `datagram`, if it is a plain one; `None` sends it the
    /// general way.
    pub fn read(datagram: &[u8]) -> Option<PlainQuery> {
        let header = datagram.get(..HEADER_LEN)?;
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        // A query (QR 0), opcode QUERY, one question, no answers or
        // authorities, at most one additional (the OPT).
        if header[2] & 0xF8 != 0 || count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1
        {
            return None;
        }
        let name_end = uncompressed_name_end(datagram, HEADER_LEN)?;
        let mut decoder = BinDecoder::new(datagram.get(HEADER_LEN..name_end)?);
        let mut name = Name::read(&mut decoder).ok()?;
        name.set_fqdn(true);
        let question = datagram.get(name_end..name_end + 4)?;
        let record_type = u16::from_be_bytes([question[0], question[1]]);
        if u16::from_be_bytes([question[2], question[3]]) != CLASS_IN {
            return None;
        }
        let rest = datagram.get(name_end + 4..)?;
        let edns = match count(10) {
            0 if rest.is_empty() => None,
            1 => Some(read_opt(rest)?),
            _ => return None,
        };
        let question_bytes = datagram.get(HEADER_LEN..name_end + 4)?;
        let mut question = [0; MAX_QUESTION];
        question
            .get_mut(..question_bytes.len())?
            .copy_from_slice(question_bytes);
        Some(PlainQuery {
            question,
            question_len: question_bytes.len(),
            id: count(0),
            flags_high: header[2],
            flags_low: header[3],
            name,
            record_type: RecordType::from(record_type),
            edns,
        })
    }

    /// The largest response the client takes over UDP.
    fn size_limit(&self) -> u16 {
        self.edns
            .map_or(512, |(payload, _)| payload.clamp(512, MAX_UDP_PAYLOAD))
    }
}

/// The OPT record that must make up the rest of the message: root owner,
/// type 41, version 0, options well formed. `None` for anything else.
fn read_opt(record: &[u8]) -> Option<(u16, bool)> {
    if record.len() < 11 || record[0] != 0 {
        return None;
    }
    let field = |at: usize| u16::from_be_bytes([record[at], record[at + 1]]);
    // Bytes 5..9 are the TTL: extended RCODE, version, flags.
    if field(1) != TYPE_OPT || record[6] != 0 {
        return None;
    }
    let payload = field(3);
    let dnssec_ok = record[7] & 0x80 != 0;
    let options = record.get(11..)?;
    if options.len() != usize::from(field(9)) {
        return None;
    }
    let mut at = 0;
    while at < options.len() {
        let len = usize::from(u16::from_be_bytes([
            *options.get(at + 2)?,
            *options.get(at + 3)?,
        ]));
        at += 4 + len;
    }
    (at == options.len()).then_some((payload, dnssec_ok))
}

/// The end of a name made of plain labels (no compression pointer) at `at`.
fn uncompressed_name_end(datagram: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let len = usize::from(*datagram.get(at)?);
        if len == 0 {
            return (at + 1 - start <= 255).then_some(at + 1);
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
}

/// An upstream answer's answer and authority records as they go on the
/// wire. Compression pointers point into the question (at offset 12 in
/// every response) or into the records themselves, so the bytes are right
/// after any question of the same length: the same name, in any case.
#[derive(Debug)]
pub struct WireRecords {
    /// Where the records start: the header and question length.
    start: usize,
    bytes: Box<[u8]>,
    answers: u16,
    authorities: u16,
    /// Holds RRSIG, NSEC or NSEC3, which a client without DO is not sent.
    dnssec_only: bool,
}

impl WireRecords {
    /// Writes `answer`'s records as they follow `query`'s question; `None`
    /// if they do not fit the largest UDP response.
    fn write(query: &PlainQuery, answer: &UpstreamAnswer) -> Option<WireRecords> {
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(MAX_UDP_PAYLOAD);
        encoder.emit_vec(&[0; HEADER_LEN]).ok()?;
        query.name.emit(&mut encoder).ok()?;
        encoder.emit_u16(query.record_type.into()).ok()?;
        encoder.emit_u16(CLASS_IN).ok()?;
        let start = encoder.offset();
        let records = || answer.answers.iter().chain(&answer.authorities);
        for record in records() {
            record.emit(&mut encoder).ok()?;
        }
        Some(WireRecords {
            start,
            bytes: buffer.get(start..)?.into(),
            answers: u16::try_from(answer.answers.len()).ok()?,
            authorities: u16::try_from(answer.authorities.len()).ok()?,
            dnssec_only: records().any(|record| is_dnssec_only(record.record_type())),
        })
    }
}

/// The wire form of `answer`'s upstream records, written now if this is
/// the first response to carry them, when the response can carry them as
/// they are: nothing made here to go before them, and DNSSEC records only
/// for a client that asked for them.
fn pre_encoded<'a>(
    query: &PlainQuery,
    answer: &'a Answer,
    dnssec_ok: bool,
) -> Option<&'a WireRecords> {
    if !answer.answers.is_empty() || !answer.authorities.is_empty() {
        return None;
    }
    let upstream = answer.upstream.as_deref()?;
    let wire = upstream
        .wire
        .get_or_init(|| WireRecords::write(query, upstream))
        .as_ref()?;
    (dnssec_ok || !wire.dnssec_only).then_some(wire)
}

thread_local! {
    /// Each thread's response buffer, reused for every answer it writes.
    static RESPONSE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_UDP_PAYLOAD.into()));
}

/// Writes the response to `query` carrying `answer` and hands the bytes to
/// `send`.
pub fn respond<T>(query: &PlainQuery, answer: &Answer, send: impl FnOnce(&[u8]) -> T) -> T {
    RESPONSE.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        if encode(query, answer, &mut buffer, true).is_none() {
            buffer.clear();
            // Did not fit (or could not be written): TC and no records, so
            // the client asks again over TCP.
            let _ = encode(query, answer, &mut buffer, false);
        }
        send(&buffer)
    })
}

fn encode(query: &PlainQuery, answer: &Answer, buffer: &mut Vec<u8>, records: bool) -> Option<()> {
    let dnssec_ok = query.edns.is_some_and(|(_, dnssec_ok)| dnssec_ok);
    let keep = |record: &&Record| dnssec_ok || !is_dnssec_only(record.record_type());
    let mut counts = [0u16; 2];
    {
        let mut encoder = BinEncoder::new(buffer);
        encoder.set_max_size(query.size_limit());
        encoder.emit_u16(query.id).ok()?;
        // QR set; RD kept; TC when the records are left out.
        let truncated = if records { 0 } else { 0x02 };
        encoder
            .emit(0x80 | (query.flags_high & 0x01) | truncated)
            .ok()?;
        let code = u16::from(answer.code);
        // RA set; CD kept; the low 4 bits of the response code.
        encoder
            .emit(0x80 | (query.flags_low & 0x10) | (code & 0x0F) as u8)
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
        if let Some((payload, _)) = query.edns {
            emit_opt(&mut encoder, payload, dnssec_ok, answer).ok()?;
        }
    }
    buffer[4..12].copy_from_slice(&[
        0,
        1,
        (counts[0] >> 8) as u8,
        counts[0] as u8,
        (counts[1] >> 8) as u8,
        counts[1] as u8,
        0,
        u8::from(query.edns.is_some()),
    ]);
    Some(())
}

/// The response's OPT record, with the Extended DNS Error if there is one.
fn emit_opt(
    encoder: &mut BinEncoder<'_>,
    payload: u16,
    dnssec_ok: bool,
    answer: &Answer,
) -> Result<(), hickory_server::proto::ProtoError> {
    encoder.emit(0)?;
    encoder.emit_u16(TYPE_OPT)?;
    encoder.emit_u16(payload.clamp(512, MAX_UDP_PAYLOAD))?;
    // Extended RCODE 0 (codes above 15 go the general way), version 0.
    encoder.emit_u16(0)?;
    encoder.emit_u16(if dnssec_ok { 0x8000 } else { 0 })?;
    match &answer.extended_error {
        Some(error) => {
            // Short enough that a truncated response always fits in 512 bytes.
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

/// Records a client that did not set the DO bit should not receive.
fn is_dnssec_only(record_type: RecordType) -> bool {
    matches!(
        record_type,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::ExtendedError;
    use hickory_server::proto::op::{Message, ResponseCode};
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::proto::rr::rdata::opt::EdnsOption;

    fn query(opt: Option<&[u8]>) -> Vec<u8> {
        let mut q = vec![
            0xab,
            0xcd,
            0x01,
            0x10,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        q.extend_from_slice(b"\x03WwW\x07example\x03org\x00\x00\x01\x00\x01");
        if let Some(opt) = opt {
            q.extend_from_slice(opt);
        }
        q
    }

    const OPT_DO: &[u8] = &[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];

    fn blocked() -> Answer {
        let name = Name::from_ascii("WwW.example.org.").unwrap();
        let mut answer = Answer::nodata(Some(ExtendedError {
            code: 17,
            text: "Lollipop: category gambling blocked for profile ks2".into(),
        }));
        answer
            .answers
            .push(Record::from_rdata(name, 60, RData::A(A::new(0, 0, 0, 0))));
        answer
    }

    fn response(query_bytes: &[u8], answer: &Answer) -> Message {
        let query = PlainQuery::read(query_bytes).expect("plain");
        respond(&query, answer, |bytes| {
            Message::from_vec(bytes).expect("decodes")
        })
    }

    #[test]
    fn a_plain_query_gets_the_handlers_response() {
        let reply = response(&query(Some(OPT_DO)), &blocked());
        assert_eq!(reply.metadata.id, 0xabcd);
        assert!(reply.metadata.recursion_desired && reply.metadata.recursion_available);
        assert!(reply.metadata.checking_disabled);
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.queries[0].name().to_ascii(), "WwW.example.org.");
        assert_eq!(reply.answers.len(), 1);
        let edns = reply.edns.as_ref().expect("edns");
        assert_eq!(edns.max_payload(), 4096u16.min(MAX_UDP_PAYLOAD));
        assert!(edns.flags().dnssec_ok);
        let option = edns.options().as_ref().iter().next().expect("EDE");
        assert_eq!(u16::from(option.0), 15);
        let EdnsOption::Unknown(_, bytes) = &option.1 else {
            panic!("EDE is carried as an unknown option: {:?}", option.1);
        };
        assert_eq!(&bytes[..2], &[0, 17]);
        assert!(String::from_utf8_lossy(&bytes[2..]).contains("gambling"));
    }

    #[test]
    fn a_cached_answer_is_written_once_and_copied_after_any_questions_case() {
        use hickory_server::proto::rr::rdata::CNAME;
        let name = Name::from_ascii("www.example.org.").unwrap();
        let target = Name::from_ascii("cdn.example.net.").unwrap();
        let upstream = std::sync::Arc::new(UpstreamAnswer::new(
            ResponseCode::NoError,
            vec![
                Record::from_rdata(name, 300, RData::CNAME(CNAME(target.clone()))),
                Record::from_rdata(target, 60, RData::A(A::new(192, 0, 2, 7))),
            ],
            Vec::new(),
        ));
        let answer = Answer::from_upstream(upstream.clone());
        let first = response(&query(None), &answer);
        assert!(
            upstream.wire.get().is_some_and(Option::is_some),
            "written once"
        );
        let mut lower = query(Some(OPT_DO));
        lower[13..16].copy_from_slice(b"www");
        let second = response(&lower, &answer);
        assert_eq!(second.metadata.id, 0xabcd);
        assert_eq!(second.queries[0].name().to_ascii(), "www.example.org.");
        for reply in [&first, &second] {
            assert_eq!(reply.answers.len(), 2);
            assert_eq!(reply.answers[0].name.to_ascii(), "www.example.org.");
            assert_eq!(reply.answers[0].ttl, 300);
            let RData::CNAME(alias) = &reply.answers[0].data else {
                panic!("a CNAME first: {:?}", reply.answers[0]);
            };
            assert_eq!(alias.0.to_ascii(), "cdn.example.net.");
            assert_eq!(reply.answers[1].name.to_ascii(), "cdn.example.net.");
            assert_eq!(reply.answers[1].data, RData::A(A::new(192, 0, 2, 7)));
        }
        assert!(second.edns.is_some());
    }

    #[test]
    fn a_cached_answer_too_big_for_the_client_is_truncated_not_cut() {
        let name = Name::from_ascii("www.example.org.").unwrap();
        let records = (0..40)
            .map(|i| Record::from_rdata(name.clone(), 60, RData::A(A::new(192, 0, 2, i))))
            .collect();
        let upstream = std::sync::Arc::new(UpstreamAnswer::new(
            ResponseCode::NoError,
            records,
            Vec::new(),
        ));
        let answer = Answer::from_upstream(upstream);
        // 40 records fit the 1232 bytes of an EDNS client, not 512 without.
        let roomy = response(&query(Some(OPT_DO)), &answer);
        assert!(!roomy.metadata.truncation);
        assert_eq!(roomy.answers.len(), 40);
        let small = response(&query(None), &answer);
        assert!(small.metadata.truncation);
        assert!(small.answers.is_empty());
    }

    #[test]
    fn without_edns_there_is_no_opt_and_a_big_answer_is_truncated() {
        let reply = response(&query(None), &blocked());
        assert!(reply.edns.is_none());
        let mut big = blocked();
        let name = Name::from_ascii("www.example.org.").unwrap();
        for i in 0..40 {
            big.answers.push(Record::from_rdata(
                name.clone(),
                60,
                RData::A(A::new(192, 0, 2, i)),
            ));
        }
        let reply = response(&query(None), &big);
        assert!(reply.metadata.truncation);
        assert!(reply.answers.is_empty());
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    }

    #[test]
    fn anything_unusual_goes_the_general_way() {
        let plain = query(None);
        assert!(PlainQuery::read(&plain).is_some());
        let mut update = plain.clone();
        update[2] = 0x28; // opcode UPDATE
        assert!(PlainQuery::read(&update).is_none());
        let mut chaos = plain.clone();
        let n = chaos.len();
        chaos[n - 1] = 3; // class CH
        assert!(PlainQuery::read(&chaos).is_none());
        let mut two = plain.clone();
        two[5] = 2;
        assert!(PlainQuery::read(&two).is_none());
        let version_one = [0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0];
        assert!(PlainQuery::read(&query(Some(&version_one))).is_none());
        let bad_options = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 3, 0, 10, 0];
        assert!(PlainQuery::read(&query(Some(&bad_options))).is_none());
        let mut trailing = plain.clone();
        trailing.push(0);
        assert!(PlainQuery::read(&trailing).is_none());
        assert!(PlainQuery::read(&plain[..plain.len() - 2]).is_none());
        let cookie = [
            0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let cookied = PlainQuery::read(&query(Some(&cookie))).expect("a cookie is fine");
        assert_eq!(cookied.size_limit(), MAX_UDP_PAYLOAD);
    }

    /// Whatever arrives — cut short, bytes flipped, lengths lying — is
    /// either refused or read into a query whose response decodes.
    #[test]
    fn broken_datagrams_never_panic() {
        let samples = [query(None), query(Some(OPT_DO))];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut read = 0;
        for sample in &samples {
            for cut in 0..sample.len() {
                let _ = PlainQuery::read(&sample[..cut]);
            }
            for _ in 0..20_000 {
                let mut bytes = sample.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                if next() % 5 == 0 {
                    bytes.truncate((next() as usize) % bytes.len());
                }
                if let Some(plain) = PlainQuery::read(&bytes) {
                    read += 1;
                    respond(&plain, &blocked(), |reply| {
                        Message::from_vec(reply).expect("the response decodes")
                    });
                }
            }
        }
        // Flips in the ID, flags or name letters still read as queries.
        assert!(read > 1000, "{read}");
    }
}

//! Every query that is not plain, decoded whole by hickory: other opcodes,
//! zero or several questions, other classes, EDNS versions above 0,
//! compressed question names, extra records. It becomes a question for the
//! pipeline when it is one, or the error its flaw calls for.

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, Name, RecordType};
use hickory_resolver::proto::serialize::binary::{BinEncodable, BinEncoder};

use super::{ClientEdns, Incoming, MAX_QUESTION, Query};

pub(super) fn read(bytes: &[u8]) -> Incoming {
    let Ok(message) = Message::from_vec(bytes) else {
        return Incoming::Malformed;
    };
    let edns = message.edns.as_ref().map(|edns| ClientEdns {
        payload: edns.max_payload(),
        dnssec_ok: edns.flags().dnssec_ok,
        // hickory drops options it cannot read; what is left is whole.
        malformed: false,
    });
    let mut query = Query {
        id: message.metadata.id,
        flags_high: bytes.get(2).copied().unwrap_or(0),
        flags_low: bytes.get(3).copied().unwrap_or(0),
        name: Name::root(),
        record_type: RecordType::NULL,
        edns,
        question: [0; MAX_QUESTION],
        question_len: 0,
    };
    // Zero or several questions: FORMERR, as RFC 9619 asks, with none echoed.
    let [question] = message.queries.as_slice() else {
        return Incoming::Error(query, ResponseCode::FormErr);
    };
    let mut name = question.name().clone();
    name.set_fqdn(true);
    // Written afresh, without compression, whatever the client sent.
    let mut written = Vec::with_capacity(MAX_QUESTION);
    let mut encoder = BinEncoder::new(&mut written);
    let fits = name.emit(&mut encoder).is_ok()
        && encoder.emit_u16(question.query_type().into()).is_ok()
        && encoder.emit_u16(u16::from(question.query_class())).is_ok();
    if fits && let Some(slot) = query.question.get_mut(..written.len()) {
        slot.copy_from_slice(&written);
        query.question_len = written.len();
    }
    query.name = name;
    query.record_type = question.query_type();
    let code = if message.metadata.op_code != OpCode::Query {
        ResponseCode::NotImp
    } else if message.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
        ResponseCode::BADVERS
    } else if question.query_class() != DNSClass::IN {
        ResponseCode::NotImp
    } else if query.question_len == 0 {
        ResponseCode::FormErr
    } else {
        return Incoming::Question(query);
    };
    Incoming::Error(query, code)
}

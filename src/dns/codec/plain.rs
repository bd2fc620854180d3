//! The common case read directly: a plain query (QUERY opcode, one IN
//! question written without compression, at most an EDNS version 0 OPT)
//! is read without decoding a whole message; an OPT whose options are not
//! well formed is marked, for a FORMERR. Anything else returns `None` and
//! goes to `general`.

use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{CLASS_IN, ClientEdns, HEADER_LEN, MAX_QUESTION, Query, TYPE_OPT};

/// The query in `datagram`, if it is a plain one.
pub(super) fn read(datagram: &[u8]) -> Option<Query> {
    let header = datagram.get(..HEADER_LEN)?;
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    // A query (QR 0), opcode QUERY, one question, no answers or
    // authorities, at most one additional (the OPT).
    if header[2] & 0xF8 != 0 || count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
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
    // The question is echoed byte for byte: the client's case kept, and
    // nothing to encode.
    let question_bytes = datagram.get(HEADER_LEN..name_end + 4)?;
    let mut question = [0; MAX_QUESTION];
    question
        .get_mut(..question_bytes.len())?
        .copy_from_slice(question_bytes);
    Some(Query {
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

/// The OPT record that must make up the rest of the message: root owner,
/// type 41, version 0, options well formed. `None` for anything else.
fn read_opt(record: &[u8]) -> Option<ClientEdns> {
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
    Some(ClientEdns {
        payload,
        dnssec_ok,
        malformed: !options_well_formed(options),
    })
}

/// EDNS option code of a DNS cookie (RFC 7873).
const COOKIE_OPTION: u16 = 10;

/// Whether the OPT record's options are whole (each code, length and data
/// ends exactly where the record does) and each cookie is 8 bytes (the
/// client's alone) or 16 to 40 (with the server's), as RFC 7873 asks.
fn options_well_formed(options: &[u8]) -> bool {
    let mut at = 0;
    while at < options.len() {
        let (Some(code), Some(len)) = (options.get(at..at + 2), options.get(at + 2..at + 4)) else {
            return false;
        };
        let code = u16::from_be_bytes([code[0], code[1]]);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if code == COOKIE_OPTION && !(len == 8 || (16..=40).contains(&len)) {
            return false;
        }
        at += 4 + len;
    }
    at == options.len()
}

/// The end of a name made of plain labels (no compression pointer) at `at`.
pub(super) fn uncompressed_name_end(datagram: &[u8], mut at: usize) -> Option<usize> {
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

//! The codec on arbitrary bytes, the path every UDP datagram takes before
//! and after the pipeline: `is_query`, `read`, then `respond` with a few
//! answer shapes (an error code, a block, an upstream answer too big for
//! 512 bytes) over UDP and TCP, or `bare_error` for what does not decode.
#![no_main]

use std::sync::Arc;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record};
use libfuzzer_sys::fuzz_target;
use lollipop::dns::codec::{self, FORMERR, Incoming, Query, Transport};
use lollipop::dns::protocol::EDE_BLOCKED;
use lollipop::dns::resolve::answer::{Answer, ExtendedError, UpstreamAnswer};

fn answers(query: &Query) -> Vec<Answer> {
    let blocked = ExtendedError {
        code: EDE_BLOCKED,
        text: "Lollipop: blocked (gambling)".into(),
    };
    let records = (0..40)
        .map(|i| Record::from_rdata(query.name.clone(), 60, RData::A(A::new(192, 0, 2, i))))
        .collect();
    vec![
        Answer::code(ResponseCode::NoError),
        Answer::code(ResponseCode::ServFail),
        Answer::nxdomain(Some(blocked)),
        Answer::from_upstream(Arc::new(UpstreamAnswer::new(
            ResponseCode::NoError,
            records,
            vec![],
        ))),
    ]
}

fn check(message: &[u8], response: &[u8], transport: Transport) {
    if transport == Transport::Udp {
        assert!(response.len() <= 1232, "a UDP response over 1232 bytes");
    }
    assert_eq!(
        response[..2],
        message[..2],
        "the response must carry the query's ID"
    );
    assert!(
        Message::from_vec(response).is_ok(),
        "the response must decode: {response:02x?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let is_query = codec::is_query(data);
    match codec::read(data) {
        Incoming::Question(query) => {
            assert!(is_query);
            for answer in answers(&query) {
                for transport in [Transport::Udp, Transport::Tcp] {
                    codec::respond(&query, &answer, transport, |r| check(data, r, transport));
                }
            }
        }
        Incoming::Error(query, code) => {
            assert!(is_query);
            codec::respond(&query, &Answer::code(code), Transport::Udp, |r| {
                check(data, r, Transport::Udp)
            });
        }
        Incoming::Malformed => {
            assert!(is_query);
            if let Some(response) = codec::bare_error(data, FORMERR) {
                assert_eq!(response[..2], data[..2]);
            }
        }
        Incoming::Ignored => assert!(!is_query || data.len() < 12),
    }
});

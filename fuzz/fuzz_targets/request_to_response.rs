//! The whole request-to-response path in process: a datagram read by the
//! codec, answered by a real pipeline (two profiles, blocked and allowed
//! names, special names, safe search) over an upstream answering from
//! memory, and written back. Every response must be one a client can read,
//! with the query's ID.
#![no_main]

use hickory_resolver::proto::op::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(response) = lollipop_fuzz::answer_datagram(data) {
        assert!(response.len() <= 1232, "a UDP response over 1232 bytes");
        assert_eq!(
            response[..2],
            data[..2],
            "the response must carry the query's ID"
        );
        assert!(
            Message::from_vec(&response).is_ok(),
            "the response must decode: {response:02x?}"
        );
    }
});

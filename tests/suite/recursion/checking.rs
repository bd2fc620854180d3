//! DNSSEC answers that depend on more than the signatures: a client that
//! sets CD (checking disabled) is given data that failed validation, and
//! the cache never gives that data to one that did not.

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

use super::{start, with_do};
use crate::support::nsd::{self, Hierarchy};
use crate::support::*;

/// Asks with DO and, if `checking_disabled`, CD.
fn ask_cd(server: std::net::SocketAddr, name: &str, checking_disabled: bool) -> Message {
    let mut query = query_message(name, RecordType::A, with_do());
    query.metadata.checking_disabled = checking_disabled;
    let bytes = exchange_udp(server, &query.to_bytes().expect("encode")).expect("reply");
    let reply = Message::from_bytes(&bytes).expect("decodes");
    assert_eq!(reply.metadata.id, query.metadata.id);
    reply
}

#[test]
fn a_cd_client_gets_bogus_data_without_ad_and_others_still_get_servfail() {
    let hierarchy = Hierarchy::start(57);
    let lollipop = start(&hierarchy);

    // The tampered record, asked with CD first: the data as the server
    // gave it (RFC 4035 3.2.2), CD echoed, and no AD.
    let reply = ask_cd(lollipop.address(), "bad.signed.test.", true);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert_eq!(answers(&reply)[0], "A 192.0.2.67", "{reply:?}");
    assert!(reply.metadata.checking_disabled, "{reply:?}");
    assert!(
        !reply.metadata.authentic_data,
        "no AD on Bogus data: {reply:?}"
    );

    // Now cached: a client without CD still gets SERVFAIL, EDE 6.
    let reply = ask_cd(lollipop.address(), "bad.signed.test.", false);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );
    let (code, text) = extended_error(&reply).expect("a SERVFAIL says why");
    assert_eq!(code, 6, "{text}");
    assert!(answers(&reply).is_empty(), "{reply:?}");
    let reply = a(lollipop.address(), "bad.signed.test.");
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );

    // The other way round: the failure cached first, a CD client after it
    // still gets the data (expired signatures this time).
    let reply = ask_cd(lollipop.address(), "www.expired.test.", false);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );
    let reply = ask_cd(lollipop.address(), "www.expired.test.", true);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert_eq!(
        answers(&reply)[0],
        format!("A {}", nsd::WWW_EXPIRED),
        "{reply:?}"
    );
    assert!(!reply.metadata.authentic_data, "{reply:?}");

    // A valid answer asked with CD is the validated one, AD and all.
    let reply = ask_cd(lollipop.address(), "www.signed.test.", true);
    assert_eq!(answers(&reply)[0], format!("A {}", nsd::WWW_SIGNED));
    assert!(reply.metadata.authentic_data, "{reply:?}");
}

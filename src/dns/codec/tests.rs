//! The codec's rules, checked on the bytes: what is read the plain way and
//! what the general way, what every response carries, and what happens
//! when it does not fit.

use super::*;
use crate::dns::protocol::MAX_UDP_PAYLOAD;
use crate::dns::resolve::answer::{Answer, ExtendedError, UpstreamAnswer};
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::rdata::opt::EdnsOption;
use hickory_resolver::proto::rr::{Name, Record};

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

fn read_plain(bytes: &[u8]) -> Option<Query> {
    plain::read(bytes)
}

fn response(query_bytes: &[u8], answer: &Answer) -> Message {
    let query = read_plain(query_bytes).expect("plain");
    respond(&query, answer, Transport::Udp, |bytes| {
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
    use hickory_resolver::proto::rr::rdata::CNAME;
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
fn a_counted_down_wire_form_is_what_writing_the_counted_down_records_gives() {
    use hickory_resolver::proto::rr::rdata::{CNAME, SOA};
    let name = Name::from_ascii("www.example.org.").unwrap();
    let target = Name::from_ascii("cdn.example.net.").unwrap();
    let zone = Name::from_ascii("example.net.").unwrap();
    let soa = SOA::new(zone.clone(), zone.clone(), 1, 3600, 600, 86400, 3600);
    let records = |age: u32| {
        let ttl = |ttl: u32| ttl.saturating_sub(age);
        UpstreamAnswer::new(
            ResponseCode::NoError,
            vec![
                Record::from_rdata(name.clone(), ttl(300), RData::CNAME(CNAME(target.clone()))),
                Record::from_rdata(target.clone(), ttl(5), RData::A(A::new(192, 0, 2, 7))),
            ],
            vec![Record::from_rdata(
                zone.clone(),
                ttl(3600),
                RData::SOA(soa.clone()),
            )],
        )
    };
    // The wire form the codec keeps after answering with `upstream`.
    let written = |upstream: UpstreamAnswer| {
        let upstream = std::sync::Arc::new(upstream);
        response(&query(None), &Answer::from_upstream(upstream.clone()));
        upstream
            .wire
            .get()
            .and_then(Option::as_ref)
            .expect("written")
            .clone()
    };
    let fresh = written(records(0));
    assert_eq!(fresh.ttl_offsets.len(), 3, "one TTL a record");
    // Past the A record's TTL too: it stops at zero, as the records do.
    for age in [0, 1, 7, 299, 4000] {
        let carried = written(records(0))
            .counted_down(age)
            .expect("offsets in place");
        assert_eq!(carried.start, fresh.start);
        assert_eq!(
            carried.bytes,
            written(records(age)).bytes,
            "after {age} s the carried bytes are the written ones"
        );
    }
    assert_eq!(written(records(0)).bytes, fresh.bytes);
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
    assert!(read_plain(&plain).is_some());
    let mut update = plain.clone();
    update[2] = 0x28; // opcode UPDATE
    assert!(read_plain(&update).is_none());
    let mut chaos = plain.clone();
    let n = chaos.len();
    chaos[n - 1] = 3; // class CH
    assert!(read_plain(&chaos).is_none());
    let mut two = plain.clone();
    two[5] = 2;
    assert!(read_plain(&two).is_none());
    let version_one = [0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0];
    assert!(read_plain(&query(Some(&version_one))).is_none());
    // Options cut short: read plainly, and answered FORMERR, not sent to
    // hickory's decoder (which drops them with a warning per packet).
    let bad_options = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 3, 0, 10, 0];
    assert!(matches!(
        read(&query(Some(&bad_options))),
        Incoming::Error(_, ResponseCode::FormErr)
    ));
    let mut trailing = plain.clone();
    trailing.push(0);
    assert!(read_plain(&trailing).is_none());
    assert!(read_plain(&plain[..plain.len() - 2]).is_none());
    let cookie = [
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let cookied = read_plain(&query(Some(&cookie))).expect("a cookie is fine");
    assert_eq!(cookied.size_limit(Transport::Udp), MAX_UDP_PAYLOAD);
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
            let _ = read_plain(&sample[..cut]);
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
            if let Some(plain) = read_plain(&bytes) {
                read += 1;
                respond(&plain, &blocked(), Transport::Udp, |reply| {
                    Message::from_vec(reply).expect("the response decodes")
                });
            }
        }
    }
    // Flips in the ID, flags or name letters still read as queries.
    assert!(read > 1000, "{read}");
}

/// A query whose question name is a compression pointer into its own
/// header (offset 11, the low byte of ARCOUNT: 0, the root name), which is
/// legal to decode and must never be echoed as it is: in the response the
/// pointer would land on the response's header.
fn compressed() -> Vec<u8> {
    vec![
        0xab, 0xcd, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 11, 0, 1, 0, 1,
    ]
}

fn general_query(bytes: &[u8]) -> Query {
    match read(bytes) {
        Incoming::Question(query) => query,
        _ => panic!("a question"),
    }
}

#[test]
fn the_response_limit_follows_the_clients_edns_over_udp_and_not_over_tcp() {
    let with_payload = |size: u16| {
        let opt = [0, 0, 41, (size >> 8) as u8, size as u8, 0, 0, 0, 0, 0, 0];
        read_plain(&query(Some(&opt))).expect("plain")
    };
    let without = read_plain(&query(None)).expect("plain");
    assert_eq!(without.size_limit(Transport::Udp), 512);
    assert_eq!(
        with_payload(4096).size_limit(Transport::Udp),
        MAX_UDP_PAYLOAD
    );
    assert_eq!(with_payload(100).size_limit(Transport::Udp), 512);
    assert_eq!(with_payload(1000).size_limit(Transport::Udp), 1000);
    assert_eq!(without.size_limit(Transport::Tcp), u16::MAX);
}

#[test]
fn a_compressed_question_is_echoed_written_out_never_as_a_pointer() {
    let bytes = compressed();
    assert!(read_plain(&bytes).is_none(), "the general way");
    let read = general_query(&bytes);
    assert!(read.name.is_root());
    let reply = respond(&read, &Answer::nodata(None), Transport::Udp, <[u8]>::to_vec);
    // The question right after the header, written out: the root name,
    // type A, class IN, and nothing else.
    assert_eq!(&reply[12..], &[0, 0, 1, 0, 1]);
    let message = Message::from_vec(&reply).expect("decodes");
    assert!(message.queries[0].name().is_root());
    // A query that cannot be decoded gets no question echoed when it is
    // compressed; a plain one gets its own back.
    let bare = bare_error(&bytes, FORMERR).expect("a reply");
    assert_eq!(bare.len(), 12);
    assert_eq!(&bare[4..6], &[0, 0]);
    let plain_bare = bare_error(&query(None), FORMERR).expect("a reply");
    assert_eq!(&plain_bare[12..], &query(None)[12..]);
}

#[test]
fn a_truncated_reply_the_general_way_carries_no_partial_record() {
    let mut big = Answer::nodata(None);
    for i in 0..40 {
        big.answers.push(Record::from_rdata(
            Name::root(),
            60,
            RData::A(A::new(192, 0, 2, i)),
        ));
    }
    let read = general_query(&compressed());
    let reply = respond(&read, &big, Transport::Udp, <[u8]>::to_vec);
    // Header and question, nothing after: no stray bytes.
    assert_eq!(reply.len(), 12 + 5);
    let message = Message::from_vec(&reply).expect("decodes");
    assert!(message.metadata.truncation);
    assert!(message.answers.is_empty());
    // Over TCP the same answer goes whole.
    let whole = respond(&read, &big, Transport::Tcp, <[u8]>::to_vec);
    let message = Message::from_vec(&whole).expect("decodes");
    assert!(!message.metadata.truncation);
    assert_eq!(message.answers.len(), 40);
}

#[test]
fn the_general_way_answers_flaws_with_their_codes() {
    let code_of = |bytes: &[u8]| match read(bytes) {
        Incoming::Error(query, code) => {
            let reply = respond(&query, &Answer::code(code), Transport::Udp, <[u8]>::to_vec);
            let message = Message::from_vec(&reply).expect("decodes");
            (code, message)
        }
        _ => panic!("an error"),
    };
    let mut update = query(None);
    update[2] = 0x28;
    let (code, message) = code_of(&update);
    assert_eq!(code, ResponseCode::NotImp);
    assert_eq!(message.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(
        u8::from(message.metadata.op_code),
        5,
        "the opcode is echoed"
    );

    let version_one = [0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0];
    let (code, message) = code_of(&query(Some(&version_one)));
    assert_eq!(code, ResponseCode::BADVERS);
    // 16 in all: 0 in the header, 1 in the OPT's high bits (the decoder
    // names 16 BADSIG).
    assert_eq!(u16::from(message.metadata.response_code), 16);
    assert_eq!(message.edns.as_ref().map(|e| e.version()), Some(0));

    let mut chaos = query(None);
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert_eq!(code_of(&chaos).0, ResponseCode::NotImp);

    let mut none = query(None);
    none[5] = 0;
    none.truncate(12);
    let (code, message) = code_of(&none);
    assert_eq!(code, ResponseCode::FormErr);
    assert!(message.queries.is_empty());

    let mut responses = query(None);
    responses[2] |= 0x80;
    assert!(matches!(read(&responses), Incoming::Ignored));
    assert!(matches!(
        read(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f]),
        Incoming::Malformed
    ));
}

/// Every plain query read the general way gives the same query, so the
/// same bytes go out whichever way it came in.
#[test]
fn the_plain_and_general_readers_agree_on_plain_queries() {
    let cookie = [
        0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    for bytes in [query(None), query(Some(OPT_DO)), query(Some(&cookie))] {
        let fast = read_plain(&bytes).expect("plain");
        let Incoming::Question(slow) = general::read(&bytes) else {
            panic!("the general reader takes it too");
        };
        assert_eq!(fast.id, slow.id);
        assert_eq!(
            (fast.flags_high, fast.flags_low),
            (slow.flags_high, slow.flags_low)
        );
        assert_eq!(fast.name.to_ascii(), slow.name.to_ascii());
        assert_eq!(fast.record_type, slow.record_type);
        assert_eq!(fast.edns, slow.edns);
        assert_eq!(
            &fast.question[..fast.question_len],
            &slow.question[..slow.question_len]
        );
        let answer = blocked();
        let a = respond(&fast, &answer, Transport::Udp, <[u8]>::to_vec);
        let b = respond(&slow, &answer, Transport::Udp, <[u8]>::to_vec);
        assert_eq!(a, b);
    }
}

/// RFC 7873 5.2.2: a cookie of 8 bytes (the client's) or 16 to 40 (with
/// the server's) is read; any other length, or an option cut short, gets
/// FORMERR with the OPT echoed.
#[test]
fn a_malformed_cookie_gets_formerr() {
    let with_cookie = |len: u16| {
        let mut opt = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
        opt.extend_from_slice(&(len + 4).to_be_bytes());
        opt.extend_from_slice(&[0, 10]);
        opt.extend_from_slice(&len.to_be_bytes());
        opt.extend((0..len).map(|i| i as u8));
        query(Some(&opt))
    };
    for len in [8, 16, 24, 40] {
        assert!(
            matches!(read(&with_cookie(len)), Incoming::Question(_)),
            "{len}"
        );
    }
    for len in [0, 5, 7, 9, 15, 41, 100] {
        let Incoming::Error(query, code) = read(&with_cookie(len)) else {
            panic!("a cookie of {len} bytes must be refused");
        };
        assert_eq!(code, ResponseCode::FormErr);
        let reply = respond(&query, &Answer::code(code), Transport::Udp, <[u8]>::to_vec);
        let message = Message::from_vec(&reply).expect("decodes");
        assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        assert!(message.edns.is_some(), "the OPT is echoed");
        assert_eq!(message.queries.len(), 1);
    }
}

#[test]
fn a_slip_is_an_empty_truncated_answer_no_bigger_than_the_query() {
    let asked = query(None);
    let slip = truncated(&asked).expect("a reply");
    assert!(slip.len() <= asked.len());
    let message = Message::from_vec(&slip).expect("decodes");
    assert!(message.metadata.truncation);
    assert_eq!(message.metadata.id, 0xabcd);
    assert_eq!(message.metadata.response_code, ResponseCode::NoError);
    assert_eq!(message.queries.len(), 1);
    assert!(message.answers.is_empty());
}

#[test]
fn a_minimal_any_answer_is_written_as_hinfo() {
    let name = Name::from_ascii("WwW.example.org.").unwrap();
    let read = read_plain(&query(None)).expect("plain");
    let reply = respond(
        &read,
        &Answer::minimal_any(&name),
        Transport::Udp,
        <[u8]>::to_vec,
    );
    let message = Message::from_vec(&reply).expect("decodes");
    assert_eq!(message.answers.len(), 1);
    let RData::HINFO(hinfo) = &message.answers[0].data else {
        panic!("not HINFO: {:?}", message.answers[0].data);
    };
    assert_eq!((&*hinfo.cpu, &*hinfo.os), (&b"RFC8482"[..], &b""[..]));
}

#[test]
fn ad_is_set_for_a_validated_answer_only_when_the_client_asks() {
    let name = Name::from_ascii("www.example.org.").unwrap();
    let mut upstream = UpstreamAnswer::new(
        ResponseCode::NoError,
        vec![Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1)))],
        Vec::new(),
    );
    upstream.authentic = true;
    let answer = Answer::from_upstream(std::sync::Arc::new(upstream));
    // DO asks; so does AD in the query (RFC 6840 5.7); neither does not.
    assert!(
        response(&query(Some(OPT_DO)), &answer)
            .metadata
            .authentic_data
    );
    let mut with_ad = query(None);
    with_ad[3] |= 0x20;
    assert!(response(&with_ad, &answer).metadata.authentic_data);
    assert!(!response(&query(None), &answer).metadata.authentic_data);
    // Never for an answer that is not validated, or that Lollipop changed.
    assert!(
        !response(&query(Some(OPT_DO)), &blocked())
            .metadata
            .authentic_data
    );
}

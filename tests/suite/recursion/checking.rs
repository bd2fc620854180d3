//! DNSSEC answers that depend on more than the signatures: a client that
//! sets CD (checking disabled) is given data that failed validation, and
//! the cache never gives that data to one that did not.

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

use super::{LISTS, start, with_do};
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
    servfail_with(&reply, 6);
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

/// 15 January 2020, inside the window `Hierarchy::start_signed_with` is
/// given below (and the expired zone's): the time saved at the "last
/// shutdown".
const SAVED_IN_2020: u64 = 1_579_046_400;

#[test]
fn before_the_clock_is_trusted_signatures_are_checked_as_of_the_saved_time() {
    // Every zone signed for January 2020 only, as if the servers had been
    // signed just before the appliance last shut down.
    let window = ["-i", "20200101000000", "-e", "20200201000000"];
    let hierarchy = Hierarchy::start_signed_with(58, &window);
    let state = tempfile::tempdir().expect("dir");
    let synced = state.path().join("synchronized");
    let saved = state.path().join("clock-saved");
    std::fs::write(&saved, format!("{SAVED_IN_2020}\n")).expect("save");
    let config = TestConfig::new()
        .listen("127.0.0.1:0")
        .table(
            "resolver",
            &format!(
                "{}\nclock_synced_file = \"{}\"\nclock_state_file = \"{}\"",
                hierarchy.resolver_keys(),
                synced.display(),
                saved.display()
            ),
        )
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    // A Pi that started in 1970, no time server reached yet.
    let clock = lollipop::clock::Clock::set_at(86_400_000);
    let unused = TestUpstream::start();
    let lollipop = TestLollipop::start_at(&config, &unused, LISTS, |_| {}, clock.clone());

    // Untrusted: checked as of the saved time, so the answer comes (not
    // SERVFAIL with EDE 7), without AD, and the status page and /metrics say so.
    let reply = ask_cd(lollipop.address(), "www.signed.test.", false);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply:?}"
    );
    assert_eq!(answers(&reply)[0], format!("A {}", nsd::WWW_SIGNED));
    assert!(
        !reply.metadata.authentic_data,
        "no AD by a guessed time: {reply:?}"
    );
    let metrics = metrics_text(&lollipop);
    assert!(metrics.contains("lollipop_clock_untrusted 1"), "{metrics}");
    assert!(
        metrics.contains(&format!("lollipop_clock_validating_as_of {SAVED_IN_2020}"))
            || metrics.contains(&format!(
                "lollipop_clock_validating_as_of {}",
                SAVED_IN_2020 + 1
            )),
        "{metrics}"
    );

    // NTP sets the clock: from then on signatures are judged by it, and
    // the January 2020 ones have expired: SERVFAIL, EDE 7.
    std::fs::write(&synced, "").expect("synchronised");
    clock.set(i64::try_from(lollipop::clock::now_unix_secs()).expect("fits") * 1000);
    let reply = ask_cd(lollipop.address(), "www.expired.test.", false);
    servfail_with(&reply, 7);
    let metrics = metrics_text(&lollipop);
    assert!(metrics.contains("lollipop_clock_untrusted 0"), "{metrics}");

    // And a Lollipop whose clock was trusted from the start never gave the
    // first answer either.
    let trusted = TestLollipop::start(&config, &unused, LISTS);
    let reply = ask_cd(trusted.address(), "www.signed.test.", false);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );
    assert_eq!(extended_error(&reply).expect("why").0, 7);
}

#[test]
fn signatures_from_the_future_servfail_with_ede_8() {
    // Every zone signed for a month that has not begun.
    let window = ["-i", "20400101000000", "-e", "20400201000000"];
    let hierarchy = Hierarchy::start_signed_with(60, &window);
    let lollipop = start(&hierarchy);
    let reply = ask_cd(lollipop.address(), "www.signed.test.", false);
    servfail_with(&reply, 8);
}

//! The guards around the upstream: each client's share of the lookups in
//! flight, and the rebinding stage on what the upstream says.

use std::future::pending;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;

use crate::dns::protocol::{EDE_BLOCKED, EDE_OTHER};
use crate::dns::resolve::share::Requester;
use crate::dns::resolve::upstream::Busy;

use super::*;

/// Never answers names under `silent.`; answers every other name at once.
struct SilentUpstream;

impl Upstream for SilentUpstream {
    fn ask<'a>(&'a self, name: &'a Name, _: RecordType) -> upstream::Asked<'a> {
        Box::pin(async move {
            if name.to_ascii().trim_end_matches('.').ends_with(".silent") {
                pending::<()>().await;
            }
            UpstreamAnswer::new(ResponseCode::NoError, vec![a(&name.to_ascii(), 1)], vec![])
        })
    }
}

#[test]
fn a_client_over_its_share_is_refused_at_once_while_another_is_answered() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = Arc::new(UpstreamStats::default());
    let limits = UpstreamLimits {
        cache_bytes: 1 << 20,
        max_in_flight: 8,
        max_in_flight_per_client: 3,
    };
    let upstream = Arc::new(CachedUpstream::new(
        Box::new(SilentUpstream),
        limits,
        UpstreamTiming::default(),
        stats.clone(),
    ));
    let flooder = IpAddr::V4(Ipv4Addr::new(10, 0, 20, 66));
    let exempt = ["10.0.10.5/32".parse().expect("net")];
    let forwarder = IpAddr::V4(Ipv4Addr::new(10, 0, 10, 5));
    runtime.block_on(async {
        // The flooder's first three lookups wait on the silent upstream...
        for i in 0..3 {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let requester = Requester {
                    address: flooder,
                    exempt: &[],
                };
                let name = name(&format!("n{i}.silent."));
                let _ = upstream.resolve(&name, RecordType::A, requester).await;
            });
        }
        tokio::task::yield_now().await;
        // ...so its fourth is refused without waiting,
        let requester = Requester {
            address: flooder,
            exempt: &[],
        };
        let refused = upstream
            .resolve(&name("n9.silent."), RecordType::A, requester)
            .await;
        assert_eq!(refused.err(), Some(Busy::ClientShare));
        // while another pupil's lookup is asked and answered,
        let other = Requester {
            address: OTHER_PUPIL.address,
            exempt: &[],
        };
        let answer = upstream
            .resolve(&name("www.school.example."), RecordType::A, other)
            .await
            .expect("answered");
        assert_eq!(answer.code, ResponseCode::NoError);
        // An exempt forwarder may hold more than a share: five, here,
        for i in 0..5 {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let requester = Requester {
                    address: forwarder,
                    exempt: &exempt,
                };
                let name = name(&format!("f{i}.silent."));
                let _ = upstream.resolve(&name, RecordType::A, requester).await;
            });
        }
        tokio::task::yield_now().await;
        // which with the flooder's three fills the pool of eight.
        let full = upstream
            .resolve(&name("www.other.example."), RecordType::A, other)
            .await;
        assert_eq!(full.err(), Some(Busy::Everyone));
    });
    assert_eq!(stats.share_refused.load(Relaxed), 1);
    assert_eq!(stats.pool_refused.load(Relaxed), 1);
    let busy = Busy::ClientShare.extended_error();
    assert_eq!(busy.code, EDE_OTHER);
    assert!(busy.text.contains("too many lookups"), "{}", busy.text);
}

fn ask_a(fixture: &Fixture, domain: &str) -> Answer {
    ask(fixture, &OverrideSet::default(), PUPIL, domain).1
}

#[test]
fn a_private_address_for_a_public_name_is_dropped_with_its_reason() {
    let fixture = fixture();
    let answer = ask_a(&fixture, "evil.example");
    assert_eq!(answer.code, ResponseCode::NoError);
    assert!(addresses(&answer).is_empty(), "{:?}", addresses(&answer));
    let ede = answer.extended_error.expect("EDE");
    assert_eq!(ede.code, EDE_BLOCKED);
    assert!(ede.text.contains("private address"), "{}", ede.text);
    // The cached answer is filtered the same way the second time.
    assert!(addresses(&ask_a(&fixture, "evil.example")).is_empty());
    assert_eq!(fixture.count.load(Ordering::SeqCst), 1, "asked once");
    // Only the private address of a mixed answer goes.
    assert_eq!(addresses(&ask_a(&fixture, "mixed.example")), ["192.0.2.4"]);
}

#[test]
fn allowed_domains_local_zones_single_labels_and_the_appliance_keep_private_addresses() {
    let fixture = fixture();
    for (domain, address) in [
        ("intranet.corp.example.org", "10.1.2.3"),
        ("nas.home.arpa", "192.168.1.20"),
        ("printer", "10.0.0.9"),
        ("filter.school.example", "10.0.0.1"),
    ] {
        let answer = ask_a(&fixture, domain);
        assert_eq!(addresses(&answer), [address], "{domain}");
        assert!(answer.extended_error.is_none(), "{domain}");
    }
    // Public answers pass untouched, sharing the cached answer.
    let answer = ask_a(&fixture, "www.school.example");
    assert_eq!(addresses(&answer), ["192.0.2.1"]);
    assert!(answer.extended_error.is_none());
}

#[test]
fn with_rebinding_protection_off_private_addresses_pass() {
    let mut fixture = fixture();
    let text = "[server]\ndata_dir = \"/nonexistent\"\ndefault_profile = \"ks2\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\naddress = \"127.0.0.1:53\"\nprotocol = \"udp\"\n[web]\nenabled = false\n[rebinding]\nenabled = false\n[profiles.ks2]\nmode = \"blocklist\"\n";
    let config = Config::parse(text, ConfigOrigin::default()).expect("config");
    fixture.settings.rebinding = RebindingGuard::from_config(&config, Arc::default());
    assert_eq!(
        addresses(&ask_a(&fixture, "evil.example")),
        ["192.168.1.10"]
    );
}

#[test]
fn a_waiter_whose_asker_gave_up_still_answers_within_its_own_deadline() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limits = UpstreamLimits {
        cache_bytes: 1 << 20,
        max_in_flight: 8,
        max_in_flight_per_client: 8,
    };
    let timing = UpstreamTiming {
        answer_within: std::time::Duration::from_millis(1000),
        ..UpstreamTiming::default()
    };
    let upstream = Arc::new(CachedUpstream::new(
        Box::new(SilentUpstream),
        limits,
        timing,
        Arc::default(),
    ));
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 20, 7));
    runtime.block_on(async {
        // The first query asks; the second joins it 100 ms later.
        let asker = {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let requester = Requester {
                    address: client,
                    exempt: &[],
                };
                let _ = upstream
                    .resolve(&name("late.silent."), RecordType::A, requester)
                    .await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let waiter = {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let requester = Requester {
                    address: client,
                    exempt: &[],
                };
                let started = std::time::Instant::now();
                let answer = upstream
                    .resolve(&name("late.silent."), RecordType::A, requester)
                    .await;
                (answer, started.elapsed())
            })
        };
        // The asker's client goes away near the end of its time.
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        asker.abort();
        let (answer, took) = waiter.await.expect("waiter");
        let answer = answer.expect("not refused");
        assert_eq!(answer.code, ResponseCode::ServFail);
        assert_eq!(
            answer.extended_error.as_ref().map(|e| e.code),
            Some(crate::dns::protocol::EDE_NO_REACHABLE_AUTHORITY)
        );
        // Its own 1 s deadline, not the asker's time plus another half.
        assert!(
            took < std::time::Duration::from_millis(1250),
            "answered after {took:?}"
        );
    });
}

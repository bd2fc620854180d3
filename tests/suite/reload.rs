//! Hot reload of the real binary: while a client asks continuously, the
//! lists and the config are swapped ten times (SIGHUP and file changes);
//! every query gets an answer and the answers follow the new lists. An
//! invalid config is rejected and the running one keeps answering.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use hickory_server::proto::op::Message;
use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};

/// The profile always blocks gambling (the rotating list) plus `second`.
/// The load asks from one address as fast as answers come, far above any
/// school device, so the per-client rate limit is off: this test is about
/// reloads, `limits` about the limit.
fn config(port: u16, second: &str) -> String {
    TestConfig::new()
        .table("limits", "per_address_qps = 0\nper_network_qps = 0")
        .listen(&format!("127.0.0.1:{port}"))
        .upstream("{upstream}")
        .list("rotating", "rotating.txt", "gambling")
        .list("fixed", "fixed.txt", "social")
        .list("video", "video.txt", "video")
        .blocklist("ks2", &["gambling", second], "")
        .toml()
}

fn is_blocked(server: SocketAddr, name: &str) -> bool {
    answers(&a(server, name)) == ["A 0.0.0.0"]
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// The real binary on `config_path`, once `server` answers.
fn run_lollipop(config_path: &std::path::Path, server: SocketAddr) -> Process {
    let child = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args(["--config", &config_path.display().to_string(), "run"])
            .stderr(Stdio::null())
            .spawn()
            .expect("lollipop starts"),
    );
    wait_until("first answer", || {
        let q = query_message("www.example.net.", RecordType::A, Ask::default());
        exchange_udp_within(
            server,
            &q.to_bytes().expect("encode"),
            Duration::from_millis(200),
        )
        .is_some()
    });
    child
}

#[test]
fn lists_and_config_swap_under_load_without_a_failed_query() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let write =
        |file: &str, text: &str| std::fs::write(dir.path().join(file), text).expect("write");
    write("rotating.txt", "example.com\n");
    write("fixed.txt", "example.org\n");
    write("video.txt", "youtube.com\n");
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(
        &config_path,
        expand(&config(port, "video"), &upstream, dir.path()),
    )
    .expect("config");

    let child = run_lollipop(&config_path, server);
    assert!(is_blocked(server, "www.example.com."));

    // The load: queries back to back until told to stop (at most 60 s).
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                let name = ["www.example.com.", "news.example.org.", "www.bbc.co.uk."]
                    [sent.load(Ordering::SeqCst) % 3];
                let q = query_message(name, RecordType::A, Ask::default());
                sent.fetch_add(1, Ordering::SeqCst);
                let reply = exchange_udp(server, &q.to_bytes().expect("encode"));
                let answered = reply
                    .and_then(|r| Message::from_bytes(&r).ok())
                    .is_some_and(|m| m.metadata.id == q.metadata.id && !m.answers.is_empty());
                if !answered {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };

    for round in 1..=10 {
        if round % 2 == 1 {
            // Lists: the rotating list moves from example.com to bbc.co.uk and back.
            let now_blocked = if round % 4 == 1 {
                "bbc.co.uk"
            } else {
                "example.com"
            };
            write("rotating.txt", &format!("{now_blocked}\n"));
            hangup(&child.0);
            let other = if now_blocked == "bbc.co.uk" {
                "www.example.com."
            } else {
                "www.bbc.co.uk."
            };
            wait_until(&format!("round {round}: {now_blocked} blocked"), || {
                is_blocked(server, &format!("www.{now_blocked}.")) && !is_blocked(server, other)
            });
        } else {
            // Config: the profile's second category switches between social
            // and video; no signal, the file change alone triggers the reload.
            let category = if round % 4 == 2 { "social" } else { "video" };
            std::fs::write(
                &config_path,
                expand(&config(port, category), &upstream, dir.path()),
            )
            .expect("config");
            wait_until(&format!("round {round}: {category} in force"), || {
                is_blocked(server, "news.example.org.") == (category == "social")
            });
        }
    }

    // An invalid config is rejected; the running settings keep answering.
    std::fs::write(&config_path, "[server]\ndefault_profile = 7\n").expect("config");
    hangup(&child.0);
    std::thread::sleep(Duration::from_millis(500));
    // Round 9 left bbc.co.uk on the rotating list.
    assert!(
        is_blocked(server, "www.bbc.co.uk."),
        "still the last good settings"
    );
    assert!(
        !is_blocked(server, "www.example.com."),
        "still the last good settings"
    );

    // Each config change is in the audit trail with what changed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reader = lollipop::journal::JournalReader::open(&dir.path().join("data/lollipop.db"))
            .expect("journal");
        let audit = reader.audit(0, i64::MAX, 100).expect("audit");
        let profile_changes = audit
            .iter()
            .filter(|row| row.action == "config reloaded" && row.detail.contains("profiles.ks2"))
            .count();
        if profile_changes >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit has {profile_changes} profile changes: {audit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    stop.store(true, Ordering::SeqCst);
    load.join().expect("load thread");
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent > 100, "the load ran ({sent} queries)");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "every one of {sent} queries answered"
    );
}

/// Two VLAN listeners, ks2 (blocks gambling, plus `extra`) and staff
/// (blocks nothing), written in `order`.
fn two_vlans(port: u16, ks2_first: bool, extra: &str) -> String {
    let ks2 = format!("127.0.0.1:{port}");
    let staff = format!("127.0.0.2:{port}");
    let config = TestConfig::new();
    let config = if ks2_first {
        config.listen_for(&ks2, "ks2").listen_for(&staff, "staff")
    } else {
        config.listen_for(&staff, "staff").listen_for(&ks2, "ks2")
    };
    config
        .upstream("{upstream}")
        .list("gambling", "gambling.txt", "gambling")
        .list("video", "video.txt", "video")
        .blocklist("ks2", &["gambling", extra], "")
        .blocklist("staff", &[], "")
        .toml()
}

#[test]
fn profiles_follow_their_listeners_address_when_the_blocks_are_reordered() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let ks2: SocketAddr = ([127, 0, 0, 1], port).into();
    let staff: SocketAddr = ([127, 0, 0, 2], port).into();
    let write =
        |file: &str, text: &str| std::fs::write(dir.path().join(file), text).expect("write");
    write("gambling.txt", "example.com\n");
    write("video.txt", "example.org\n");
    let config_path = dir.path().join("lollipop.toml");
    let config = |ks2_first: bool, extra: &str| {
        expand(&two_vlans(port, ks2_first, extra), &upstream, dir.path())
    };
    std::fs::write(&config_path, config(true, "gambling")).expect("config");
    let child = run_lollipop(&config_path, ks2);
    assert!(is_blocked(ks2, "www.example.com."));
    assert!(!is_blocked(staff, "www.example.com."));

    // The same listeners, staff's block now first, and ks2 also blocking
    // video, so the reload shows when it is in force.
    std::fs::write(&config_path, config(false, "video")).expect("config");
    hangup(&child.0);
    wait_until("the reordered config in force", || {
        is_blocked(ks2, "www.example.org.")
    });
    assert!(
        is_blocked(ks2, "www.example.com."),
        "the ks2 VLAN must not get the staff profile"
    );
    assert!(!is_blocked(staff, "www.example.com."));
    assert!(!is_blocked(staff, "www.example.org."));
}

//! The block log end to end: blocked lookups answered over real sockets land
//! in the SQLite file with device, profile, category, list and rule, are read
//! back by `lollipop log` (table and CSV), and a full disk never stops DNS.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// The school without its profile; `log` adds keys to the `[log]` table.
fn school(log: &str) -> TestConfig {
    TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        .table("log", &format!("time_zone = \"UTC\"\n{log}"))
        .section(
            r#"[[devices]]
ip = "127.0.0.1"
name = "Y5-iPad-07"
owner = "Year 5"
room = "Oak class""#,
        )
        .list("school-gambling", "gambling.txt", "gambling")
}

/// The school, its pupils' profile blocking gambling.
fn config(log: &str) -> String {
    school(log).blocklist("ks2", &["gambling"], "").toml()
}

fn log_command(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(dir.join("lollipop.toml"))
        .arg("log")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn blocked_lookups_are_logged_with_device_and_reason() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&config(""), &upstream, &[("gambling.txt", "bet365.com\n")]);
    // A browser retrying: collapsed into one row with a count.
    for _ in 0..3 {
        assert_eq!(
            answers(&a(lollipop.address(), "www.bet365.com.")),
            ["A 0.0.0.0"]
        );
    }
    a(lollipop.address(), "www.example.com.");
    a(lollipop.address(), "use-application-dns.net.");
    lollipop.flush_log();

    let table = log_command(lollipop.dir.path(), &[]);
    assert!(table.contains("Y5-iPad-07"), "{table}");
    assert!(table.contains("www.bet365.com"), "{table}");
    assert!(
        !table.contains("www.example.com"),
        "allowed lookups are not logged: {table}"
    );
    assert!(!table.contains("use-application-dns"), "{table}");

    let csv = log_command(lollipop.dir.path(), &["--csv", "--category", "gambling"]);
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(
        header.contains("Device") && header.contains("Blocked name"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{csv}");
    for expected in [
        "Y5-iPad-07",
        "Year 5",
        "Oak class",
        "127.0.0.1",
        "ks2",
        "gambling",
        "school-gambling",
        "bet365.com",
        "www.bet365.com",
        ",3,",
    ] {
        assert!(
            rows[0].contains(expected),
            "{expected} missing: {}",
            rows[0]
        );
    }
    assert!(
        log_command(lollipop.dir.path(), &["--profile", "staff"]).contains("no blocked lookups")
    );
    assert!(log_command(lollipop.dir.path(), &["--device", "iPad"]).contains("www.bet365.com"));
    assert!(
        log_command(
            lollipop.dir.path(),
            &["--from", "2020-01-01", "--to", "2020-12-31"]
        )
        .contains("no blocked lookups")
    );
}

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_does_not_stop_answers_and_logging_resumes() {
    let upstream = TestUpstream::start();
    let mount = tempfile::tempdir().expect("tempdir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=600k", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("mount runs");
    assert!(
        status.success(),
        "mounting a tmpfs needs root, as the test suite does"
    );
    let _tmpfs = Tmpfs(mount.path().to_path_buf());
    let database = mount.path().join("lollipop.db");
    let lollipop = TestLollipop::start(
        &config(&format!("database = \"{}\"", database.display())),
        &upstream,
        &[("gambling.txt", "bet365.com\n")],
    );
    a(lollipop.address(), "first.bet365.com.");
    lollipop.flush_log();

    // Fill the disk.
    let filler = mount.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1024 * 1024]);
    let started = Instant::now();
    for i in 0..300 {
        let name = format!("n{i}.bet365.com.");
        assert_eq!(
            answers(&a(lollipop.address(), &name)),
            ["A 0.0.0.0"],
            "{name}"
        );
        if i % 50 == 0 {
            assert_eq!(
                answers(&a(lollipop.address(), "www.example.com.")),
                ["A 192.0.2.10"]
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answers kept flowing"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lollipop.log_stats().last_error.is_none() {
        assert!(
            Instant::now() < deadline,
            "the full disk became visible in the log's status"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Space comes back: writing resumes and later lookups arrive.
    std::fs::remove_file(&filler).expect("free space");
    a(lollipop.address(), "after.bet365.com.");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        lollipop.flush_log();
        let rows = lollipop::journal::query_blocked(&database, &Default::default()).expect("read");
        if rows.iter().any(|r| r.name == "after.bet365.com") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logging resumed after space returned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serious_blocks_alert_the_safeguarding_lead_by_webhook() {
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let config = school("")
        .table("alerts", "school_name = \"Oak Primary\"")
        .table(
            "alerts.webhook",
            &format!("url = \"{}\"", hook.url("/hook")),
        )
        .list("adult", "adult.txt", "pornography")
        .blocklist("ks2", &["gambling", "pornography"], "")
        .toml();
    let lollipop = TestLollipop::start(
        &config,
        &upstream,
        &[
            ("gambling.txt", "bet365.com\n"),
            ("adult.txt", "adult-site.example\n"),
        ],
    );
    assert_eq!(
        answers(&a(lollipop.address(), "www.bet365.com.")),
        ["A 0.0.0.0"]
    );
    assert_eq!(
        answers(&a(lollipop.address(), "www.adult-site.example.")),
        ["A 0.0.0.0"]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.alerts().is_empty() {
        assert!(Instant::now() < deadline, "no alert arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let bodies: Vec<String> = hook.alerts().iter().map(|r| r.body_text()).collect();
    assert_eq!(bodies.len(), 1, "gambling does not alert: {bodies:?}");
    // Before any alert, the start-up notice told the DSL what is off.
    let first = hook.requests()[0].body_text();
    assert!(first.contains("some safeguards are off"), "{first}");
    assert!(
        first.contains("Not protected against the CTIRU list"),
        "{first}"
    );
    let alert: serde_json::Value = serde_json::from_str(&bodies[0]).expect("JSON");
    let text = alert.to_string();
    for expected in [
        "Oak Primary",
        "Y5-iPad-07",
        "pornography",
        "ks2",
        "www.adult-site.example",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
}

#[test]
fn devices_no_one_named_are_named_by_the_router() {
    use hickory_server::proto::rr::RecordType;
    use hickory_server::proto::serialize::binary::BinEncodable;
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(
        &config("router = \"{upstream}\""),
        &upstream,
        &[("gambling.txt", "bet365.com\n")],
    );
    // Asked from 127.0.0.2, which only the router (the test upstream) names.
    let socket = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let query = query_message("www.bet365.com.", RecordType::A, Ask::default());
    socket
        .send_to(&query.to_bytes().expect("encode"), lollipop.address())
        .expect("send");
    let mut buf = [0u8; 1500];
    socket.recv_from(&mut buf).expect("answered");
    lollipop.flush_log();
    let table = log_command(lollipop.dir.path(), &["--device", "127.0.0.2"]);
    assert!(table.contains("staffroom-laptop.lan"), "{table}");
}

#[test]
fn a_damaged_block_log_is_set_aside_and_dns_answers() {
    let upstream = TestUpstream::start();
    // What a power cut can leave on an SD card: the file is there, its
    // contents are not a database.
    let junk = "\u{0}\u{1}not a database, after a power cut".repeat(200);
    let lollipop = TestLollipop::start(
        &config(""),
        &upstream,
        &[
            ("gambling.txt", "bet365.com\n"),
            ("data/lollipop.db", &junk),
        ],
    );
    assert_eq!(
        answers(&a(lollipop.address(), "www.bet365.com.")),
        ["A 0.0.0.0"]
    );
    assert_eq!(
        answers(&a(lollipop.address(), "www.example.com.")),
        ["A 192.0.2.10"]
    );
    lollipop.flush_log();
    // The damaged file is kept for inspection, byte for byte.
    let kept: Vec<_> = std::fs::read_dir(lollipop.dir().join("data"))
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains("lollipop.db.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).expect("kept"), junk);
    // A fresh log took the block, and the audit trail says what happened.
    let out = log_command(lollipop.dir(), &[]);
    assert!(out.contains("bet365.com"), "{out}");
    let db = lollipop::journal::JournalReader::open(&lollipop.dir().join("data/lollipop.db"))
        .expect("the fresh log opens");
    let audit = db.audit(0, i64::MAX, 100).expect("audit");
    assert!(
        audit.iter().any(|row| row.action == "block log set aside"),
        "{audit:?}"
    );
}

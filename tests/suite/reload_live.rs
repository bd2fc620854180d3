//! A reload puts what it reads in force, at once, in the parts that were
//! started with the old config: the alerter, the block log's device names
//! and retention, the page's session time-out; and a change only a restart
//! can make (a new page address) is said to wait, never shown as applied.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;
use lollipop::admin::Role;
use lollipop::journal::{JournalReader, LogFilter};
use lollipop::service::reload::ReloadOutcome;

use crate::support::web::{SCHOOL_LISTS, WebSchool};
use crate::support::*;

/// A fixed "now" for the tests that move time.
const START_MS: i64 = 1_760_000_000_000;

/// Asks `server` for `name` from the loopback address `source`.
fn ask_from(source: &str, server: SocketAddr, name: &str) -> bool {
    let socket = UdpSocket::bind((source, 0)).expect("bind the client address");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let query = query_message(name, RecordType::A, Ask::default());
    socket
        .send_to(&query.to_bytes().expect("encode"), server)
        .expect("send");
    let mut buffer = [0u8; 1500];
    socket.recv_from(&mut buffer).is_ok()
}

fn blocked_rows(lollipop: &TestLollipop) -> Vec<lollipop::journal::BlockedRow> {
    lollipop.flush_log();
    JournalReader::open(&lollipop.dir().join("data/lollipop.db"))
        .expect("journal")
        .query_blocked(&LogFilter::default())
        .expect("rows")
}

#[test]
fn a_shorter_session_time_out_applies_on_reload_to_open_sessions() {
    let clock = Clock::set_at(START_MS);
    let school = WebSchool::start_at("session_idle_minutes = 30", clock.clone(), |_| {});
    let head = school.signed_in("head", Role::Viewer);
    clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(head.get("/").status, 200, "30 idle minutes allowed");

    let outcome = school
        .lollipop
        .reload_with(|text| text.replace("session_idle_minutes = 30", "session_idle_minutes = 5"));
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    clock.advance(Duration::from_secs(6 * 60));
    let reply = head.get("/");
    assert_eq!(reply.status, 303, "signed out after 5 idle minutes");
    assert!(
        reply.location().contains("expired=1"),
        "{}",
        reply.location()
    );
}

#[test]
fn a_shorter_retention_applies_on_reload_to_the_next_sweep() {
    let clock = Clock::set_at(START_MS);
    let upstream = TestUpstream::start();
    // NTP has synced: a clock moved ten days on is trusted with deleting.
    let config = TestConfig::school()
        .listen_for("127.0.0.1:0", "ks2")
        .table("log", "blocked_retention_days = 365")
        .blocklist("ks2", &["gambling"], "")
        .toml()
        .replace(
            "attempts = 1",
            "attempts = 1\nclock_synced_file = \"synced\"",
        );
    let lists: Vec<(&str, &str)> = SCHOOL_LISTS
        .iter()
        .copied()
        .chain([("synced", "")])
        .collect();
    let lollipop = TestLollipop::start_at(&config, &upstream, &lists, |_| {}, clock.clone());
    assert_eq!(
        answers(&a(lollipop.address(), "www.bet365.com.")),
        ["A 0.0.0.0"]
    );
    assert_eq!(blocked_rows(&lollipop).len(), 1);
    clock.advance(Duration::from_secs(10 * 86_400));
    let journal = lollipop.running().journal.clone();
    lollipop.block_on(journal.prune_now());
    assert_eq!(blocked_rows(&lollipop).len(), 1, "kept for 365 days");

    let outcome = lollipop.reload_with(|text| {
        text.replace("blocked_retention_days = 365", "blocked_retention_days = 5")
    });
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    let report = lollipop.block_on(journal.prune_now()).expect("pruned");
    assert_eq!(report.blocked_deleted, 1, "{report:?}");
    assert!(blocked_rows(&lollipop).is_empty());
}

#[test]
fn a_device_named_on_reload_is_named_in_the_log() {
    let upstream = TestUpstream::start();
    let config = TestConfig::school()
        .listen_for("127.0.0.1:0", "ks2")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let lollipop = TestLollipop::start(&config, &upstream, SCHOOL_LISTS);
    assert!(ask_from("127.0.0.2", lollipop.address(), "www.bet365.com."));

    let outcome = lollipop.reload_with(|text| {
        format!("{text}\n[[devices]]\nip = \"127.0.0.2\"\nname = \"Library-PC-3\"\n")
    });
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    assert!(ask_from(
        "127.0.0.2",
        lollipop.address(),
        "news.bet365.com."
    ));
    let rows = blocked_rows(&lollipop);
    let named = rows
        .iter()
        .find(|row| row.name == "news.bet365.com")
        .unwrap_or_else(|| panic!("the second block is logged: {rows:?}"));
    assert_eq!(named.device_name.as_deref(), Some("Library-PC-3"));
}

/// The allowed lookups written to the full query log.
fn logged_queries(lollipop: &TestLollipop) -> Vec<String> {
    lollipop.flush_log();
    let db = rusqlite::Connection::open(lollipop.dir().join("data/lollipop.db")).expect("db");
    let mut statement = db
        .prepare("SELECT name FROM queries ORDER BY name")
        .expect("the full query log's table");
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn the_full_query_log_turns_on_and_off_on_reload() {
    let upstream = TestUpstream::start();
    let config = TestConfig::school()
        .listen_for("127.0.0.1:0", "ks2")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let lollipop = TestLollipop::start(&config, &upstream, SCHOOL_LISTS);
    assert!(ask_from(
        "127.0.0.2",
        lollipop.address(),
        "www.example.com."
    ));
    assert!(logged_queries(&lollipop).is_empty(), "off by default");

    let outcome = lollipop.reload_with(|text| format!("{text}\n[log]\nfull_query_log = true\n"));
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    assert!(ask_from("127.0.0.2", lollipop.address(), "www.bbc.co.uk."));
    assert_eq!(logged_queries(&lollipop), ["www.bbc.co.uk"]);

    let outcome = lollipop
        .reload_with(|text| text.replace("full_query_log = true", "full_query_log = false"));
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    assert!(ask_from(
        "127.0.0.2",
        lollipop.address(),
        "news.example.org."
    ));
    assert_eq!(
        logged_queries(&lollipop),
        ["www.bbc.co.uk"],
        "off again at once"
    );
    let waiting = lollipop.running().reloader.waiting_for_restart();
    assert!(
        waiting.is_empty(),
        "nothing waits for a restart: {waiting:?}"
    );
}

/// Whether the server closes an idle TCP connection within `within`.
fn closed_when_idle(server: SocketAddr, within: Duration) -> bool {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(server).expect("connect");
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn a_shorter_tcp_idle_time_applies_on_reload() {
    let upstream = TestUpstream::start();
    let config = TestConfig::school()
        .server("tcp_idle_timeout_secs = 60")
        .listen_for("127.0.0.1:0", "ks2")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let lollipop = TestLollipop::start(&config, &upstream, SCHOOL_LISTS);
    assert!(
        !closed_when_idle(lollipop.address(), Duration::from_secs(2)),
        "a minute's idle time keeps the connection open"
    );
    let outcome = lollipop.reload_with(|text| {
        text.replace("tcp_idle_timeout_secs = 60", "tcp_idle_timeout_secs = 1")
    });
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    assert!(
        closed_when_idle(lollipop.address(), Duration::from_secs(15)),
        "after the reload an idle connection is closed after a second"
    );
    let waiting = lollipop.running().reloader.waiting_for_restart();
    assert!(
        waiting.is_empty(),
        "nothing waits for a restart: {waiting:?}"
    );
}

#[test]
fn alerts_go_to_the_webhook_set_on_reload() {
    let upstream = TestUpstream::start();
    let (first, second) = (TestHttp::start(), TestHttp::start());
    first.serve("/hook", 200, "ok");
    second.serve("/hook", 200, "ok");
    let config = TestConfig::school()
        .listen_for("127.0.0.1:0", "ks2")
        .list("adult", "adult.txt", "pornography")
        .table("alerts", "school_name = \"Oak Primary\"")
        .table(
            "alerts.webhook",
            &format!("url = \"{}\"", first.url("/hook")),
        )
        .blocklist("ks2", &["gambling", "pornography"], "")
        .toml();
    let lollipop = TestLollipop::start(
        &config,
        &upstream,
        &[
            ("gambling.txt", "bet365.com\n"),
            ("video.txt", "youtube.com\n"),
            ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
            ("adult.txt", "adult-site.example\n"),
        ],
    );
    a(lollipop.address(), "www.adult-site.example.");
    wait_until("the first alert", || first.alerts().len() == 1);

    let (old, new) = (first.url("/hook"), second.url("/hook"));
    let outcome = lollipop.reload_with(|text| text.replace(&old, &new));
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    a(lollipop.address(), "cdn.adult-site.example.");
    wait_until("the alert at the new webhook", || {
        second.alerts().len() == 1
    });
    assert_eq!(first.alerts().len(), 1, "nothing more to the old webhook");
    assert!(
        second.alerts()[0]
            .body_text()
            .contains("cdn.adult-site.example")
    );
}

#[test]
fn a_new_page_address_waits_for_a_restart_and_says_so() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let old = school.web.to_string();
    let new = format!("127.0.0.1:{}", free_port());
    let outcome = school.lollipop.reload_with(|text| {
        text.replace(&old, &new)
            .replace("session_idle_minutes = 15", "")
            .replace("[web]", "[web]\nsession_idle_minutes = 20")
    });
    assert_eq!(outcome, ReloadOutcome::Reloaded);

    // The old address still answers; the new one is not listened on yet.
    let dashboard = admin.get("/");
    assert_eq!(dashboard.status, 200);
    assert!(
        dashboard
            .body
            .contains("Some changes need a restart to take effect: web page address"),
        "{}",
        dashboard.body
    );
    assert!(std::net::TcpStream::connect(&new).is_err(), "{new} waits");

    let settings = admin.get("/settings");
    assert!(settings.body.contains(&format!("http://{old}")), "in force");
    assert!(settings.body.contains("takes effect after restart"));

    let audit = school.audit();
    let entry = audit
        .iter()
        .find(|row| row.action == "config reloaded")
        .unwrap_or_else(|| panic!("a reload entry: {audit:?}"));
    let (applied, waiting) = entry
        .detail
        .split_once("waiting for a restart")
        .unwrap_or_else(|| panic!("says what waits: {}", entry.detail));
    assert!(applied.contains("web.session_idle_minutes"), "{applied}");
    assert!(
        !applied.contains("web.listen"),
        "never claimed applied: {applied}"
    );
    assert!(
        waiting.contains("web.listen") && waiting.contains(&new),
        "{waiting}"
    );
}

/// `dig` inside `namespace`, from `source`, at `server` port 5353.
fn dig_in(namespace: &str, source: &str, server: &str, name: &str) -> String {
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", namespace, "dig"])
        .arg(format!("@{server}"))
        // No cookie: every ask of a name is then the same bytes (ID
        // aside), so a repeat can be answered from the earlier answer's.
        .args([
            "-p",
            "5353",
            "-b",
            source,
            "+time=1",
            "+tries=1",
            "+nocookie",
            name,
        ])
        .output()
        .expect("dig runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A network namespace with only loopback, carrying `addresses` (outside
/// the private ranges Lollipop always serves); removed on drop.
struct Namespace(String);

impl Namespace {
    fn new(name: &str, addresses: &[&str]) -> Namespace {
        let ip = |args: &[&str]| {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("ip runs");
            assert!(
                status.success(),
                "ip {} (the tests need root)",
                args.join(" ")
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", name]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        for address in addresses {
            ip(&[
                "-n",
                name,
                "addr",
                "add",
                &format!("{address}/32"),
                "dev",
                "lo",
            ]);
        }
        Namespace(name.to_string())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn allowed_networks_change_on_reload_over_real_udp() {
    let namespace = Namespace::new("lpallowed", &["198.18.0.1", "198.18.0.2"]);
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("gambling.txt"), "bet365.com\n").expect("list");
    let config = |allowed: &str| {
        let text = TestConfig::new()
            .server(&format!("allowed_networks = [{allowed}]"))
            .listen_for("198.18.0.1:5353", "ks2")
            .upstream("{upstream}")
            .list("gambling", "gambling.txt", "gambling")
            .blocklist("ks2", &["gambling"], "")
            .toml();
        expand(&text, &upstream, dir.path())
    };
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(&config_path, config("")).expect("config");
    let child = Process(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &namespace.0,
                env!("CARGO_BIN_EXE_lollipop"),
            ])
            .args(["--config", &config_path.display().to_string(), "run"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("lollipop starts"),
    );
    let blocked = |source: &str| {
        dig_in(&namespace.0, source, "198.18.0.1", "www.bet365.com").contains("0.0.0.0")
    };
    let refused = |source: &str| {
        dig_in(&namespace.0, source, "198.18.0.1", "www.bet365.com").contains("status: REFUSED")
    };
    wait_until("the first answer (loopback is always served)", || {
        blocked("127.0.0.1")
    });
    // Asked again from loopback, the answer is kept for repeats of the
    // same bytes, listener and profile; a client outside the allowed
    // networks asking exactly that is still refused: the allowed
    // networks come before the repeated-question stage.
    assert!(blocked("127.0.0.1"));
    assert!(refused("198.18.0.2"), "not an allowed network yet");

    let hangup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &child.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    std::fs::write(&config_path, config("\"198.18.0.2/32\"")).expect("config");
    hangup();
    wait_until("198.18.0.2 answered after the reload", || {
        blocked("198.18.0.2")
    });

    std::fs::write(&config_path, config("")).expect("config");
    hangup();
    wait_until("198.18.0.2 refused after the reload", || {
        refused("198.18.0.2")
    });
}

#[test]
fn config_check_says_which_changes_wait_for_a_restart() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("gambling.txt"), "bet365.com\n").expect("list");
    std::fs::write(dir.path().join("video.txt"), "youtube.com\n").expect("list");
    let (port, new_port) = (free_port(), free_port());
    let config = |listen: &[u16], categories: &[&str]| {
        let mut text = TestConfig::new();
        for port in listen {
            text = text.listen_for(&format!("127.0.0.1:{port}"), "ks2");
        }
        let text = text
            .upstream("{upstream}")
            .list("gambling", "gambling.txt", "gambling")
            .list("video", "video.txt", "video")
            .blocklist("ks2", categories, "")
            .toml();
        expand(&text, &upstream, dir.path())
    };
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(&config_path, config(&[port], &["gambling"])).expect("config");
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args([
                "--config",
                &config_path.display().to_string(),
                "config",
                "check",
            ])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(check().contains("not known"), "never started: {}", check());

    let _child = Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args(["--config", &config_path.display().to_string(), "run"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("lollipop starts"),
    );
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until("the first answer", || {
        let q = query_message("www.example.net.", RecordType::A, Ask::default());
        exchange_udp_within(
            server,
            &q.to_bytes().expect("encode"),
            Duration::from_millis(200),
        )
        .is_some()
    });
    // The file is saved with a new address and a profile change; the check
    // runs before the reload it causes, as a technician would.
    std::fs::write(
        &config_path,
        config(&[port, new_port], &["gambling", "video"]),
    )
    .expect("config");
    let out = check();
    assert!(out.contains("applied on reload: profiles.ks2"), "{out}");
    assert!(out.contains("Needs a restart to take effect"), "{out}");
    assert!(
        out.contains(&format!("a new address 127.0.0.1:{new_port}")),
        "{out}"
    );
}

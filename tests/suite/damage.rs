//! Storage damage end to end: junk written over the block log while Lollipop
//! runs (an SD card after a power cut) never stops DNS; the damaged file is
//! set aside, a fresh log takes new blocks, and the head teacher is told on
//! the dashboard and by an alert. When the file cannot even be moved (a
//! read-only disk), DNS still answers and the page and /metrics say so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

/// The web school with its alerts going to `hook`.
fn school_alerting(hook: &TestHttp) -> WebSchool {
    let url = hook.url("/hook");
    WebSchool::start_with(move |config| {
        config.alerts.webhook = Some(lollipop::alerts::WebhookConfig {
            url,
            token_file: None,
        });
    })
}

fn junk_over(path: &Path) {
    let junk: Vec<u8> = (0..64 * 1024).map(|i: u32| (i * 7 + 13) as u8).collect();
    std::fs::write(path, junk).expect("junk written over the block log");
}

fn damaged_copies(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data)
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.to_string_lossy();
            name.contains("lollipop.db.damaged-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect()
}

/// Asks `rounds` blocked and allowed names; every one must be answered, and
/// filtered as before.
fn keep_asking(server: std::net::SocketAddr, rounds: usize) {
    for i in 0..rounds {
        assert_eq!(
            answers(&a(server, &format!("n{i}.bet365.com."))),
            ["A 0.0.0.0"],
            "blocked names stay blocked"
        );
        assert_eq!(answers(&a(server, "www.example.com.")), ["A 192.0.2.10"]);
    }
}

fn log_command(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(dir.join("lollipop.toml"))
        .arg("log")
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
fn junk_over_the_block_log_while_running_is_set_aside_and_the_head_is_told() {
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let school = school_alerting(&hook);
    let head = school.signed_in("head", Role::Admin);
    let data = school.lollipop.dir().join("data");
    keep_asking(school.ks2(), 1);
    school.lollipop.flush_log();

    junk_over(&data.join("lollipop.db"));
    keep_asking(school.ks2(), 50);
    school.lollipop.flush_log();
    assert_eq!(
        answers(&a(school.ks2(), "after.bet365.com.")),
        ["A 0.0.0.0"]
    );
    school.lollipop.flush_log();

    let kept = damaged_copies(&data);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let log = log_command(school.lollipop.dir());
    assert!(
        log.contains("after.bet365.com"),
        "the fresh log takes new blocks: {log}"
    );
    assert_eq!(school.lollipop.log_stats().blocked_dropped, 0);

    let page = head.get("/");
    assert_eq!(page.status, 200);
    let kept_name = kept[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let kept_name = kept_name.unwrap_or_default();
    for words in [
        "The block log was damaged at",
        &format!("has been set aside as {kept_name}"),
        "a fresh log was started. Lookups were filtered throughout.",
    ] {
        assert!(page.body.contains(words), "{words:?} not on the dashboard");
    }
    let metrics = head.get("/metrics").body;
    assert!(
        metrics.contains("lollipop_block_log_healthy 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lollipop_block_log_set_aside_total 1"),
        "{metrics}"
    );

    let notice = || {
        hook.alerts()
            .iter()
            .map(|r| r.body_text())
            .find(|body| body.contains("\"kind\":\"system\""))
    };
    wait_until("the webhook notice", || notice().is_some());
    let body = notice().unwrap_or_default();
    assert!(body.contains("Hilltop Primary"), "{body}");
    assert!(body.contains(&kept_name), "{body}");
}

/// A read-only bind mount of a directory over itself, undone when dropped.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn mount(dir: &Path) -> Option<ReadOnly> {
        let run = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["--bind"]) {
            eprintln!("skipped: a bind mount needs root");
            return None;
        }
        let guard = ReadOnly(dir.to_path_buf());
        let remounted = Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(remounted, "remount read-only failed");
        Some(guard)
    }
}

impl ReadOnly {
    /// Lets the directory be written again (the mount stays until drop:
    /// the running service holds files open through it).
    fn writable(&self) {
        let remounted = Command::new("mount")
            .args(["-o", "remount,rw,bind"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(remounted, "remount read-write failed");
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_damaged_block_log_on_a_read_only_disk_never_stops_dns_and_says_so() {
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let school = school_alerting(&hook);
    let head = school.signed_in("head", Role::Admin);
    let data = school.lollipop.dir().join("data");
    keep_asking(school.ks2(), 1);
    school.lollipop.flush_log();

    junk_over(&data.join("lollipop.db"));
    let Some(read_only) = ReadOnly::mount(&data) else {
        return;
    };
    keep_asking(school.ks2(), 50);
    wait_until("the degraded block log", || {
        school.lollipop.log_stats().degraded()
    });
    keep_asking(school.ks2(), 10);

    let page = head.get("/").body;
    assert!(
        page.contains("could not be set aside, so blocked sites are not being saved"),
        "not on the dashboard"
    );
    let metrics = head.get("/metrics").body;
    assert!(
        metrics.contains("lollipop_block_log_healthy 0"),
        "{metrics}"
    );
    wait_until("the webhook notice", || {
        hook.requests()
            .iter()
            .any(|r| r.body_text().contains("blocks are not being saved"))
    });
    assert!(damaged_copies(&data).is_empty());

    // Once the disk can be written again the file is set aside and the
    // blocks held in memory are saved.
    read_only.writable();
    wait_until("recovery", || {
        let stats = school.lollipop.log_stats();
        !stats.degraded()
    });
    school.lollipop.flush_log();
    assert_eq!(damaged_copies(&data).len(), 1);
    assert!(log_command(school.lollipop.dir()).contains("n49.bet365.com"));
}

/// The real binary on `dir`'s config, its log going to `log`, once `dns`
/// answers.
fn run_binary(dir: &Path, dns: std::net::SocketAddr, log: &Path) -> Process {
    let out = std::fs::File::create(log).expect("log file");
    let child = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .arg("--config")
            .arg(dir.join("lollipop.toml"))
            .arg("run")
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("lollipop starts"),
    );
    wait_until("the first answer", || {
        let q = query_message("www.example.net.", RecordType::A, Ask::default());
        exchange_udp_within(
            dns,
            &q.to_bytes().expect("encode"),
            Duration::from_millis(200),
        )
        .is_some()
    });
    child
}

/// `lollipop passwd NAME --role admin`, the password on standard input.
fn passwd(dir: &Path, name: &str, password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(dir.join("lollipop.toml"))
        .args(["passwd", name, "--role", "admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("passwd runs");
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").expect("password written");
    }
    let out = child.wait_with_output().expect("passwd ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dig_a(server: std::net::SocketAddr, name: &str) -> String {
    dig(server, &[name, "A", "+short"]).trim().to_string()
}

use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;

#[test]
fn a_damaged_admin_store_keeps_deny_entries_drops_allows_mints_no_link_and_passwd_lets_in() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in SCHOOL_LISTS {
        std::fs::write(dir.path().join(name), content).expect("list");
    }
    let (ks2, staff, web) = (free_port(), free_port(), free_port());
    let config = school(&format!("listen = [\"127.0.0.1:{web}\"]"))
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{ks2}"), 1)
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{staff}"), 1);
    let config = expand(&config, &upstream, dir.path());
    std::fs::write(dir.path().join("lollipop.toml"), config).expect("config");
    let ks2: std::net::SocketAddr = ([127, 0, 0, 1], ks2).into();
    let web: std::net::SocketAddr = ([127, 0, 0, 1], web).into();

    let first = run_binary(dir.path(), ks2, &dir.path().join("first.log"));
    passwd(dir.path(), "tech", "tech has a long password");
    let admin = WebClient::new(web);
    assert_eq!(
        admin.sign_in("tech", "tech has a long password").status,
        303
    );
    for (domain, action) in [("news.example.org", "deny"), ("www.bet365.com", "allow")] {
        let reply = admin.submit(
            "/rules",
            "/rules",
            &[
                ("profile", "ks2"),
                ("domain", domain),
                ("action", action),
                ("reason", "decided by the head"),
            ],
        );
        assert_eq!(reply.status, 303, "{}", reply.body);
    }
    assert_eq!(dig_a(ks2, "news.example.org"), "0.0.0.0");
    assert_ne!(dig_a(ks2, "www.bet365.com"), "0.0.0.0");
    drop(first);

    let data = dir.path().join("data");
    junk_over(&data.join("admin.db"));
    let log = dir.path().join("second.log");
    let _second = run_binary(dir.path(), ks2, &log);
    assert_eq!(
        dig_a(ks2, "news.example.org"),
        "0.0.0.0",
        "the deny entry is kept"
    );
    assert_eq!(
        dig_a(ks2, "www.bet365.com"),
        "0.0.0.0",
        "the allow entry is not"
    );
    let kept: Vec<_> = std::fs::read_dir(&data)
        .expect("data")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("admin.db.damaged-")
        })
        .collect();
    assert!(!kept.is_empty(), "the damaged store is kept");
    let output = std::fs::read_to_string(&log).expect("log");
    assert!(
        !output.contains("/setup?token="),
        "a setup link was minted: {output}"
    );
    assert!(output.contains("lollipop passwd"), "{output}");

    assert!(passwd(dir.path(), "head", "head has a long password").contains("created"));
    let head = WebClient::new(web);
    assert_eq!(head.sign_in("head", "head has a long password").status, 303);
    let page = head.get("/").body;
    assert!(
        page.contains(
            "Sites blocked on this page are still blocked; sites allowed on it and unlocks are not"
        ),
        "the dashboard does not say so"
    );
    let audit = lollipop::journal::JournalReader::open(&data.join("lollipop.db"))
        .expect("log")
        .audit(0, i64::MAX, 100)
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|row| row.action == "admin store set aside"),
        "{audit:?}"
    );
}

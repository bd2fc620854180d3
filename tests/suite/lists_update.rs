//! Lists from the network, end to end with the real binary and an HTTP
//! server on loopback: `lists update`, the last good copy kept through a bad
//! download, mirrors, `lists status`, licensed feeds kept hidden, services by
//! name, and `run` fetching and swapping in a due list by itself.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn lollipop(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("lollipop.toml"))
        .args(args)
        .env("LOLLIPOP_LOG", "warn")
        .output()
        .expect("lollipop runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn numbered(prefix: &str, count: usize) -> String {
    (1..=count)
        .map(|i| format!("{prefix}{i}.example\n"))
        .collect()
}

fn school(lists: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = TestConfig::new()
        .server("data_dir = \"data\"")
        .server(&format!(
            "lists_dir = \"{}/lists\"",
            env!("CARGO_MANIFEST_DIR")
        ))
        .listen("127.0.0.1:0")
        .upstream("127.0.0.1:9")
        .table("blocking", "locked_categories = [\"iwf\"]")
        .section(extra)
        .section(lists)
        .blocklist("ks2", &["gambling"], "block_services = [\"tiktok\"]")
        .toml();
    std::fs::write(dir.path().join("lollipop.toml"), config).expect("config");
    dir
}

fn check(dir: &Path, name: &str) -> String {
    let out = lollipop(dir, &["check", name, "--client", "192.168.1.20"]);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

#[test]
fn update_uses_mirrors_and_keeps_the_last_good_copy_through_a_bad_download() {
    let http = TestHttp::start();
    http.serve("/gambling.txt", 200, &numbered("bet", 20));
    let dir = school(
        &format!(
            "[[lists]]\nname = \"remote-gambling\"\nurls = [\"{}\", \"{}\"]\ncategory = \"gambling\"\n",
            http.url("/gambling.txt"),
            http.url("/mirror/gambling.txt")
        ),
        "",
    );
    // Before any download the list is simply not in use yet.
    assert!(check(dir.path(), "bet7.example").contains("decision: allowed"));

    let out = lollipop(dir.path(), &["lists", "update"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("remote-gambling: updated, 20 entries"),
        "{}",
        text(&out)
    );
    let out = check(dir.path(), "www.bet7.example");
    assert!(out.contains("decision: blocked"), "{out}");
    assert!(out.contains("list:     remote-gambling"), "{out}");

    // A list shrunk to 3 lines is refused; the 20 entries stay in force.
    http.serve("/gambling.txt", 200, &numbered("bet", 3));
    let out = lollipop(dir.path(), &["lists", "update"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("FAILED, keeping the last good copy"),
        "{}",
        text(&out)
    );
    assert!(check(dir.path(), "bet17.example").contains("decision: blocked"));
    let status = text(&lollipop(dir.path(), &["lists", "status"]));
    assert!(
        status.contains("remote-gambling (download, category gambling)"),
        "{status}"
    );
    assert!(status.contains("entries: 20"), "{status}");
    assert!(status.contains("last error:"), "{status}");

    // The main URL gone: the mirror's copy is used.
    http.serve("/gambling.txt", 404, "gone");
    http.serve("/mirror/gambling.txt", 200, &numbered("casino", 25));
    let out = lollipop(dir.path(), &["lists", "update"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("/mirror/gambling.txt"),
        "{}",
        text(&out)
    );
    assert!(check(dir.path(), "casino25.example").contains("decision: blocked"));
    assert!(check(dir.path(), "bet17.example").contains("decision: allowed"));

    // Everything down: still the mirror's 25 entries.
    http.serve("/mirror/gambling.txt", 500, "oops");
    let out = lollipop(dir.path(), &["lists", "update"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(check(dir.path(), "casino1.example").contains("decision: blocked"));
}

#[test]
fn licensed_feeds_block_for_everyone_and_never_show_their_entries() {
    let http = TestHttp::start();
    http.serve(
        "/feed.txt",
        200,
        "secret-abuse.example\nsecret-two.example\nnot a domain!\n",
    );
    let dir = school(
        &format!(
            "[[lists]]\nname = \"iwf-feed\"\nurls = [\"{}\"]\ncategory = \"iwf\"\nlicensed = true\ncredential_file = \"iwf.credential\"\nmin_parse_ratio = 0.5\n",
            http.url("/feed.txt")
        ),
        "",
    );
    std::fs::write(dir.path().join("iwf.credential"), "Bearer token-123\n").expect("credential");
    let out = lollipop(dir.path(), &["lists", "update"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        !report.contains("not a domain!"),
        "no quoted lines: {report}"
    );
    assert!(!report.contains("token-123"), "{report}");

    let out = check(dir.path(), "www.secret-abuse.example");
    assert!(out.contains("locked category"), "{out}");
    assert!(out.contains("category: iwf"), "{out}");
    assert!(out.contains("rule:     withheld"), "{out}");
    assert!(!out.contains("rule:     secret-abuse.example"), "{out}");

    // Licensed without a locked category, or without a credential: refused.
    let bad = school(
        &format!(
            "[[lists]]\nname = \"feed\"\nurls = [\"{}\"]\ncategory = \"gambling\"\nlicensed = true\ncredential_file = \"x\"\n",
            http.url("/feed.txt")
        ),
        "",
    );
    let out = lollipop(bad.path(), &["config", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("lists[0].category"), "{}", text(&out));
    assert!(text(&out).contains("must be locked"), "{}", text(&out));
}

#[test]
fn services_are_blocked_by_name_and_catalogue_sources_resolve() {
    let dir = school(
        "[[lists]]\nname = \"hagezi-gambling\"\ncatalogue = \"hagezi-gambling\"\n",
        "",
    );
    let config_path = dir.path().join("lollipop.toml");
    let out = check(dir.path(), "www.tiktok.com");
    assert!(out.contains("decision: blocked"), "{out}");
    assert!(out.contains("category: service-tiktok"), "{out}");
    let status = text(&lollipop(dir.path(), &["lists", "status"]));
    assert!(
        status.contains("hagezi-gambling (download, category gambling)"),
        "{status}"
    );
    assert!(status.contains("last download: never"), "{status}");
    assert!(status.contains("licence:"), "{status}");

    std::fs::write(
        &config_path,
        std::fs::read_to_string(&config_path)
            .expect("read")
            .replace(
                "block_services = [\"tiktok\"]",
                "block_services = [\"tiktokk\"]",
            ),
    )
    .expect("write");
    let out = lollipop(dir.path(), &["config", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no service named 'tiktokk'"),
        "{}",
        text(&out)
    );
}

#[test]
fn run_downloads_due_lists_and_swaps_them_in() {
    let http = TestHttp::start();
    http.serve("/gambling.txt", 200, &numbered("bet", 10));
    let upstream = TestUpstream::start();
    let dir = school(
        &format!(
            "[[lists]]\nname = \"remote\"\nurls = [\"{}\"]\ncategory = \"gambling\"\n",
            http.url("/gambling.txt")
        ),
        "[updates]\nenabled = true\ncheck_every_secs = 1\n",
    );
    let config_path = dir.path().join("lollipop.toml");
    let config = std::fs::read_to_string(&config_path)
        .expect("read")
        .replace("127.0.0.1:9", &upstream.plain.to_string());
    std::fs::write(&config_path, config).expect("write");
    let port = free_port();
    let config = std::fs::read_to_string(&config_path)
        .expect("read")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&config_path, config).expect("write");

    let _child = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts"),
    );
    let server: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = query_message(
            "bet3.example.",
            hickory_server::proto::rr::RecordType::A,
            Ask::default(),
        );
        use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
        let reply = exchange_udp_within(
            server,
            &q.to_bytes().expect("encode"),
            Duration::from_millis(300),
        )
        .and_then(|r| hickory_server::proto::op::Message::from_bytes(&r).ok());
        if reply.is_some_and(|m| answers(&m) == ["A 0.0.0.0"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the downloaded list never came into force"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!http.requests().is_empty());
}

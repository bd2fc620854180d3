//! The `lollipop` command as a technician uses it: config check, lists
//! compile, check a name, and run on the embedded default.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support;

fn lollipop(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .current_dir(dir)
        .args(args)
        .env_remove("LOLLIPOP_CONFIG")
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

const CONFIG: &str = r#"
[server]
data_dir = "data"
default_profile = "ks2"

[[listen]]
address = "127.0.0.1:0"

[[listen]]
address = "10.0.10.1:53"
profile = "under5"

[[clients]]
network = "10.0.30.0/24"
profile = "staff"

[[upstream]]
address = "127.0.0.1:9"
protocol = "udp"

[[lists]]
name = "school-gambling"
path = "lists/gambling.txt"
category = "gambling"

[[lists]]
name = "garden"
path = "lists/garden.hosts"
format = "hosts"
category = "under5-allow"

[profiles.under5]
mode = "allowlist"
allow_categories = ["under5-allow"]

[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]

[profiles.staff]
mode = "blocklist"
"#;

fn school_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("lists")).expect("mkdir");
    std::fs::write(
        dir.path().join("lists/gambling.txt"),
        "\u{feff}# gambling\r\nbet365.com\r\nWilliamHill.com.\r\nnot a domain!\r\n",
    )
    .expect("list");
    std::fs::write(
        dir.path().join("lists/garden.hosts"),
        "127.0.0.1 localhost\n0.0.0.0 www.cbeebies.com cbeebies.com\n",
    )
    .expect("list");
    std::fs::write(dir.path().join("lollipop.toml"), CONFIG).expect("config");
    dir
}

#[test]
fn config_check_accepts_a_good_file_and_names_the_line_and_key_of_a_bad_one() {
    let dir = school_dir();
    let out = lollipop(
        dir.path(),
        &["--config", "lollipop.toml", "config", "check"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OK (3 profiles"), "{}", text(&out));
    // A valid file can still leave safeguards off, and says which: no
    // IWF feed, no alert channel, an alerting category with no list.
    for gap in [
        "NOT PROTECTED: Not protected against the IWF list",
        "NOT PROTECTED: Safeguarding alerts are not set up",
        "NOT PROTECTED: The 'self-harm' category is meant to alert the safeguarding lead, but no list supplies it",
    ] {
        assert!(text(&out).contains(gap), "{gap}: {}", text(&out));
    }
    // The gambling list has entries once compiled: its category is no gap.
    let compiled = lollipop(
        dir.path(),
        &["--config", "lollipop.toml", "lists", "compile"],
    );
    assert!(compiled.status.success(), "{}", text(&compiled));
    let out = lollipop(
        dir.path(),
        &["--config", "lollipop.toml", "config", "check"],
    );
    assert!(
        !text(&out).contains("'gambling' category"),
        "{}",
        text(&out)
    );
    let empty = CONFIG.replace(
        "block_categories = [\"gambling\"]",
        "block_categories = [\"gambling\", \"games\"]",
    );
    std::fs::write(dir.path().join("empty.toml"), &empty).expect("write");
    let out = lollipop(dir.path(), &["--config", "empty.toml", "config", "check"]);
    assert!(
        text(&out)
            .contains("check: The 'games' category is blocked for ks2, but no list supplies it"),
        "{}",
        text(&out)
    );

    let typo = CONFIG.replace("profile = \"under5\"", "profile = \"under-5\"");
    std::fs::write(dir.path().join("typo.toml"), &typo).expect("write");
    let out = lollipop(dir.path(), &["--config", "typo.toml", "config", "check"]);
    assert!(!out.status.success());
    let message = text(&out);
    let line = typo
        .lines()
        .position(|l| l.contains("under-5"))
        .expect("line")
        + 1;
    assert!(message.contains(&format!("typo.toml:{line}:")), "{message}");
    assert!(message.contains("listen[1].profile"), "{message}");
    assert!(message.contains("no profile named 'under-5'"), "{message}");
    assert!(!message.contains("panicked"), "{message}");

    // The same typo stops `run` with the same message, before binding.
    let out = lollipop(dir.path(), &["--config", "typo.toml", "run"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("listen[1].profile"), "{}", text(&out));

    // Broken TOML.
    std::fs::write(dir.path().join("broken.toml"), "[server\n").expect("write");
    let out = lollipop(dir.path(), &["--config", "broken.toml", "config", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("broken.toml:1:"), "{}", text(&out));

    // A missing file.
    let out = lollipop(dir.path(), &["--config", "nope.toml", "config", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("nope.toml: cannot read the config file"),
        "{}",
        text(&out)
    );
}

#[test]
fn lists_compile_reports_counts_and_bad_lines() {
    let dir = school_dir();
    let out = lollipop(
        dir.path(),
        &["--config", "lollipop.toml", "lists", "compile"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("school-gambling"), "{report}");
    assert!(
        report.contains("not a domain!"),
        "bad line sampled: {report}"
    );
    assert!(dir.path().join("data/lists.lollipop").exists());

    // A missing list file is an error that names it, and keeps the last good set.
    std::fs::remove_file(dir.path().join("lists/gambling.txt")).expect("rm");
    let out = lollipop(
        dir.path(),
        &["--config", "lollipop.toml", "lists", "compile"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("gambling.txt"), "{}", text(&out));
    assert!(
        dir.path().join("data/lists.lollipop").exists(),
        "last good set kept"
    );
}

#[test]
fn check_explains_the_decision_for_a_client() {
    let dir = school_dir();
    let check = |name: &str, client: &str, extra: &[&str]| {
        let mut args = vec![
            "--config",
            "lollipop.toml",
            "check",
            name,
            "--client",
            client,
        ];
        args.extend_from_slice(extra);
        let out = lollipop(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let out = check("www.BET365.com", "192.168.1.20", &[]);
    assert!(out.contains("profile:  ks2"), "{out}");
    assert!(out.contains("decision: blocked"), "{out}");
    assert!(out.contains("category: gambling"), "{out}");
    assert!(out.contains("list:     school-gambling"), "{out}");
    assert!(out.contains("rule:     bet365.com"), "{out}");

    let out = check("williamhill.com", "10.0.30.7", &[]);
    assert!(out.contains("profile:  staff"), "CIDR rule: {out}");
    assert!(out.contains("decision: allowed"), "{out}");

    let out = check(
        "www.cbeebies.com",
        "10.0.10.50",
        &["--listener", "10.0.10.1:53"],
    );
    assert!(out.contains("profile:  under5"), "{out}");
    assert!(out.contains("decision: allowed"), "{out}");
    assert!(out.contains("list:     garden"), "{out}");
    let out = check(
        "www.example.com",
        "10.0.10.50",
        &["--listener", "10.0.10.1:53"],
    );
    assert!(out.contains("decision: blocked"), "{out}");
    assert!(out.contains("walled garden"), "{out}");

    let out = check("www.google.co.uk", "192.168.1.20", &[]);
    assert!(out.contains("forcesafesearch.google.com"), "{out}");

    // A staff unlock in force for one room is honoured for that room only,
    // as DNS honours it.
    let admin =
        lollipop::admin::AdminStore::open(&dir.path().join("data/admin.db")).expect("admin store");
    admin
        .add_override(
            &lollipop::policy::rules::OverrideTarget::Domain("bet365.com".into()),
            &lollipop::policy::rules::OverrideScope::Network(
                "192.168.1.0/24".parse().expect("network"),
            ),
            "maths lesson on probability",
            "ms.khan",
            lollipop::clock::now_unix_ms() + 3_600_000,
        )
        .expect("unlock");
    let out = check("www.bet365.com", "192.168.1.20", &[]);
    assert!(out.contains("unlocked: staff unlock #"), "{out}");
    let out = check("www.bet365.com", "192.168.2.20", &[]);
    assert!(!out.contains("unlocked"), "{out}");
    assert!(out.contains("decision: blocked"), "{out}");

    let out = lollipop(
        dir.path(),
        &[
            "--config",
            "lollipop.toml",
            "check",
            "bad..name",
            "--client",
            "10.0.0.1",
        ],
    );
    assert!(!out.status.success());
    let wrong = lollipop(
        dir.path(),
        &[
            "--config",
            "lollipop.toml",
            "check",
            "www.bet365.com",
            "--client",
            "10.0.0.1",
            "--listener",
            "10.9.9.9:53",
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("no listener is 10.9.9.9:53 (the listeners are"),
        "{}",
        text(&wrong)
    );
    assert!(
        text(&out).contains("'bad..name' is not a website name"),
        "{}",
        text(&out)
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn runs_on_the_embedded_default_from_the_repository() {
    // The README's run command: no config file, port 5353 on loopback.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .current_dir(repo_root())
        .arg("run")
        .env_remove("LOLLIPOP_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let server: std::net::SocketAddr = "127.0.0.1:5353".parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let question = support::query_message(
            "use-application-dns.net.",
            hickory_server::proto::rr::RecordType::A,
            support::Ask::default(),
        );
        use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
        let bytes = question.to_bytes().expect("encode");
        if let Some(reply) = support::exchange_udp(server, &bytes) {
            break hickory_server::proto::op::Message::from_bytes(&reply).expect("decodes");
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the embedded default did not answer on 127.0.0.1:5353: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        reply.metadata.response_code,
        hickory_server::proto::op::ResponseCode::NXDomain
    );
    // A sample list entry is blocked for the default profile, with no upstream needed.
    let reply = support::a(server, "dns.google.");
    assert_eq!(support::answers(&reply), ["A 0.0.0.0"]);
    // The status page is on 127.0.0.1:8080, and with no administrator yet
    // the log carries a one-time setup link.
    let page = support::web::WebClient::new("127.0.0.1:8080".parse().expect("addr")).get("/login");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in"), "{}", page.body);
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&output.stderr);
    let has_admin =
        lollipop::admin::AdminStore::open(&repo_root().join("target/lollipop/admin.db"))
            .and_then(|store| store.has_admin())
            .expect("admin db");
    assert!(
        has_admin || log.contains("http://127.0.0.1:8080/setup?token="),
        "{log}"
    );
}

#[test]
fn setup_link_and_passwd_manage_the_status_page_users_from_the_console() {
    let dir = school_dir();
    let out = lollipop(dir.path(), &["--config", "lollipop.toml", "setup-link"]);
    assert!(out.status.success(), "{}", text(&out));
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let token = link.split("/setup?token=").nth(1).expect("a setup link");
    let store = lollipop::admin::AdminStore::open(&dir.path().join("data/admin.db")).expect("db");
    assert!(store.setup_token_valid(token).expect("valid"));

    // A new user needs a role; the password comes from standard input.
    let passwd = |args: &[&str], password: &str| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .current_dir(dir.path())
            .args(["--config", "lollipop.toml", "passwd"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write");
        child.wait_with_output().expect("output")
    };
    let out = passwd(&["head"], "a long password");
    assert!(!out.status.success());
    assert!(text(&out).contains("give --role"), "{}", text(&out));
    let out = passwd(&["head", "--role", "viewer"], "a long password");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("user head created (viewer)"));
    assert!(
        store
            .check_login("head", "a long password")
            .expect("check")
            .is_some()
    );
    let out = passwd(&["head"], "short");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("at least 10 characters"),
        "{}",
        text(&out)
    );
    let out = passwd(&["head", "--role", "boss"], "a long password");
    assert!(text(&out).contains("not a role"), "{}", text(&out));

    // Once an admin exists, the old link is dead and no new one is made.
    let out = passwd(&["tech", "--role", "admin"], "a long admin password");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!store.setup_token_valid(token).expect("valid"));
    let out = lollipop(dir.path(), &["--config", "lollipop.toml", "setup-link"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("an administrator already exists"),
        "{}",
        text(&out)
    );
}

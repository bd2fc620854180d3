//! An HA pair, as two real `lollipop` processes on loopback: an allow
//! entry and a room's unlock made on the primary's page are answered the
//! same by the secondary (as `dig` sees it); with the primary killed the
//! secondary answers with the last state, also after its own restart;
//! with the primary back and a further change, they converge, and the
//! primary's report counts the secondary's blocks. The
//! secondary's page refuses changes and setup links, and a secondary with
//! the wrong pair key is refused and follows nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::web::WebClient;
use crate::support::*;

const PAIR_KEY: &str = "6c6f6c6c69706f702070616972206b657920666f722074657374696e67212121";
const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const PASSWORD: &str = "head has a long password";

/// One box: its directory (config, lists, pair key, data) and ports.
struct Appliance {
    dir: tempfile::TempDir,
    dns: SocketAddr,
    web: SocketAddr,
}

impl Appliance {
    /// A box with DNS and its page on fresh loopback ports, the school's
    /// lists, the pair key `key`, and `config` (given the ports) as its file.
    fn new(key: &str, config: impl FnOnce(&Appliance) -> String) -> Appliance {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("lists")).expect("lists dir");
        std::fs::write(dir.path().join("lists/gambling.txt"), "bet365.com\n").expect("list");
        std::fs::write(dir.path().join("lists/games.txt"), "cbeebies.com\n").expect("list");
        std::fs::write(dir.path().join("pair.key"), format!("{key}\n")).expect("key");
        let ports = (free_port(), free_port());
        let lollipop = Appliance {
            dir,
            dns: SocketAddr::from(([127, 0, 0, 1], ports.0)),
            web: SocketAddr::from(([127, 0, 0, 1], ports.1)),
        };
        let text = config(&lollipop);
        std::fs::write(lollipop.config(), text).expect("config");
        lollipop
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("lollipop.toml")
    }

    /// Runs the real binary on this box's config, its log in `log.txt`.
    fn start(&self) -> Process {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log.txt"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .current_dir(self.dir.path())
            .args(["--config", "lollipop.toml", "run"])
            .env_remove("LOLLIPOP_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("lollipop starts");
        let process = Process(child);
        wait_until("the box answers DNS", || {
            short(self.dns, "www.example.com") == "192.0.2.10"
        });
        wait_until("the box's page answers", || {
            std::net::TcpStream::connect(self.web).is_ok()
        });
        process
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }
}

/// The school's settings both boxes' files hold (each box's own copy; the
/// secondary's is replaced by the primary's once it follows).
fn school(lollipop: &Appliance, block: &str, web: &str, cluster: &str) -> String {
    format!(
        r#"
[server]
data_dir = "data"
default_profile = "ks2"

[[listen]]
address = "{dns}"
profile = "ks2"

[[upstream]]
address = "{{upstream}}"
protocol = "udp"

[resolver]
timeout_ms = 1500
attempts = 1

[[lists]]
name = "school-gambling"
path = "lists/gambling.txt"
category = "gambling"

[[lists]]
name = "school-games"
path = "lists/games.txt"
category = "games"

[log]
time_zone = "UTC"

[web]
listen = ["{web}"]
{web_keys}

[cluster]
pair_key_file = "pair.key"
{cluster}

[profiles.ks2]
mode = "blocklist"
block_categories = [{block}]
safe_search = false
youtube = "off"
"#,
        dns = lollipop.dns,
        web = lollipop.web,
        web_keys = web,
    )
}

fn short(server: SocketAddr, name: &str) -> String {
    dig(server, &[name, "A", "+short"]).trim().to_string()
}

/// Polls `dig` until `server` answers `name` with `want`, failing after
/// `limit`; returns how long it took.
fn answered_within(server: SocketAddr, name: &str, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = short(server, name);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{server} still answers {name} with '{got}', not '{want}', after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The primary's page, trusting its self-signed certificate.
fn primary_page(primary: &Appliance) -> WebClient {
    let pem = std::fs::read(primary.dir.path().join("data/web-cert.pem")).expect("certificate");
    WebClient::with_tls_root(
        format!("https://localhost:{}", primary.web.port()),
        Some(&pem),
    )
}

fn make_admin(config: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(config)
        .args(["passwd", "head", "--role", "admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lollipop runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    let output = child.wait_with_output().expect("passwd ends");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The pin `lollipop cluster pair` prints for the secondary's config.
fn pin_of(primary: &Appliance) -> String {
    let paired = lollipop_cli(&primary.config(), &["cluster", "pair"]);
    paired
        .lines()
        .find_map(|line| line.strip_prefix("primary_certificate_sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("`cluster pair` prints the pin:\n{paired}"))
        .to_string()
}

/// The primary (blocking gambling and games) on `upstream`.
fn primary_on(upstream: &TestUpstream) -> Appliance {
    Appliance::new(PAIR_KEY, |b| {
        school(
            b,
            "\"gambling\", \"games\"",
            "tls = true",
            "role = \"primary\"",
        )
        .replace("{upstream}", &upstream.plain.to_string())
    })
}

/// A secondary of `primary` with the pair key `key`, whose own file
/// blocks less than the primary (gambling only).
fn secondary_of(primary: &Appliance, key: &str, upstream: &TestUpstream) -> Appliance {
    let pin = pin_of(primary);
    Appliance::new(key, |b| {
        school(
            b,
            "\"gambling\"",
            "",
            &format!(
                "role = \"secondary\"\nprimary = \"https://127.0.0.1:{}\"\nprimary_certificate_sha256 = \"{pin}\"\npoll_seconds = 1\nname = \"office-secondary\"",
                primary.web.port()
            ),
        )
        .replace("{upstream}", &upstream.plain.to_string())
    })
}

fn status(page: &WebClient) -> serde_json::Value {
    let reply = page.get("/api/v1/status");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("status JSON")
}

#[test]
fn the_secondary_follows_the_primary_keeps_its_last_state_without_it_and_converges_again() {
    let upstream = TestUpstream::start();
    let primary = primary_on(&upstream);
    let primary_process = primary.start();
    let made = make_admin(&primary.config());
    assert!(made.contains("created"), "{made}");
    // The secondary's own file blocks less: it follows the primary's.
    let secondary = secondary_of(&primary, PAIR_KEY, &upstream);
    let check = lollipop_cli(&secondary.config(), &["config", "check"]);
    assert!(!check.contains("cluster."), "{check}");
    let mut secondary_process = secondary.start();
    answered_within(
        secondary.dns,
        "www.cbeebies.com",
        "0.0.0.0",
        Duration::from_secs(20),
    );
    assert_eq!(short(secondary.dns, "www.bet365.com"), "0.0.0.0");

    // The head allows a site and unlocks another for the room, on the
    // primary's page, as anyone would.
    let page = primary_page(&primary);
    assert_eq!(page.sign_in("head", PASSWORD).status, 303);
    let added = page.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "bet365.com"),
            ("action", "allow"),
            ("reason", "Year 6 maths: probability"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let room = format!("listener:{}", primary.dns);
    let unlocked = page.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "www.cbeebies.com"),
            ("scope", "room"),
            ("room", &room),
            ("duration", "hour"),
            ("reason", "Reception story time"),
        ],
    );
    assert_eq!(unlocked.status, 303, "{}", unlocked.body);
    assert_eq!(short(primary.dns, "www.bet365.com"), "192.0.2.14");
    assert_eq!(short(primary.dns, "www.cbeebies.com"), "192.0.2.12");
    let allow_took = answered_within(
        secondary.dns,
        "www.bet365.com",
        "192.0.2.14",
        Duration::from_secs(5),
    );
    let unlock_took = answered_within(
        secondary.dns,
        "www.cbeebies.com",
        "192.0.2.12",
        Duration::from_secs(5),
    );
    eprintln!(
        "the secondary answered the allow entry after {allow_took:?}, the unlock {unlock_took:?} later"
    );

    // The secondary's page: the primary's users sign in; it says what it is
    // and refuses changes and setup links.
    let secondary_page = WebClient::new(secondary.web);
    assert_eq!(secondary_page.sign_in("head", PASSWORD).status, 303);
    let dashboard = secondary_page.get("/");
    assert!(
        dashboard.body.contains("This box is the secondary of"),
        "{}",
        dashboard.body
    );
    let rules = secondary_page.get("/rules");
    assert!(rules.body.contains("bet365.com"), "{}", rules.body);
    assert!(!rules.body.contains("action=\"/rules\""), "{}", rules.body);
    assert!(
        rules
            .body
            .contains("Changes are made on the primary's page")
    );
    let refused = secondary_page.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "www.example.com"),
            ("action", "deny"),
            ("reason", "not here"),
        ],
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("Changes are made on the primary"),
        "{}",
        refused.body
    );
    assert_eq!(short(secondary.dns, "www.example.com"), "192.0.2.10");
    assert_eq!(secondary_page.get("/setup?token=x").status, 403);
    let link = lollipop_cli(&secondary.config(), &["setup-link"]);
    assert!(
        link.contains("secondary") && !link.contains("/setup?token"),
        "{link}"
    );
    let following = status(&secondary_page);
    assert_eq!(following["cluster"]["role"], "secondary", "{following}");
    assert!(
        following["cluster"]["follow"]["problem"].is_null(),
        "{following}"
    );
    let led = status(&page);
    let secondaries = led["cluster"]["secondaries"]
        .as_array()
        .expect("secondaries");
    assert!(
        secondaries.iter().any(|s| s["name"] == "office-secondary"),
        "{led}"
    );
    assert!(page.get("/").body.contains("office-secondary"));

    // The primary is gone: the secondary answers as before, and says so.
    drop(primary_process);
    wait_until("the secondary notices the primary is gone", || {
        !status(&secondary_page)["cluster"]["follow"]["problem"].is_null()
    });
    assert_eq!(short(secondary.dns, "www.bet365.com"), "192.0.2.14");
    assert_eq!(short(secondary.dns, "www.cbeebies.com"), "192.0.2.12");
    assert!(
        secondary_page
            .get("/")
            .body
            .contains("keeps answering with the last settings it had")
    );

    // Restarted while the primary is still away: the same answers, from
    // the snapshot it kept.
    drop(secondary_process);
    secondary_process = secondary.start();
    assert_eq!(short(secondary.dns, "www.bet365.com"), "192.0.2.14");
    assert_eq!(short(secondary.dns, "www.cbeebies.com"), "192.0.2.12");
    assert!(
        secondary.log().contains("kept on disk"),
        "{}",
        secondary.log()
    );
    // The commands on the secondary say what it does.
    let listener = secondary.dns.to_string();
    let checked = lollipop_cli(
        &secondary.config(),
        &[
            "check",
            "www.cbeebies.com",
            "--client",
            "127.0.0.1",
            "--listener",
            &listener,
        ],
    );
    assert!(checked.contains("unlocked:"), "{checked}");

    // The primary is back with a further change: they converge.
    let _primary_process = primary.start();
    let page = primary_page(&primary);
    assert_eq!(page.sign_in("head", PASSWORD).status, 303);
    let denied = page.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "www.example.com"),
            ("action", "deny"),
            ("reason", "not for lessons"),
        ],
    );
    assert_eq!(denied.status, 303, "{}", denied.body);
    answered_within(
        secondary.dns,
        "www.example.com",
        "0.0.0.0",
        Duration::from_secs(20),
    );
    assert_eq!(short(secondary.dns, "www.bet365.com"), "192.0.2.14");

    // The secondary's blocks stay in its own log, and the primary's report
    // counts them beside its own.
    wait_until("the primary's report counts the secondary's blocks", || {
        let report = lollipop_cli(&primary.config(), &["report", "--text"]);
        report
            .lines()
            .find(|line| line.starts_with("Also answered by the secondary office-secondary"))
            .and_then(|line| line.split(" look-ups, ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|blocked| blocked.parse::<u64>().ok())
            .is_some_and(|blocked| blocked >= 3)
    });
    drop(secondary_process);
}

#[test]
fn a_secondary_with_another_pair_key_is_refused_and_follows_nothing() {
    let upstream = TestUpstream::start();
    let primary = primary_on(&upstream);
    let _primary_process = primary.start();
    let secondary = secondary_of(&primary, OTHER_KEY, &upstream);
    let _secondary_process = secondary.start();
    wait_until("the secondary says it was refused", || {
        secondary.log().contains("same key")
    });
    // Its own file's policy: games are not blocked there.
    assert_eq!(short(secondary.dns, "www.cbeebies.com"), "192.0.2.12");
    assert!(primary.log().contains("without the pair key"));
}

/// Stands in for the primary on its own address with its own certificate
/// and key (so the secondary's pin holds), sending `body` as the snapshot
/// to every pull: a replayed or altered snapshot over the real channel.
struct FakePrimary {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePrimary {
    fn serve(primary: &Appliance, body: Vec<u8>) -> FakePrimary {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let data = primary.dir.path().join("data");
        let certs = CertificateDer::pem_file_iter(data.join("web-cert.pem"))
            .expect("certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate");
        let key = PrivateKeyDer::from_pem_file(data.join("web-key.pem")).expect("key");
        let tls = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
        );
        let listener = std::net::TcpListener::bind(primary.web).expect("the primary's address");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((socket, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = socket.set_nonblocking(false);
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let connection = rustls::ServerConnection::new(tls.clone()).expect("connection");
                let mut stream = rustls::StreamOwned::new(connection, socket);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => break,
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
                stream.conn.send_close_notify();
                let _ = stream.flush();
            }
        });
        FakePrimary {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_replayed_or_altered_snapshot_is_refused_and_the_last_good_state_answers() {
    let upstream = TestUpstream::start();
    let primary = primary_on(&upstream);
    let primary_process = primary.start();
    let made = make_admin(&primary.config());
    assert!(made.contains("created"), "{made}");
    let secondary = secondary_of(&primary, PAIR_KEY, &upstream);
    let kept = secondary.dir.path().join("data/cluster-snapshot.json");
    let _secondary_process = secondary.start();
    answered_within(
        secondary.dns,
        "www.cbeebies.com",
        "0.0.0.0",
        Duration::from_secs(20),
    );
    let old = std::fs::read(&kept).expect("the first snapshot is kept");

    let page = primary_page(&primary);
    assert_eq!(page.sign_in("head", PASSWORD).status, 303);
    let added = page.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "bet365.com"),
            ("action", "allow"),
            ("reason", "Year 6 maths: probability"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    answered_within(
        secondary.dns,
        "www.bet365.com",
        "192.0.2.14",
        Duration::from_secs(20),
    );
    let current = std::fs::read(&kept).expect("the second snapshot is kept");
    assert_ne!(old, current);
    drop(primary_process);

    // The first snapshot again, properly signed but older: refused.
    let replay = FakePrimary::serve(&primary, old);
    wait_until("the secondary refuses the older snapshot", || {
        secondary.log().contains("is older")
    });
    assert_eq!(short(secondary.dns, "www.bet365.com"), "192.0.2.14");
    assert_eq!(std::fs::read(&kept).expect("kept"), current);
    drop(replay);

    // The current one with its allow entry moved to another site: refused.
    let text = String::from_utf8(current.clone()).expect("JSON");
    assert!(text.contains("bet365.com"));
    let altered = text.replace("bet365.com", "www.example.org").into_bytes();
    let tampered = FakePrimary::serve(&primary, altered);
    wait_until("the secondary refuses the altered snapshot", || {
        secondary.log().contains("signature does not match")
    });
    assert_eq!(short(secondary.dns, "www.bet365.com"), "192.0.2.14");
    assert_eq!(std::fs::read(&kept).expect("kept"), current);
    drop(tampered);
}

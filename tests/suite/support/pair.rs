//! Two appliances on loopback as an HA pair, for the pair's tests: each
//! box is the real `lollipop` binary in its own directory (config, lists,
//! pair key, data) on its own ports; the primary's page is signed in to
//! over its self-signed certificate; and a stand-in primary serves a given
//! snapshot over the pinned channel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::web::WebClient;
use super::{Process, TestUpstream, dig, free_port, lollipop_cli, wait_until};

pub const PAIR_KEY: &str = "6c6f6c6c69706f702070616972206b657920666f722074657374696e67212121";
pub const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
pub const PASSWORD: &str = "head has a long password";

/// One box: its directory (config, lists, pair key, data) and ports.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub dns: SocketAddr,
    pub web: SocketAddr,
}

impl Appliance {
    /// A box with DNS and its page on fresh loopback ports, the school's
    /// lists, the pair key `key`, and `config` (given the ports) as its file.
    pub fn new(key: &str, config: impl FnOnce(&Appliance) -> String) -> Appliance {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("lists")).expect("lists dir");
        std::fs::write(dir.path().join("lists/gambling.txt"), "bet365.com\n").expect("list");
        std::fs::write(dir.path().join("lists/games.txt"), "cbeebies.com\n").expect("list");
        std::fs::write(
            dir.path().join("lists/adult.txt"),
            "adult-one.example\nadult-two.example\n",
        )
        .expect("list");
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

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("lollipop.toml")
    }

    /// Runs the real binary on this box's config, its log in `log.txt`.
    pub fn start(&self) -> Process {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }
}

/// The school's settings both boxes' files hold (each box's own copy; the
/// secondary's is replaced by the primary's once it follows).
pub fn school(lollipop: &Appliance, block: &str, web: &str, cluster: &str) -> String {
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

[[lists]]
name = "school-adult"
path = "lists/adult.txt"
category = "pornography"

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

pub fn short(server: SocketAddr, name: &str) -> String {
    dig(server, &[name, "A", "+short"]).trim().to_string()
}

/// Polls `dig` until `server` answers `name` with `want`, failing after
/// `limit`; returns how long it took.
pub fn answered_within(server: SocketAddr, name: &str, want: &str, limit: Duration) -> Duration {
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
pub fn primary_page(primary: &Appliance) -> WebClient {
    let pem = std::fs::read(primary.dir.path().join("data/web-cert.pem")).expect("certificate");
    WebClient::with_tls_root(
        format!("https://localhost:{}", primary.web.port()),
        Some(&pem),
    )
}

pub fn make_admin(config: &Path) -> String {
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
pub fn pin_of(primary: &Appliance) -> String {
    let paired = lollipop_cli(&primary.config(), &["cluster", "pair"]);
    paired
        .lines()
        .find_map(|line| line.strip_prefix("primary_certificate_sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("`cluster pair` prints the pin:\n{paired}"))
        .to_string()
}

/// The primary (blocking gambling, games and pornography) on `upstream`.
pub fn primary_on(upstream: &TestUpstream) -> Appliance {
    primary_with(upstream, "")
}

/// The primary, with `more` (tables) at the end of its file.
pub fn primary_with(upstream: &TestUpstream, more: &str) -> Appliance {
    Appliance::new(PAIR_KEY, |b| {
        let text = school(
            b,
            "\"gambling\", \"games\", \"pornography\"",
            "tls = true",
            "role = \"primary\"",
        );
        format!("{text}\n{more}\n").replace("{upstream}", &upstream.plain.to_string())
    })
}

/// A secondary of `primary` with the pair key `key`, whose own file
/// blocks less than the primary (gambling only).
pub fn secondary_of(primary: &Appliance, key: &str, upstream: &TestUpstream) -> Appliance {
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

pub fn status(page: &WebClient) -> serde_json::Value {
    let reply = page.get("/api/v1/status");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("status JSON")
}

/// Stands in for the primary on its own address with its own certificate
/// and key (so the secondary's pin holds), sending `body` as the snapshot
/// to every pull: a replayed or altered snapshot over the real channel.
pub struct FakePrimary {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePrimary {
    pub fn serve(primary: &Appliance, body: Vec<u8>) -> FakePrimary {
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

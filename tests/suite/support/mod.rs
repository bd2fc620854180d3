//! Test harness: an upstream DNS server on loopback (hickory authoritative
//! zones, in-process, over UDP, TCP, DoT and DoH), Lollipop started on
//! loopback from a config written by the test, and real clients.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_server::proto::rr::{LowerName, Name, RecordType};
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::runtime::Runtime;

pub mod browser;
pub mod central;
mod config;
pub mod nsd;
pub mod pair;
pub mod scripted;
pub mod unbound;
pub mod web;

pub use config::TestConfig;

pub const ZONE: &str = include_str!("../../zones/upstream.zone");

/// Names under this zone are never answered: the test upstream stands for a
/// domain whose servers are down, so lookups of it wait out the time-out.
pub const SILENT_ZONE: &str = "silent.test.";

/// Counts the queries that reach the upstream, then answers from the zone
/// (or, under [`SILENT_ZONE`], not at all).
struct Counting {
    catalog: Catalog,
    queries: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl RequestHandler for Counting {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let silent = LowerName::from(Name::from_ascii(SILENT_ZONE).expect("silent zone name"));
        if let Ok(info) = request.request_info()
            && silent.zone_of(info.query.name())
        {
            // No response at all: the resolver must wait out its time-out.
            return ResponseInfo::from(Header {
                metadata: Metadata::new(info.metadata.id, MessageType::Response, OpCode::Query),
                counts: HeaderCounts::default(),
            });
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

pub struct TestUpstream {
    /// UDP and TCP, same port.
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub https: SocketAddr,
    /// PEM file of the CA that signed the DoT/DoH certificate.
    pub ca_file: PathBuf,
    pub queries: Arc<AtomicUsize>,
    /// Runs the servers; dropped with the upstream.
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

pub const TLS_NAME: &str = "upstream.test";

impl TestUpstream {
    pub fn start() -> TestUpstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let queries = Arc::new(AtomicUsize::new(0));

        let (origin, records) = Parser::new(ZONE, None, Some(Name::root()))
            .parse()
            .expect("test zone parses");
        let zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .expect("zone");
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::from(origin), vec![Arc::new(zone)]);

        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec![TLS_NAME.to_string()]).expect("cert params");
        let cert = params.self_signed(&key).expect("self-signed");
        let ca_file = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write ca");

        let counting = Counting {
            catalog,
            queries: queries.clone(),
        };
        let (plain, tls, https) = runtime.block_on(async {
            // UDP and TCP on one port: try again if TCP's is taken.
            let mut pair = None;
            for _ in 0..50 {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
                    .await
                    .expect("udp");
                let plain = udp.local_addr().expect("addr");
                if let Ok(tcp) = tokio::net::TcpListener::bind(plain).await {
                    pair = Some((udp, tcp, plain));
                    break;
                }
            }
            let (udp, tcp, plain) = pair.expect("a free port for UDP and TCP");
            let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("tls");
            let tls = tls_listener.local_addr().expect("addr");
            let https_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("https");
            let https = https_listener.local_addr().expect("addr");

            let provider = rustls::crypto::ring::default_provider();
            let certified = rustls::sign::CertifiedKey::from_der(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                &provider,
            )
            .expect("certified key");
            let resolver = Arc::new(rustls::sign::SingleCertAndKey::from(certified));

            let mut server = Server::new(counting);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 32);
            server
                .register_tls_listener(tls_listener, Duration::from_secs(5), resolver.clone())
                .expect("tls listener");
            server
                .register_https_listener(
                    https_listener,
                    Duration::from_secs(5),
                    resolver,
                    Some(TLS_NAME.to_string()),
                    "/dns-query".to_string(),
                )
                .expect("https listener");
            tokio::spawn(async move {
                let _ = server.block_until_done().await;
            });
            (plain, tls, https)
        });
        TestUpstream {
            plain,
            tls,
            https,
            ca_file,
            queries,
            _runtime: runtime,
            _dir: dir,
        }
    }

    pub fn query_count(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

pub use lollipop::clock::Clock;

/// Lollipop on loopback, in this process, from a config the test wrote.
pub struct TestLollipop {
    pub addresses: Vec<SocketAddr>,
    pub dir: tempfile::TempDir,
    running: Option<lollipop::service::Running>,
    runtime: Runtime,
}

impl TestLollipop {
    /// `config` may use `{upstream}` (the plain upstream address), `{dir}`
    /// (a fresh directory) and `{ca}` (the DoT/DoH CA file). Lists named in
    /// `lists` are written into `{dir}` first.
    pub fn start(config: &str, upstream: &TestUpstream, lists: &[(&str, &str)]) -> TestLollipop {
        TestLollipop::start_with(config, upstream, lists, |_| {})
    }

    /// As [`TestLollipop::start`], with `tweak` applied to the loaded config
    /// (for settings a file may not hold, e.g. a zero idle time-out).
    pub fn start_with(
        config: &str,
        upstream: &TestUpstream,
        lists: &[(&str, &str)],
        tweak: impl FnOnce(&mut lollipop::config::Config),
    ) -> TestLollipop {
        TestLollipop::start_at(config, upstream, lists, tweak, Clock::system())
    }

    /// As [`TestLollipop::start_with`], with "now" read from `clock` (the
    /// block log's retention, sessions, schedules), so a test moves time.
    pub fn start_at(
        config: &str,
        upstream: &TestUpstream,
        lists: &[(&str, &str)],
        tweak: impl FnOnce(&mut lollipop::config::Config),
        clock: Clock,
    ) -> TestLollipop {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in lists {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, content).expect("write list");
        }
        let text = expand(config, upstream, dir.path());
        let config_path = dir.path().join("lollipop.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let mut config = lollipop::config::Config::load(&config_path)
            .unwrap_or_else(|errors| panic!("test config is invalid:\n{errors}"));
        tweak(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(async { lollipop::service::start_with_clock(config, clock) })
            .expect("lollipop starts");
        TestLollipop {
            addresses: running.servers.addresses.clone(),
            dir,
            running: Some(running),
            runtime,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.addresses[0]
    }

    /// The fresh directory the config's `{dir}` stands for.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Rewrites the config file with `edit` and reloads, as saving the file
    /// or SIGHUP does.
    pub fn reload_with(
        &self,
        edit: impl FnOnce(String) -> String,
    ) -> lollipop::service::reload::ReloadOutcome {
        let path = self.dir().join("lollipop.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, edit(text)).expect("write config");
        self.block_on(self.running().reloader.reload("test"))
    }

    /// Runs `future` on the resolver's runtime (e.g. a reload).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn running(&self) -> &lollipop::service::Running {
        self.running.as_ref().expect("running")
    }

    /// Waits until everything logged so far is in the database.
    pub fn flush_log(&self) {
        if let Some(running) = &self.running {
            self.runtime.block_on(running.journal.flush());
        }
    }

    pub fn log_stats(&self) -> lollipop::journal::JournalStats {
        self.running
            .as_ref()
            .map(|r| r.journal.stats())
            .expect("running")
    }
}

impl Drop for TestLollipop {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.servers.shutdown());
        }
    }
}

/// A test config, with the status page off unless the test sets `[web]`.
pub fn expand(config: &str, upstream: &TestUpstream, dir: &Path) -> String {
    let config = if config.contains("[web]") {
        config.to_string()
    } else {
        format!("{config}\n[web]\nenabled = false\n")
    };
    config
        .replace("{upstream}", &upstream.plain.to_string())
        .replace("{upstream_tls}", &upstream.tls.to_string())
        .replace("{upstream_https}", &upstream.https.to_string())
        .replace("{ca}", &upstream.ca_file.display().to_string())
        .replace("{dir}", &dir.display().to_string())
}

/// How to ask.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub edns: Option<u16>,
    pub edns_version: u8,
    pub dnssec_ok: bool,
    pub tcp: bool,
}

impl Default for Ask {
    fn default() -> Self {
        Ask {
            edns: Some(1232),
            edns_version: 0,
            dnssec_ok: false,
            tcp: false,
        }
    }
}

pub fn query_message(name: &str, record_type: RecordType, ask: Ask) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        record_type,
    ));
    if let Some(payload) = ask.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_version(ask.edns_version);
        edns.set_dnssec_ok(ask.dnssec_ok);
        message.edns = Some(edns);
    }
    message
}

fn rand_id() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(1000);
    (NEXT.fetch_add(1, Ordering::Relaxed) % 65_000) as u16
}

/// Sends raw bytes over UDP and returns the raw reply, or None on silence.
pub fn exchange_udp(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    exchange_udp_within(server, bytes, Duration::from_secs(3))
}

pub fn exchange_udp_within(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let bind = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(bind).expect("client socket");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = vec![0u8; 65_535];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => Some(buf[..len].to_vec()),
        Err(_) => None,
    }
}

pub fn exchange_tcp(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    exchange_tcp_within(server, bytes, Duration::from_secs(3))
}

pub fn exchange_tcp_within(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).ok()?;
    Some(reply)
}

/// Asks one question and decodes the reply.
pub fn ask(server: SocketAddr, name: &str, record_type: RecordType, ask: Ask) -> Message {
    let message = query_message(name, record_type, ask);
    let bytes = message.to_bytes().expect("encode");
    let reply = if ask.tcp {
        exchange_tcp(server, &bytes)
    } else {
        exchange_udp(server, &bytes)
    }
    .unwrap_or_else(|| panic!("no reply for {name} {record_type}"));
    let reply = Message::from_bytes(&reply).expect("reply decodes");
    assert_eq!(reply.metadata.id, message.metadata.id, "reply id matches");
    reply
}

pub fn a(server: SocketAddr, name: &str) -> Message {
    ask(server, name, RecordType::A, Ask::default())
}

/// The Extended DNS Error of a reply: (info code, text).
pub fn extended_error(reply: &Message) -> Option<(u16, String)> {
    let edns = reply.edns.as_ref()?;
    edns.options().as_ref().iter().find_map(|(code, option)| {
        if u16::from(*code) != 15 {
            return None;
        }
        match option {
            hickory_server::proto::rr::rdata::opt::EdnsOption::Unknown(_, data)
                if data.len() >= 2 =>
            {
                Some((
                    u16::from_be_bytes([data[0], data[1]]),
                    String::from_utf8_lossy(&data[2..]).into_owned(),
                ))
            }
            _ => None,
        }
    })
}

/// The answer section as `TYPE value` strings, e.g. `A 192.0.2.10`.
pub fn answers(reply: &Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}

/// The `/metrics` text of a running Lollipop.
pub fn metrics_text(lollipop: &TestLollipop) -> String {
    let running = lollipop.running();
    running.metrics.render(
        &running.pipeline.settings().policy.lists,
        &running.journal.stats(),
    )
}

/// Runs Debian's dig against `server` and returns its output.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=3", "+tries=1"])
        .args(args)
        .output()
        .expect("dig runs (apt-get install dnsutils)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An HTTP server on loopback serving bodies the test sets (list downloads,
/// webhooks), and recording what it is sent.
pub use lollipop::testkit::http::Server as TestHttp;

/// A child process killed when the test ends, pass or fail.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (20 s at most, a bound for a busy machine, not a speed check)
/// until `done`, failing the test with `what` otherwise.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port free for both UDP and TCP just now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Runs the real binary with `--config config` and `args`: what it printed,
/// stdout then stderr.
pub fn lollipop_cli(config: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("lollipop runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts `reply` is a SERVFAIL whose Extended DNS Error is `code`, and
/// returns the error's text.
pub fn servfail_with(reply: &Message, code: u16) -> String {
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply:?}"
    );
    let (given, text) = extended_error(reply).expect("a SERVFAIL says why");
    assert_eq!(given, code, "{text}");
    text
}

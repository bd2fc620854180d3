//! Crash containment: a panic in one lookup never stops the readers, the
//! process tells systemd it is ready and pings the watchdog while it
//! answers, and running out of file descriptors never stops UDP answers.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;

use crate::support::web::{SCHOOL_LISTS, school};
use crate::support::*;

fn query_bytes(name: &str) -> Vec<u8> {
    query_message(name, RecordType::A, Ask::default())
        .to_bytes()
        .expect("encode")
}

fn panics_counted(lollipop: &TestLollipop) -> u64 {
    let running = lollipop.running();
    let lists = running.pipeline.settings().policy.lists.clone();
    let text = running.metrics.render(&lists, &running.journal.stats());
    text.lines()
        .find_map(|line| line.strip_prefix("lollipop_panics_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("lollipop_panics_total is exported")
}

#[test]
fn a_panic_in_one_lookup_leaves_every_reader_answering() {
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start(&school("enabled = false"), &upstream, SCHOOL_LISTS);
    let server = lollipop.address();
    let before = panics_counted(&lollipop);
    // From many source ports, so every reader socket of the address gets
    // its share; over TCP too.
    let poison = query_bytes("lollipop-test-panic.example.com.");
    for _ in 0..32 {
        let reply = exchange_udp_within(server, &poison, Duration::from_millis(200));
        assert!(reply.is_none(), "a panicking lookup has no answer");
    }
    for _ in 0..4 {
        assert!(exchange_tcp_within(server, &poison, Duration::from_millis(500)).is_none());
    }
    for i in 0..64 {
        let reply = a(server, "www.example.com.");
        assert_eq!(answers(&reply), ["A 192.0.2.10"], "lookup {i}");
        let reply = a(server, "www.bet365.com.");
        assert_eq!(answers(&reply), ["A 0.0.0.0"], "lookup {i}");
    }
    let reply = exchange_tcp(server, &query_bytes("www.example.com.")).expect("TCP answers");
    assert!(reply.len() > 12);
    assert!(
        panics_counted(&lollipop) >= before + 36,
        "every panic is counted in /metrics"
    );
}

/// A directory with a config for the `lollipop` binary: DNS on `port`, an
/// upstream that never answers, web page off, a local gambling list.
fn appliance(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("lists")).expect("lists dir");
    std::fs::write(dir.path().join("lists/gambling.txt"), "bet365.com\n").expect("list");
    let config = format!(
        r#"
[server]
data_dir = "data"
default_profile = "ks2"

[[listen]]
address = "127.0.0.1:{port}"

[[upstream]]
address = "127.0.0.1:9"
protocol = "udp"

[resolver]
timeout_ms = 300
attempts = 1

[[lists]]
name = "school-gambling"
path = "lists/gambling.txt"
category = "gambling"

[web]
enabled = false

[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]
"#
    );
    std::fs::write(dir.path().join("lollipop.toml"), config).expect("config");
    dir
}

fn spawn(dir: &std::path::Path, setup: impl FnOnce(&mut Command)) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lollipop"));
    command
        .current_dir(dir)
        .args(["--config", "lollipop.toml", "run"])
        .env_remove("LOLLIPOP_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    setup(&mut command);
    Process(command.spawn().expect("lollipop starts"))
}

fn wait_until_answering(server: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while exchange_udp(server, &query_bytes("www.bet365.com.")).is_none() {
        assert!(Instant::now() < deadline, "lollipop never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn systemd_hears_ready_then_watchdog_pings_while_the_resolver_answers() {
    let port = free_port();
    let dir = appliance(port);
    let socket_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _lollipop = spawn(dir.path(), |command| {
        command
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "900000");
    });
    let mut heard = Vec::new();
    let mut buffer = [0u8; 512];
    while heard
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        let n = notify
            .recv(&mut buffer)
            .unwrap_or_else(|error| panic!("systemd heard only {heard:?}: {error}"));
        heard.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert!(heard[0].contains("READY=1"), "READY comes first: {heard:?}");
    // READY only once the listener answers.
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(exchange_udp(server, &query_bytes("www.bet365.com.")).is_some());
}

#[test]
fn running_out_of_file_descriptors_never_stops_udp_answers() {
    let port = free_port();
    let dir = appliance(port);
    let _lollipop = spawn(dir.path(), |command| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until_answering(server);
    // Far more idle TCP clients than the process has descriptors, each from
    // its own address so no per-client cap is what stops them.
    let mut held = Vec::new();
    for i in 0..120u8 {
        let source = SocketAddr::from(([127, 0, 1, i + 1], 0));
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.bind(&source.into()).expect("bind source");
        if socket
            .connect_timeout(&server.into(), Duration::from_millis(500))
            .is_ok()
        {
            held.push(TcpStream::from(socket));
        }
    }
    // Give the accept loop time to hit the limit.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..50 {
        let reply = exchange_udp_within(
            server,
            &query_bytes("www.bet365.com."),
            Duration::from_secs(2),
        );
        assert!(
            reply.is_some(),
            "blocked lookup {i} unanswered while out of descriptors"
        );
        let uncached = format!("name{i}.example.org.");
        let reply = exchange_udp_within(server, &query_bytes(&uncached), Duration::from_secs(3));
        assert!(
            reply.is_some(),
            "{uncached} unanswered while out of descriptors"
        );
    }
    // Once the clients go, TCP is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(reply) = exchange_tcp(server, &query_bytes("www.bet365.com.")) {
            assert!(reply.len() > 12);
            break;
        }
        assert!(Instant::now() < deadline, "TCP never came back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

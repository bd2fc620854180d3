//! A question asked again is answered from the bytes of the answer given
//! to it before, and that never outlasts what decided it: the real binary,
//! asked by real `dig` (without a cookie, so every ask is byte for byte the
//! same bar the ID), gives a name it allowed and keeps giving it; once a
//! reload blocks the name, the very next answer is the block (fail
//! closed); a staff unlock of the blocked name opens it at the next
//! answer, and its end closes it again at the next.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use crate::support::*;
use lollipop::policy::rules::{OverrideScope, OverrideTarget};

/// `name`'s A records as dig prints them short, asked exactly the same way
/// every time.
fn ask(server: SocketAddr, name: &str) -> String {
    dig(server, &["+nocookie", "+short", name, "A"])
        .trim()
        .to_string()
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the binary to say it has put a reload in force.
fn wait_for_reload(log: &Receiver<String>) {
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("lollipop says it reloaded within 20 s");
        if line.contains("reloaded (") {
            return;
        }
    }
}

#[test]
fn a_repeated_question_follows_a_reload_and_a_staff_unlock_at_its_next_answer() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    std::fs::write(dir.path().join("gambling.txt"), "example.com\n").expect("list");
    let config = TestConfig::new()
        .listen(&format!("127.0.0.1:{port}"))
        .upstream("{upstream}")
        .list("gambling", "gambling.txt", "gambling")
        .blocklist("ks2", &["gambling"], "")
        .toml();
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(&config_path, expand(&config, &upstream, dir.path())).expect("config");
    let mut child = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args(["--config", &config_path.display().to_string(), "run"])
            .env("LOLLIPOP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lollipop starts"),
    );
    let (lines, log) = channel();
    let stderr = child.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    wait_until("first answer", || {
        ask(server, "www.example.com") == "0.0.0.0"
    });

    // Allowed, and asked again: the same answer each time.
    let allowed = ask(server, "www.bbc.co.uk");
    assert!(
        !allowed.is_empty() && allowed != "0.0.0.0",
        "www.bbc.co.uk is allowed: {allowed}"
    );
    for _ in 0..3 {
        assert_eq!(ask(server, "www.bbc.co.uk"), allowed);
    }
    assert_eq!(ask(server, "www.example.com"), "0.0.0.0");
    assert_eq!(ask(server, "www.example.com"), "0.0.0.0");

    // A reload blocks it: the next answer is the block.
    std::fs::write(dir.path().join("gambling.txt"), "example.com\nbbc.co.uk\n").expect("list");
    hangup(&child.0);
    wait_for_reload(&log);
    assert_eq!(ask(server, "www.bbc.co.uk"), "0.0.0.0");
    assert_eq!(ask(server, "www.bbc.co.uk"), "0.0.0.0");

    // A staff unlock for this device opens it at the next answer...
    let store = lollipop::admin::AdminStore::open(&dir.path().join("data").join("admin.db"))
        .expect("admin store");
    let unlock = store
        .add_override(
            &OverrideTarget::Domain("bbc.co.uk".into()),
            &OverrideScope::Device("127.0.0.1".parse().expect("ip")),
            "a lesson on the news",
            "ms.khan",
            lollipop::clock::now_unix_ms() + 600_000,
        )
        .expect("unlock");
    hangup(&child.0);
    wait_for_reload(&log);
    assert_eq!(ask(server, "www.bbc.co.uk"), allowed);
    assert_eq!(ask(server, "www.bbc.co.uk"), allowed);

    // ...and its end closes it again at the next.
    store.end_override(unlock.id, "ms.khan").expect("end");
    hangup(&child.0);
    wait_for_reload(&log);
    assert_eq!(ask(server, "www.bbc.co.uk"), "0.0.0.0");
    assert_eq!(ask(server, "www.bbc.co.uk"), "0.0.0.0");
}

//! Shared fixtures for the alerter's tests: certificates and secret files,
//! configs pointing at the test servers, sample devices and events.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::super::{AlertConfig, Alerter, BlockEvent, Device, EmailConfig, RetryPolicy};
use super::smtp_sink::SmtpSink;

/// 2025-04-07 13:03:07 UTC, a Monday in BST.
pub const AT: i64 = 1_744_030_987_000;

/// Enough base64 to read what an SMTP client sends during AUTH.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    sextets
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |acc, v| acc << 6 | u32::from(*v)) << (6 * (4 - c.len()));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len().saturating_sub(1))
        })
        .collect()
}

pub struct Files {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub password: PathBuf,
    pub token: PathBuf,
}

pub fn files(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(text.as_bytes()).expect("write");
        path
    };
    let ca = write("relay-ca.pem", &cert.cert.pem());
    let password = write("smtp-password", "s3cret pass\n");
    let token = write("webhook-token", "tok-123\n");
    Files {
        _dir: dir,
        ca,
        password,
        token,
    }
}

pub fn cert() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate")
}

pub fn email(sink: &SmtpSink, f: &Files) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        starttls: true,
        username: Some("dsl-alerts".into()),
        password_file: Some(f.password.clone()),
        from: "Lollipop <lollipop@oak.example.sch.uk>".into(),
        to: vec![
            "dsl@oak.example.sch.uk".into(),
            "deputy.dsl@oak.example.sch.uk".into(),
        ],
        ca_file: Some(f.ca.clone()),
    }
}

pub fn config() -> AlertConfig {
    let mut c = AlertConfig::new("Oak Tree Primary");
    c.categories.push("csam".into());
    c.rate_window = Duration::from_secs(60);
    c.retry = RetryPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts: 4,
        attempt_timeout: Duration::from_secs(5),
    };
    c
}

pub fn ipad() -> Device {
    Device {
        name: Some("Y5-iPad-07".into()),
        mac: Some("AA:BB:CC:DD:EE:07".into()),
        owner: Some("Miss Patel".into()),
        room: Some("Year 5".into()),
    }
}

pub fn event(name: &str, category: &str, at: i64) -> BlockEvent {
    BlockEvent {
        at_unix_ms: at,
        client: "10.20.0.7".parse::<IpAddr>().expect("ip"),
        listener: Some("lan".into()),
        profile: "pupils".into(),
        name: name.into(),
        query_type: "A",
        category: Some(category.into()),
        list: Some("curated".into()),
        rule: Some(name.into()),
        action: "blocked",
        locked: false,
    }
}

pub fn locked_event(name: &str) -> BlockEvent {
    BlockEvent {
        category: Some("csam".into()),
        list: Some("iwf".into()),
        rule: None,
        locked: true,
        ..event(name, "csam", AT)
    }
}

pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn start(config: AlertConfig) -> Alerter {
    let (alerter, task) = Alerter::start(config);
    tokio::spawn(task);
    alerter
}

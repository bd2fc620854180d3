//! The trust's central log (issue 20) in the tables the trust dashboard
//! reads and over TLS: an alert sent by webhook, the block behind it and
//! the box's heartbeat reach PostgreSQL; a box ships over TLS to
//! PostgreSQL and to rsyslog's TLS driver, trusting the trust's own CA.

use crate::support::central::{
    TestCertificates, TrustPostgres, TrustRsyslog, syslog_keys, wait_long,
};

/// An alert the box sent, the block behind it and the box's heartbeat reach
/// the trust's PostgreSQL, in the tables the trust dashboard reads.
#[test]
fn an_alert_and_its_block_reach_the_trusts_database() {
    let postgres = TrustPostgres::start();
    let upstream = crate::support::TestUpstream::start();
    let hook = crate::support::TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let config = crate::support::TestConfig::new()
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        .section("[[devices]]\nip = \"127.0.0.1\"\nname = \"Y5-iPad-07\"\nroom = \"Oak class\"")
        .list("adult", "adult.txt", "pornography")
        .blocklist("ks2", &["pornography"], "")
        .table("alerts", "school_name = \"Oak Primary\"")
        .table(
            "alerts.webhook",
            &format!("url = \"{}\"", hook.url("/hook")),
        )
        .table("ship.postgres", &format!("url = \"{}\"", postgres.url()))
        .toml();
    let lollipop = crate::support::TestLollipop::start(
        &config,
        &upstream,
        &[("adult.txt", "adult-site.example\n")],
    );
    let reply = crate::support::a(lollipop.address(), "www.adult-site.example.");
    assert_eq!(crate::support::answers(&reply), ["A 0.0.0.0"]);

    let alerts = || {
        postgres
            .try_psql(
                "SELECT category, device, name, channel, outcome FROM alerts",
                "trust",
            )
            .unwrap_or_default()
    };
    wait_long("the alert reaches the trust", || !alerts().is_empty());
    assert_eq!(
        alerts().trim(),
        "pornography|Y5-iPad-07|www.adult-site.example|webhook|sent"
    );
    // The block itself, once its 12 s for repeats have passed.
    let blocked = || {
        postgres
            .try_psql(
                "SELECT device, room, profile, name, category FROM blocked",
                "trust",
            )
            .unwrap_or_default()
    };
    wait_long("the block reaches the trust", || !blocked().is_empty());
    assert_eq!(
        blocked().trim(),
        "Y5-iPad-07|Oak class|ks2|www.adult-site.example|pornography"
    );
    let heartbeat = postgres.psql(
        "SELECT school, alerts_configured, lists_stale, health ? 'log_failing' FROM boxes",
        "trust",
    );
    assert_eq!(heartbeat.trim(), "Oak Primary|t|f|t");
    let metrics = crate::support::metrics_text(&lollipop);
    assert!(
        metrics.contains("lollipop_ship_up{destination=\"postgres\"} 1"),
        "{metrics}"
    );
}

/// Over TLS both ways: PostgreSQL with `sslmode=require` and rsyslog's TLS
/// driver (a port that takes nothing else), each trusting the trust's own CA.
#[test]
fn blocks_reach_the_trust_over_tls() {
    let certificates = TestCertificates::make();
    let postgres = TrustPostgres::start_with(Some(&certificates));
    let mut rsyslog = TrustRsyslog::start_with(Some(&certificates));
    let upstream = crate::support::TestUpstream::start();
    let ca = certificates.ca.display();
    let config = crate::support::TestConfig::school()
        .listen("127.0.0.1:0")
        .blocklist("ks2", &["gambling"], "")
        .table("ship", "school = \"Oak Primary\"")
        .table(
            "ship.postgres",
            &format!("url = \"{}\"\nca_file = \"{ca}\"", postgres.tls_url()),
        )
        .table(
            "ship.syslog",
            &format!(
                "address = \"localhost:{}\"\ntls = true\nca_file = \"{ca}\"",
                rsyslog.port
            ),
        )
        .toml();
    let lollipop = crate::support::TestLollipop::start(
        &config,
        &upstream,
        &[
            ("gambling.txt", "bet365.com\n"),
            ("video.txt", ""),
            ("iwf.txt", ""),
        ],
    );
    let reply = crate::support::a(lollipop.address(), "www.bet365.com.");
    assert_eq!(crate::support::answers(&reply), ["A 0.0.0.0"]);
    wait_long("the block reaches PostgreSQL", || {
        !postgres
            .try_psql("SELECT name FROM blocked", "trust")
            .unwrap_or_default()
            .trim()
            .is_empty()
    });
    let encrypted = postgres.psql(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'lollipop'",
        "trust",
    );
    assert_eq!(encrypted.trim(), "t", "the box's connection is TLS");
    let file = rsyslog.file();
    wait_long("the block reaches rsyslog", || {
        syslog_keys(&file).len() == 1
    });
    rsyslog.stop();
    let text = std::fs::read_to_string(&file).expect("rsyslog's file");
    assert!(text.contains("school=\"Oak Primary\""), "{text}");
    assert!(text.contains("name=\"www.bet365.com\""), "{text}");
    drop(lollipop);
}

//! End-to-end tests of the alerter against real SMTP and HTTP servers on
//! 127.0.0.1: message content, STARTTLS and AUTH, withholding locked names,
//! rate limiting with folding, and retries.

mod fixtures;
mod smtp_sink;

use std::time::{Duration, Instant};

use fixtures::*;
use smtp_sink::{Options, SmtpSink};

use super::{AlertOutcome, Alerter, Channel, Device, EmailConfig, WebhookConfig};
use crate::testkit::http::{Reply, Server};

/// Where the school's webhook receiver takes alerts.
const HOOK: &str = "/hooks/dsl";

/// The school's webhook receiver, answering every alert with `status`.
fn webhook_sink(status: u16) -> Server {
    let sink = Server::start();
    sink.route(HOOK, Reply::status(status));
    sink
}

#[tokio::test]
async fn email_goes_over_starttls_with_auth_and_describes_the_event() {
    let cert = cert();
    let f = files(&cert);
    let sink = SmtpSink::start(&cert, Options::default()).await;
    let mut c = config();
    c.email = Some(email(&sink, &f));
    let alerter = start(c);

    alerter.offer(&event("harm.example", "self-harm", AT), &ipad());
    wait_for("the email", Duration::from_secs(10), || {
        sink.mails().len() == 1
    })
    .await;

    let mail = &sink.mails()[0];
    assert!(mail.before("STARTTLS", "AUTH"), "{:?}", mail.commands);
    assert!(mail.before("AUTH", "MAIL"), "{:?}", mail.commands);
    assert_eq!(mail.user.as_deref(), Some("dsl-alerts"));
    assert_eq!(mail.password.as_deref(), Some("s3cret pass"));
    assert_eq!(mail.from, "FROM:<lollipop@oak.example.sch.uk>");
    assert_eq!(mail.rcpt.len(), 2);
    assert_eq!(
        mail.subject(),
        Some("Lollipop alert: self-harm site blocked on Y5-iPad-07")
    );
    // Plain 7-bit text, so the checks below see exactly what a reader sees.
    assert!(
        mail.data.contains("Content-Transfer-Encoding: 7bit"),
        "{}",
        mail.data
    );
    for expected in [
        "Oak Tree Primary",
        "harm.example",
        "Category:    self-harm",
        "Action:      blocked",
        "Device:      Y5-iPad-07",
        "Owner:       Miss Patel",
        "Room:        Year 5",
        "MAC:         AA:BB:CC:DD:EE:07",
        "IP address:  10.20.0.7",
        "Profile:     pupils",
        "Monday 7 April 2025, 14:03:07 BST",
        "2025-04-07 13:03:07 UTC",
    ] {
        assert!(
            mail.data.contains(expected),
            "missing {expected:?} in\n{}",
            mail.data
        );
    }
    // The sink has the mail a moment before the sender hears the server's
    // reply and records the outcome.
    wait_for(
        "the delivery in the history",
        Duration::from_secs(10),
        || alerter.history().len() == 1,
    )
    .await;
    let history = alerter.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].channel, Channel::Email);
    assert_eq!(history[0].outcome, AlertOutcome::Delivered);
    assert_eq!(alerter.stats().sent, 1);
}

#[tokio::test]
async fn webhook_posts_json_with_the_same_facts() {
    let cert = cert();
    let f = files(&cert);
    let hook = webhook_sink(204);
    let mut c = config();
    c.time_zone = "UTC".into();
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: Some(f.token.clone()),
    });
    let alerter = start(c);

    alerter.offer(&event("extreme.example", "extremism", AT), &ipad());
    wait_for("the webhook", Duration::from_secs(10), || {
        hook.requests().len() == 1
    })
    .await;

    let req = &hook.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/dsl");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer tok-123"));
    let j = req.json();
    assert_eq!(j["school"], "Oak Tree Primary");
    assert_eq!(j["name"], "extreme.example");
    assert_eq!(j["category"], "extremism");
    assert_eq!(j["action"], "blocked");
    assert_eq!(j["profile"], "pupils");
    assert_eq!(j["locked"], false);
    assert_eq!(j["folded"], false);
    assert_eq!(j["attempts"], 1);
    assert_eq!(j["device"]["name"], "Y5-iPad-07");
    assert_eq!(j["device"]["owner"], "Miss Patel");
    assert_eq!(j["device"]["room"], "Year 5");
    assert_eq!(j["device"]["mac"], "AA:BB:CC:DD:EE:07");
    assert_eq!(j["device"]["ip"], "10.20.0.7");
    assert_eq!(j["time_local"], "2025-04-07T13:03:07Z");
    assert_eq!(j["time_utc"], "2025-04-07T13:03:07Z");
    assert_eq!(
        j["subject"],
        "Lollipop alert: extremism site blocked on Y5-iPad-07"
    );
    assert_eq!(alerter.stats().sent, 1);
}

#[tokio::test]
async fn locked_list_alerts_never_carry_the_name() {
    let cert = cert();
    let f = files(&cert);
    let sink = SmtpSink::start(&cert, Options::default()).await;
    let hook = webhook_sink(200);
    let mut c = config();
    c.email = Some(email(&sink, &f));
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: None,
    });
    let alerter = start(c);

    alerter.offer(&locked_event("licensed-entry.example"), &ipad());
    wait_for("both channels", Duration::from_secs(10), || {
        sink.mails().len() == 1 && hook.requests().len() == 1
    })
    .await;

    let mail = &sink.mails()[0];
    assert!(!mail.data.contains("licensed-entry"), "{}", mail.data);
    assert!(
        mail.data.contains("a site on the csam list"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("Device:      Y5-iPad-07"));
    assert_eq!(
        mail.subject(),
        Some("Lollipop alert: csam site blocked on Y5-iPad-07")
    );
    let req = &hook.requests()[0];
    assert!(!String::from_utf8_lossy(&req.body).contains("licensed-entry"));
    let j = req.json();
    assert!(j.get("name").is_none(), "{j}");
    assert!(j["events"][0].get("name").is_none(), "{j}");
    assert_eq!(j["site"], "a site on the csam list");
    assert_eq!(j["locked"], true);
    assert!(!format!("{:?}", alerter.history()).contains("licensed-entry"));
}

#[tokio::test]
async fn rate_limit_sends_one_then_folds_the_rest_into_the_next() {
    let cert = cert();
    let f = files(&cert);
    let sink = SmtpSink::start(&cert, Options::default()).await;
    let hook = webhook_sink(200);
    let window = Duration::from_millis(1500);
    let mut c = config();
    c.rate_window = window;
    c.email = Some(email(&sink, &f));
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: None,
    });
    let alerter = start(c);

    let opened = Instant::now();
    for i in 0..5 {
        let name = format!("harm{i}.example");
        alerter.offer(&event(&name, "self-harm", AT + i * 1000), &ipad());
    }
    // Same category from another device, and another category from this one.
    let other = Device {
        name: Some("Y6-iPad-02".into()),
        mac: Some("aa:bb:cc:dd:ee:02".into()),
        ..Device::default()
    };
    alerter.offer(&event("harm9.example", "self-harm", AT), &other);
    alerter.offer(&event("porn.example", "pornography", AT), &ipad());

    wait_for("three first alerts", Duration::from_secs(5), || {
        hook.requests().len() == 3 && sink.mails().len() == 3
    })
    .await;
    if opened.elapsed() < window {
        assert_eq!(alerter.stats().pending, 4);
    }
    let first: Vec<_> = hook.requests().iter().map(|r| r.json()).collect();
    assert!(
        first
            .iter()
            .all(|j| j["folded"] == false && j["attempts"] == 1)
    );
    let mut names: Vec<_> = first.iter().map(|j| j["name"].to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["\"harm0.example\"", "\"harm9.example\"", "\"porn.example\""]
    );

    wait_for("the folded alert", Duration::from_secs(8), || {
        hook.requests().len() == 4 && sink.mails().len() == 4
    })
    .await;
    assert!(
        opened.elapsed() >= window,
        "folded alert came before the window closed"
    );
    let folded = hook.requests()[3].json();
    assert_eq!(folded["folded"], true);
    assert_eq!(folded["attempts"], 4);
    assert_eq!(folded["device"]["name"], "Y5-iPad-07");
    let listed: Vec<_> = folded["events"]
        .as_array()
        .map(|a| a.iter().map(|e| e["name"].to_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        listed,
        [
            "\"harm1.example\"",
            "\"harm2.example\"",
            "\"harm3.example\"",
            "\"harm4.example\""
        ]
    );
    let mail = &sink.mails()[3];
    assert_eq!(
        mail.subject(),
        Some("Lollipop alert: 4 more self-harm attempts blocked on Y5-iPad-07")
    );
    assert!(
        mail.data
            .contains("blocked 4 more attempts to reach self-harm sites"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("14:03:11 (13:03:11)  harm4.example"),
        "{}",
        mail.data
    );

    // The new window closes empty: nothing more is sent.
    tokio::time::sleep(window + Duration::from_millis(300)).await;
    assert_eq!(hook.requests().len(), 4);
    let stats = alerter.stats();
    assert_eq!((stats.messages, stats.folded, stats.sent), (4, 4, 8));
    assert_eq!((stats.pending, stats.in_flight, stats.failed), (0, 0, 0));
}

#[tokio::test]
async fn smtp_temporary_failures_are_retried_until_delivered() {
    let cert = cert();
    let f = files(&cert);
    let opts = Options {
        refuse_first: 2,
        ..Options::default()
    };
    let sink = SmtpSink::start(&cert, opts).await;
    let mut c = config();
    c.email = Some(email(&sink, &f));
    let alerter = start(c);

    alerter.offer(&event("harm.example", "self-harm", AT), &ipad());
    wait_for("delivery", Duration::from_secs(10), || {
        alerter.stats().sent == 1
    })
    .await;

    assert_eq!(sink.refused(), 2);
    assert_eq!(sink.mails().len(), 1);
    let history = alerter.history();
    let attempts: Vec<_> = history.iter().map(|r| (r.attempt, &r.outcome)).collect();
    assert_eq!(attempts.len(), 3, "{history:?}");
    for (n, outcome) in &attempts[..2] {
        match outcome {
            AlertOutcome::Retrying { error, .. } => assert!(error.contains("451"), "{n}: {error}"),
            other => panic!("attempt {n}: {other:?}"),
        }
    }
    assert_eq!(attempts[2], (3, &AlertOutcome::Delivered));
    let stats = alerter.stats();
    assert_eq!((stats.failed, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn webhook_server_errors_fail_after_max_attempts() {
    let hook = webhook_sink(500);
    let mut c = config();
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: None,
    });
    let alerter = start(c);

    alerter.offer(&event("harm.example", "self-harm", AT), &ipad());
    wait_for("final failure", Duration::from_secs(10), || {
        alerter.stats().failed == 1
    })
    .await;

    assert_eq!(hook.requests().len(), 4);
    let history = alerter.history();
    assert_eq!(history.len(), 4);
    assert!(
        history[..3]
            .iter()
            .all(|r| matches!(r.outcome, AlertOutcome::Retrying { .. }))
    );
    assert_eq!(history[3].attempt, 4);
    assert_eq!(
        history[3].outcome,
        AlertOutcome::Failed {
            error: "webhook answered HTTP 500".into()
        }
    );
    let stats = alerter.stats();
    assert_eq!(
        stats.last_error.as_deref(),
        Some("webhook: webhook answered HTTP 500")
    );
    assert_eq!((stats.sent, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn credentials_never_leave_without_tls() {
    let cert = cert();
    let f = files(&cert);
    // One relay that does not offer STARTTLS, one whose certificate we do not trust.
    let plain = SmtpSink::start(
        &cert,
        Options {
            offer_starttls: false,
            ..Options::default()
        },
    )
    .await;
    let trusted_elsewhere = SmtpSink::start(&cert, Options::default()).await;
    for (sink, ca) in [(&plain, Some(f.ca.clone())), (&trusted_elsewhere, None)] {
        let mut c = config();
        c.retry.max_attempts = 1;
        c.email = Some(EmailConfig {
            ca_file: ca,
            ..email(sink, &f)
        });
        let alerter = start(c);
        alerter.offer(&event("harm.example", "self-harm", AT), &ipad());
        wait_for("the failure", Duration::from_secs(10), || {
            alerter.stats().failed == 1
        })
        .await;
        assert!(alerter.stats().last_error.is_some());
        wait_for("the session log", Duration::from_secs(5), || {
            !sink.sessions().is_empty()
        })
        .await;
        let sessions = sink.sessions();
        assert!(
            sessions.iter().flatten().all(|c| c != "AUTH"),
            "{sessions:?}"
        );
        assert!(sink.mails().is_empty());
    }
}

#[tokio::test]
async fn only_alert_categories_and_locked_events_alert() {
    let hook = webhook_sink(200);
    let mut c = config();
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: None,
    });
    let alerter = start(c);

    alerter.offer(&event("game.example", "gaming", AT), &ipad());
    alerter.offer(&event("ads.example", "advertising", AT), &ipad());
    let mut uncategorised = event("x.example", "none", AT);
    uncategorised.category = None;
    alerter.offer(&uncategorised, &ipad());
    assert_eq!(alerter.stats().offered, 0);

    // Case does not matter, and a locked event alerts whatever its category.
    alerter.offer(&event("p.example", "Pornography", AT), &ipad());
    let mut feed = locked_event("feed-entry.example");
    feed.category = Some("terrorism-ctiru".into());
    alerter.offer(&feed, &ipad());
    wait_for("two alerts", Duration::from_secs(10), || {
        hook.requests().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(alerter.stats().offered, 2);
}

#[tokio::test]
async fn stopping_sends_what_is_held() {
    let hook = webhook_sink(200);
    let mut c = config();
    c.rate_window = Duration::from_secs(3600);
    c.webhook = Some(WebhookConfig {
        url: hook.url(HOOK),
        token_file: None,
    });
    let (alerter, task) = Alerter::start(c);
    let task = tokio::spawn(task);
    alerter.offer(&event("a.example", "self-harm", AT), &ipad());
    alerter.offer(&event("b.example", "self-harm", AT + 1000), &ipad());
    drop(alerter);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("task ends once every handle is gone")
        .expect("task did not panic");
    let mut bodies: Vec<_> = hook.requests().iter().map(|r| r.json()).collect();
    // Deliveries run side by side, so arrival order is not alert order.
    bodies.sort_by_key(|j| j["alert_id"].as_u64());
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["name"], "a.example");
    assert_eq!(bodies[1]["folded"], true);
    assert_eq!(bodies[1]["name"], "b.example");
}

#[test]
fn validate_catches_broken_settings() {
    let mut c = config();
    assert!(c.validate().is_ok());
    c.time_zone = "Europe/Paris".into();
    assert!(c.validate().is_err());
    c.time_zone = "UTC".into();
    c.webhook = Some(WebhookConfig {
        url: "ftp://example.org".into(),
        token_file: None,
    });
    assert!(c.validate().is_err());
    c.webhook = None;
    c.email = Some(EmailConfig {
        host: "smtp.example.org".into(),
        port: 587,
        starttls: true,
        username: Some("u".into()),
        password_file: None,
        from: "not an address".into(),
        to: vec![],
        ca_file: None,
    });
    assert!(c.validate().is_err());
    assert_eq!(base64_decode("AHVzZXIAcGFzcw=="), b"\0user\0pass");
}

#[tokio::test]
async fn reports_go_out_as_text_and_html_over_starttls() {
    let cert = cert();
    let f = files(&cert);
    let sink = SmtpSink::start(&cert, Options::default()).await;
    let config = email(&sink, &f);
    super::email::send_report(
        &config,
        "Oak Primary: filtering report, 2026-11-16 to 2026-11-22",
        "12 blocked attempts".into(),
        "<html><body><h1>Report</h1><table><tr><td>gambling</td></tr></table></body></html>".into(),
        Duration::from_secs(10),
    )
    .await
    .expect("sent");
    let mail = &sink.mails()[0];
    assert!(mail.before("STARTTLS", "AUTH"), "{:?}", mail.commands);
    assert_eq!(
        mail.subject(),
        Some("Oak Primary: filtering report, 2026-11-16 to 2026-11-22")
    );
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/html"), "{}", mail.data);
    assert!(mail.data.contains("12 blocked attempts"), "{}", mail.data);
    assert!(mail.data.contains("<td>gambling</td>"), "{}", mail.data);
}

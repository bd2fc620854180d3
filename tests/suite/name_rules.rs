//! Name rules over real sockets (issue 18, point 1): a misspelt self-harm
//! name no list has is blocked with an EDE text naming the category and the
//! rule, logged with the rule, and alerted to the safeguarding lead once
//! however often it is asked; "essex" and help sites pass; a walled garden
//! only alerts.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const HELP: &str = "samaritans.org\nselfharm.co.uk\n";

/// A school with a webhook for alerts, the help list, and `profile`.
fn school(hook: &TestHttp, profile: TestConfig) -> String {
    profile
        .listen("127.0.0.1:0")
        .upstream("{upstream}")
        .table("log", "time_zone = \"UTC\"")
        .table("alerts", "school_name = \"Oak Primary\"")
        .table(
            "alerts.webhook",
            &format!("url = \"{}\"", hook.url("/hook")),
        )
        .list("help", "help.txt", "help")
        .list("school-gambling", "gambling.txt", "gambling")
        .toml()
}

/// Answered from the upstream (whose test zone does not hold every name),
/// not blocked.
fn assert_passed(reply: &hickory_server::proto::op::Message, name: &str) {
    assert_eq!(extended_error(reply), None, "{name}");
    assert!(!answers(reply).contains(&"A 0.0.0.0".to_string()), "{name}");
}

fn wait_for_alert(hook: &TestHttp) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.alerts().is_empty() {
        assert!(Instant::now() < deadline, "no alert arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time for any second message that should not come.
    std::thread::sleep(Duration::from_millis(500));
    hook.alerts().iter().map(|r| r.json()).collect()
}

#[test]
fn a_misspelt_self_harm_name_is_blocked_logged_and_alerted_once() {
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let config = school(
        &hook,
        TestConfig::new().blocklist("ks2", &["gambling", "self-harm"], ""),
    );
    let lollipop = TestLollipop::start(
        &config,
        &upstream,
        &[("help.txt", HELP), ("gambling.txt", "bet365.com\n")],
    );

    let reply = a(lollipop.address(), "www.su1c1de-methods.example.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    let (_, text) = extended_error(&reply).expect("EDE");
    assert_eq!(
        text,
        "Lollipop: category self-harm blocked for profile ks2 (name rule: 'suicide')"
    );
    // Not the Scunthorpe problem, and help is never blocked.
    for name in [
        "www.essex.ac.uk.",
        "www.sussex.police.uk.",
        "www.selfharm.co.uk.",
    ] {
        assert_passed(&a(lollipop.address(), name), name);
    }
    // A word in a CDN alias blocks nothing: rules read the name asked.
    assert!(
        answers(&a(lollipop.address(), "www.helpline.example.")).contains(&"A 192.0.2.30".into()),
        "the alias was not blocked"
    );
    // A false positive asked a hundred times: one alert, the rest folded.
    for _ in 0..100 {
        a(lollipop.address(), "www.su1c1de-methods.example.");
    }
    let alerts = wait_for_alert(&hook);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0].to_string();
    for expected in [
        "self-harm",
        "www.su1c1de-methods.example",
        "name rule: 'suicide'",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }

    lollipop.flush_log();
    let out = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .arg("--config")
        .arg(lollipop.dir().join("lollipop.toml"))
        .args(["log", "--csv"])
        .output()
        .expect("runs");
    let csv = String::from_utf8_lossy(&out.stdout);
    let row = csv
        .lines()
        .find(|line| line.contains("www.su1c1de-methods.example"))
        .unwrap_or_else(|| panic!("no row: {csv}"));
    for expected in ["self-harm", "name rules", "name rule: 'suicide'"] {
        assert!(row.contains(expected), "{expected} missing: {row}");
    }
}

#[test]
fn in_a_walled_garden_a_rule_hit_only_alerts() {
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let config = school(
        &hook,
        TestConfig::new().profile("ks2", "mode = \"allowlist\"\nallow_categories = []"),
    );
    let lollipop = TestLollipop::start(
        &config,
        &upstream,
        &[("help.txt", HELP), ("gambling.txt", "bet365.com\n")],
    );
    let reply = a(lollipop.address(), "thinspo-daily.example.");
    assert_eq!(answers(&reply), ["A 0.0.0.0"]);
    let (_, text) = extended_error(&reply).expect("EDE");
    assert_eq!(text, "Lollipop: not on the approved list for profile ks2");
    // Help is on in every profile, the walled garden too.
    assert_passed(&a(lollipop.address(), "www.samaritans.org."), "samaritans");
    let alerts = wait_for_alert(&hook);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0].to_string();
    assert!(text.contains("self-harm"), "{text}");
    assert!(text.contains("name rule: 'thinspo'"), "{text}");
}

//! An HA pair, as two real `lollipop` processes on loopback: an allow
//! entry and a room's unlock made on the primary's page are answered the
//! same by the secondary (as `dig` sees it); with the primary killed the
//! secondary answers with the last state, also after its own restart;
//! with the primary back and a further change, they converge, and the
//! primary's report counts the secondary's blocks. The secondary's page
//! refuses changes and setup links; a replayed or altered snapshot is
//! refused, a secondary with the wrong pair key follows nothing, and an
//! alert goes out once, from the box that saw the lookup.

use std::time::Duration;

use crate::support::pair::*;
use crate::support::web::{Reply, WebClient};
use crate::support::*;

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
    let added = add_rule(&page, "bet365.com", "allow", "Year 6 maths: probability");
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
    let refused = add_rule(&secondary_page, "www.example.com", "deny", "not here");
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
    let check = lollipop_cli(&secondary.config(), &["config", "check"]);
    assert!(
        check.contains("runs with the primary's settings last followed"),
        "{check}"
    );
    assert!(
        check.contains("No changes since Lollipop started"),
        "{check}"
    );
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
    let denied = add_rule(&page, "www.example.com", "deny", "not for lessons");
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
    let added = add_rule(&page, "bet365.com", "allow", "Year 6 maths: probability");
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

#[test]
fn an_alert_is_sent_once_by_the_box_that_saw_the_lookup() {
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    // The webhook is a setting the secondary follows.
    let primary = primary_with(
        &upstream,
        &format!("[alerts.webhook]\nurl = \"{}\"", hook.url("/hook")),
    );
    let _primary_process = primary.start();
    let secondary = secondary_of(&primary, PAIR_KEY, &upstream);
    let _secondary_process = secondary.start();
    // Its own file does not block pornography: blocked once it follows.
    answered_within(
        secondary.dns,
        "www.adult-one.example",
        "0.0.0.0",
        Duration::from_secs(20),
    );
    assert_eq!(short(primary.dns, "www.adult-two.example"), "0.0.0.0");
    let about = |name: &str| {
        hook.alerts()
            .iter()
            .filter(|request| request.body_text().contains(name))
            .count()
    };
    wait_until("both boxes alert", || {
        about("adult-one.example") >= 1 && about("adult-two.example") >= 1
    });
    // Time for a second copy to arrive, if anything sent one.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(about("adult-one.example"), 1, "{:?}", hook.alerts());
    assert_eq!(about("adult-two.example"), 1, "{:?}", hook.alerts());
}

/// An allow or deny entry for ks2 made on `page`'s rules form.
fn add_rule(page: &WebClient, domain: &str, action: &str, reason: &str) -> Reply {
    page.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", domain),
            ("action", action),
            ("reason", reason),
        ],
    )
}

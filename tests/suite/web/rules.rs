//! Allow and block entries made on the status page change what `dig` gets,
//! at once, and are recorded with who, when and why.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

#[test]
fn an_admin_allows_a_blocked_site_and_dig_sees_it_at_once() {
    let school = WebSchool::start();
    let before = dig(school.ks2(), &["www.bet365.com", "A", "+short"]);
    assert_eq!(before.trim(), "0.0.0.0");

    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "www.bet365.com"),
            ("action", "allow"),
            ("reason", "Year 6 maths: probability"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = admin.get(reply.location());
    assert!(
        page.body.contains("www.bet365.com is now allowed for ks2"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Year 6 maths: probability"));

    let after = dig(school.ks2(), &["www.bet365.com", "A", "+short"]);
    assert_eq!(after.trim(), "192.0.2.14");
    // Only that profile's entry changed: the parent domain stays blocked.
    assert_eq!(
        dig(school.ks2(), &["bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );

    // Removing it blocks again.
    let rule = school.admin_store().live_rules().expect("rules")[0].id;
    let reply = admin.submit("/rules", &format!("/rules/{rule}/remove"), &[]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );

    let audit = school.audit();
    let added = audit
        .iter()
        .find(|a| a.action == "allow entry added")
        .expect("recorded");
    assert_eq!(added.actor, "tech");
    assert_eq!(added.reason.as_deref(), Some("Year 6 maths: probability"));
    assert!(audit.iter().any(|a| a.action == "allow entry removed"));
}

#[test]
fn a_block_entry_applies_to_its_profile_only_and_survives_a_restart() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "news.example.org"),
            ("action", "deny"),
            ("reason", "not suitable for pupils"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        dig(school.ks2(), &["news.example.org", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    assert_eq!(
        dig(school.staff(), &["news.example.org", "A", "+short"]).trim(),
        "192.0.2.15"
    );
    // The entry lives in the admin database, which a restart reads again.
    let config = school
        .lollipop
        .block_on(school.lollipop.running().reloader.config());
    let rules = lollipop::service::settings::local_rules(&config);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].domain, "news.example.org");
}

#[test]
fn locked_categories_cannot_be_allowed() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "abuse.example.com"),
            ("action", "allow"),
            ("reason", "trying to release a locked list"),
        ],
    );
    assert_eq!(reply.status, 303);
    let answer = dig(school.ks2(), &["abuse.example.com", "A"]);
    assert!(answer.contains("0.0.0.0"), "{answer}");
    assert!(answer.contains("EDE: 15"), "{answer}");
}

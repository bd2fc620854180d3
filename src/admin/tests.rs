use super::*;
use crate::policy::rules::{OverrideScope, OverrideTarget, RuleAction};

fn store() -> (tempfile::TempDir, AdminStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = AdminStore::open(&dir.path().join("admin.db")).expect("open");
    (dir, store)
}

#[test]
fn passwords_are_checked_and_never_stored_plain() {
    let (_dir, store) = store();
    store
        .set_user("head", Role::Viewer, "correct horse battery", "test")
        .expect("add");
    assert!(
        store
            .check_login("head", "correct horse battery")
            .expect("check")
            .is_some()
    );
    assert!(
        store
            .check_login("head", "wrong horse battery")
            .expect("check")
            .is_none()
    );
    assert!(
        store
            .check_login("nobody", "correct horse battery")
            .expect("check")
            .is_none()
    );
    // Written rows may still be in the write-ahead log.
    let mut raw = std::fs::read(store.path()).expect("read db");
    raw.extend(std::fs::read(store.path().with_extension("db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("correct horse battery"));
    assert!(text.contains("$argon2id$"));
}

#[test]
fn short_passwords_and_odd_names_are_refused() {
    let (_dir, store) = store();
    let error = store
        .set_user("head", Role::Viewer, "short", "test")
        .unwrap_err();
    assert!(error.to_string().contains("at least 10"), "{error}");
    let error = store
        .set_user("<script>", Role::Viewer, "long enough password", "test")
        .unwrap_err();
    assert!(error.to_string().contains("user name"), "{error}");
}

#[test]
fn override_codes_work_only_for_roles_that_may_use_them() {
    let (_dir, store) = store();
    store
        .set_user("ms.khan", Role::Teacher, "a teacher password", "t")
        .expect("add");
    store
        .set_user("head", Role::Viewer, "a viewer password", "t")
        .expect("add");
    store.set_code("ms.khan", Some("417293")).expect("code");
    store.set_code("head", Some("551234")).expect("code");
    assert!(
        store
            .check_code("ms.khan", "417293")
            .expect("check")
            .is_some()
    );
    assert!(
        store
            .check_code("ms.khan", "417294")
            .expect("check")
            .is_none()
    );
    assert!(store.check_code("head", "551234").expect("check").is_none());
    assert!(store.set_code("ms.khan", Some("12")).is_err());
}

#[test]
fn a_setup_link_works_once() {
    let (_dir, store) = store();
    assert!(!store.has_admin().expect("query"));
    let token = store.new_setup_token().expect("token");
    assert!(store.setup_token_valid(&token).expect("valid"));
    store
        .redeem_setup_token(&token, "tech", "a long admin password")
        .expect("redeem");
    assert!(store.has_admin().expect("query"));
    let again = store.redeem_setup_token(&token, "tech2", "a long admin password");
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("expired or was already used")
    );
    assert!(!store.setup_token_valid("not a token").expect("valid"));
}

#[test]
fn a_spare_setup_link_dies_when_the_first_admin_is_made() {
    let (_dir, store) = store();
    let first = store.new_setup_token().expect("token");
    let spare = store.new_setup_token().expect("token");
    store
        .redeem_setup_token(&first, "head", "the head's own password")
        .expect("redeem");
    assert!(!store.setup_token_valid(&spare).expect("valid"));
    // Neither the admin's password nor another name can be set with it.
    for name in ["head", "intruder"] {
        let taken = store.redeem_setup_token(&spare, name, "a pupil's new password");
        assert!(taken.is_err(), "{name}");
    }
    assert!(
        store
            .check_login("head", "the head's own password")
            .expect("login")
            .is_some()
    );
    assert!(store.user("intruder").expect("users").is_none());
    // And no new link is made while an admin exists.
    let refused = store.new_setup_token().unwrap_err().to_string();
    assert!(refused.contains("lollipop passwd"), "{refused}");
}

#[test]
fn an_admin_made_on_the_console_ends_the_setup_links() {
    let (_dir, store) = store();
    let link = store.new_setup_token().expect("token");
    store
        .set_user("tech", Role::Admin, "a long console password", "console")
        .expect("passwd");
    assert!(!store.setup_token_valid(&link).expect("valid"));
    assert!(
        store
            .redeem_setup_token(&link, "tech", "someone else's password")
            .is_err()
    );
    assert!(
        store
            .check_login("tech", "a long console password")
            .expect("login")
            .is_some()
    );
}

#[test]
fn two_links_redeemed_at_once_make_one_admin() {
    let (dir, store) = store();
    let links = [
        store.new_setup_token().expect("token"),
        store.new_setup_token().expect("token"),
    ];
    let path = dir.path().join("admin.db");
    // Two connections, as the page and the console would have.
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = links
            .iter()
            .enumerate()
            .map(|(i, link)| {
                let path = path.clone();
                scope.spawn(move || {
                    let store = AdminStore::open(&path).expect("open");
                    store
                        .redeem_setup_token(link, &format!("admin{i}"), "a long admin password")
                        .is_ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let admins = store
        .users()
        .expect("users")
        .into_iter()
        .filter(|user| user.role == Role::Admin)
        .count();
    assert_eq!(admins, 1);
}

#[test]
fn api_tokens_are_checked_by_hash_and_can_be_revoked() {
    let (_dir, store) = store();
    let token = store
        .new_api_token("grafana", Role::Viewer, "tech")
        .expect("token");
    assert_eq!(
        store.check_api_token(&token).expect("check"),
        Some(("grafana".to_string(), Role::Viewer))
    );
    let id = store.api_tokens().expect("list")[0].id;
    assert!(store.revoke_api_token(id).expect("revoke"));
    assert_eq!(store.check_api_token(&token).expect("check"), None);
}

#[test]
fn a_new_rule_for_the_same_domain_replaces_the_old_one() {
    let (_dir, store) = store();
    store
        .add_rule(
            "ks2",
            "WWW.Example.org.",
            RuleAction::Allow,
            "project work",
            "tech",
        )
        .expect("add");
    let second = store
        .add_rule(
            "ks2",
            "www.example.org",
            RuleAction::Deny,
            "misused",
            "tech",
        )
        .expect("add");
    let live = store.live_rules().expect("live");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].action, RuleAction::Deny);
    assert_eq!(live[0].domain, "www.example.org");
    assert_eq!(store.all_rules().expect("all").len(), 2);
    assert!(
        store
            .remove_rule(second.id, "tech")
            .expect("remove")
            .is_some()
    );
    assert!(store.live_rules().expect("live").is_empty());
    assert!(
        store
            .remove_rule(second.id, "tech")
            .expect("remove")
            .is_none()
    );
    assert!(
        store
            .add_rule("ks2", "example.org", RuleAction::Allow, " ", "t")
            .is_err()
    );
    assert!(
        store
            .add_rule("ks2", "not a domain!", RuleAction::Allow, "why not", "t")
            .is_err()
    );
}

#[test]
fn overrides_are_live_until_they_expire_or_are_ended() {
    let (_dir, store) = store();
    let target = OverrideTarget::Domain("example.org".into());
    let scope = OverrideScope::Network("10.0.20.0/24".parse().expect("net"));
    let row = store
        .add_override(
            &target,
            &scope,
            "lesson on volcanoes",
            "ms.khan",
            now_ms() + 60_000,
        )
        .expect("add");
    assert_eq!(store.live_overrides().expect("live"), vec![row.clone()]);
    let ended = store
        .end_override(row.id, "tech")
        .expect("end")
        .expect("was live");
    assert_eq!(ended.ended_by.as_deref(), Some("tech"));
    assert!(store.live_overrides().expect("live").is_empty());
    assert!(
        store
            .add_override(&target, &scope, "past", "t", now_ms() - 1)
            .is_err()
    );
}

#[test]
fn review_dates_must_be_real() {
    assert!(reviews::check_date("2026-02-29").is_err());
    assert!(reviews::check_date("2028-02-29").is_ok());
    assert!(reviews::check_date("29/02/2028").is_err());
    let (_dir, store) = store();
    let review = store
        .add_review(
            "2026-09-10",
            "Head, DSL, technician",
            "blocked categories, log",
            "keep gambling locked",
            "head",
        )
        .expect("add");
    assert_eq!(store.reviews().expect("list"), vec![review]);
}

#[test]
fn no_setup_link_is_made_or_honoured_while_a_damaged_store_is_set_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("admin.db");
    let store = AdminStore::open(&path).expect("open");
    let minted_before = store.new_setup_token().expect("token");
    std::fs::write(dir.path().join("admin.db.damaged-1780000000"), b"junk").expect("copy");
    // From the console (`lollipop setup-link`) or the page's start-up alike.
    let refused = store.new_setup_token().unwrap_err().to_string();
    assert!(refused.contains("lollipop passwd"), "{refused}");
    assert!(!store.setup_token_valid(&minted_before).expect("valid"));
    assert!(
        store
            .redeem_setup_token(&minted_before, "intruder", "a pupil's new password")
            .is_err()
    );
    // The console's way back in still works.
    store
        .set_user("it.lead", Role::Admin, "a long console password", "console")
        .expect("passwd");
    assert!(store.has_admin().expect("admins"));
}

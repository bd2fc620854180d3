//! The JSON API: tokens or a session, roles enforced, JSON errors (401 when
//! not signed in, 400 for bad parameters, 403 for a role without the
//! right), and answers that match what the resolver does.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use serde_json::Value;

fn token(school: &WebSchool, role: Role) -> String {
    school
        .admin_store()
        .new_api_token(&format!("{} script", role.as_str()), role, "test")
        .expect("token")
}

struct Api<'a> {
    client: WebClient,
    bearer: String,
    _school: &'a WebSchool,
}

impl Api<'_> {
    fn get(&self, path: &str) -> (u16, Value) {
        let reply = self
            .client
            .get_with(path, &[("Authorization", &self.bearer)]);
        assert!(
            reply
                .header("content-type")
                .unwrap_or("")
                .contains("application/json"),
            "{path}: {:?} {}",
            reply.headers,
            reply.body
        );
        let json = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", reply.body));
        (reply.status, json)
    }
}

fn api(school: &WebSchool, role: Role) -> Api<'_> {
    Api {
        client: school.client(),
        bearer: format!("Bearer {}", token(school, role)),
        _school: school,
    }
}

#[test]
fn without_a_token_or_with_a_wrong_one_every_call_is_401_json() {
    let school = WebSchool::start();
    let client = school.client();
    for path in [
        "/api/v1/status",
        "/api/v1/blocked",
        "/api/v1/check?name=bet365.com&profile=ks2",
        "/api/v1/overrides",
    ] {
        for headers in [vec![], vec![("Authorization", "Bearer lp_not-a-token")]] {
            let reply = client.get_with(path, &headers);
            assert_eq!(reply.status, 401, "{path}");
            assert!(
                reply.header("content-type").unwrap_or("").contains("json"),
                "{path}"
            );
            let json: Value = serde_json::from_str(&reply.body).expect("json");
            assert!(
                json["error"].as_str().expect("message").contains("Bearer"),
                "{path}"
            );
            assert!(reply.header("www-authenticate").is_some());
        }
    }
}

#[test]
fn status_counts_todays_lookups_and_a_session_works_too() {
    let school = WebSchool::start();
    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    assert_eq!(
        dig(school.ks2(), &["www.example.com", "A", "+short"]).trim(),
        "192.0.2.10"
    );
    school.lollipop.flush_log();
    let viewer = api(&school, Role::Viewer);
    let (status, json) = viewer.get("/api/v1/status");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["resolver"]["up"], true);
    assert_eq!(json["log"]["healthy"], true);
    assert!(json["lists"]["domains"].as_u64().expect("domains") >= 3);
    assert!(
        json["today"]["queries"].as_i64().expect("queries") >= 2,
        "{json}"
    );
    assert!(
        json["today"]["blocked"].as_i64().expect("blocked") >= 1,
        "{json}"
    );
    assert!(
        json["today"]["by_profile"]["ks2"]["blocked"]
            .as_i64()
            .expect("ks2")
            >= 1
    );
    assert_eq!(json["overrides_in_force"], 0);

    // A signed-in head teacher's browser session reads it as well.
    let head = school.signed_in("head", Role::Viewer);
    let reply = head.get("/api/v1/status");
    assert_eq!(reply.status, 200, "{}", reply.body);
    // A teacher's token may not read the log.
    let teacher = api(&school, Role::Teacher);
    let (status, json) = teacher.get("/api/v1/status");
    assert_eq!(status, 403, "{json}");
    let (status, _) = teacher.get("/api/v1/blocked");
    assert_eq!(status, 403);
}

#[test]
fn blocked_lookups_are_listed_with_filters_and_bad_filters_are_400() {
    let school = WebSchool::start();
    for name in ["www.bet365.com", "www.youtube.com"] {
        assert_eq!(dig(school.ks2(), &[name, "A", "+short"]).trim(), "0.0.0.0");
    }
    assert_eq!(
        dig(school.staff(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    school.lollipop.flush_log();
    let viewer = api(&school, Role::Viewer);

    let (status, json) = viewer.get("/api/v1/blocked");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["total"], 3, "{json}");
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["name"], "www.bet365.com", "newest first");
    assert_eq!(rows[0]["profile"], "staff");

    let names = |json: &Value| -> Vec<String> {
        json["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_string())
            .collect()
    };
    let (_, json) = viewer.get("/api/v1/blocked?category=video");
    assert_eq!(names(&json), ["www.youtube.com"]);
    let (_, json) = viewer.get("/api/v1/blocked?profile=ks2&name=bet");
    assert_eq!(names(&json), ["www.bet365.com"]);
    assert_eq!(json["rows"][0]["category"], "gambling");
    let (_, json) = viewer.get("/api/v1/blocked?limit=1");
    assert_eq!(names(&json).len(), 1);
    assert_eq!(json["total"], 3);
    let (_, json) = viewer.get("/api/v1/blocked?device=Y5-iPad");
    assert_eq!(json["total"], 3, "the test's device name: {json}");
    let (_, json) = viewer.get("/api/v1/blocked?from=2020-01-01&to=2020-01-02");
    assert_eq!(json["total"], 0);
    let now = lollipop::clock::now_unix_ms();
    let (_, json) = viewer.get(&format!("/api/v1/blocked?from={}", now - 3_600_000));
    assert_eq!(json["total"], 3);

    for (query, wanted) in [
        ("limit=0", "limit"),
        ("limit=lots", "limit"),
        ("limit=100000", "limit"),
        ("from=2026-13-01", "not a date"),
        ("from=yesterday", "not a date"),
        ("from=2026-01-02&to=2026-01-01", "after"),
        ("profile=nursery", "no profile"),
        ("colour=red", "unknown parameter"),
    ] {
        let (status, json) = viewer.get(&format!("/api/v1/blocked?{query}"));
        assert_eq!(status, 400, "{query}: {json}");
        let message = json["error"].as_str().expect("message");
        assert!(message.contains(wanted), "{query}: {message}");
    }
}

#[test]
fn check_explains_the_decision_like_the_resolver_makes_it() {
    let school = WebSchool::start();
    let teacher = api(&school, Role::Teacher);
    let (status, json) = teacher.get("/api/v1/check?name=WWW.Bet365.com.&profile=ks2");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["name"], "www.bet365.com");
    assert_eq!(json["decision"], "blocked");
    assert_eq!(json["why"]["category"], "gambling");
    assert_eq!(json["why"]["list"], "test-gambling");
    assert_eq!(json["why"]["rule"], "bet365.com");

    let (_, json) = teacher.get("/api/v1/check?name=www.youtube.com&profile=staff");
    assert_eq!(json["decision"], "allowed");
    let (_, json) = teacher.get("/api/v1/check?name=abuse.example.com&profile=staff");
    assert_eq!(json["decision"], "blocked (locked)");
    assert_eq!(json["why"]["locked"], true);
    let (_, json) = teacher.get("/api/v1/check?name=www.google.com&client=127.0.0.1");
    assert_eq!(json["profile"], "ks2");
    assert_eq!(json["decision"], "allowed");
    assert_eq!(json["safe_search"]["target"], "forcesafesearch.google.com");

    // A device override shows as the reason a blocked name answers.
    let store = school.admin_store();
    store
        .add_override(
            &lollipop::policy::rules::OverrideTarget::Domain("youtube.com".into()),
            &lollipop::policy::rules::OverrideScope::Device("127.0.0.1".parse().expect("ip")),
            "science video",
            "ms.khan",
            lollipop::clock::now_unix_ms() + 600_000,
        )
        .expect("override");
    school
        .lollipop
        .block_on(school.lollipop.running().reloader.apply_overrides())
        .expect("apply");
    let (_, json) = teacher.get("/api/v1/check?name=www.youtube.com&client=127.0.0.1");
    assert_eq!(json["decision"], "unlocked by a staff override");
    assert!(json["released_by_override"].as_i64().is_some(), "{json}");
    let (status, json) = teacher.get("/api/v1/overrides");
    assert_eq!(status, 200);
    assert_eq!(json["overrides"][0]["granted_by"], "ms.khan");
    assert_eq!(json["overrides"][0]["target"]["value"], "youtube.com");

    for (query, wanted) in [
        ("profile=ks2", "name"),
        ("name=bet365.com", "profile=<name> or client="),
        ("name=bet365.com&profile=ks2&client=127.0.0.1", "not both"),
        ("name=bet365.com&profile=nursery", "no profile"),
        ("name=bet365.com&client=not-an-ip", "not an IP address"),
        ("name=bad..name&profile=ks2", "not a website name"),
    ] {
        let (status, json) = teacher.get(&format!("/api/v1/check?{query}"));
        assert_eq!(status, 400, "{query}: {json}");
        let message = json["error"].as_str().expect("message");
        assert!(message.contains(wanted), "{query}: {message}");
    }
}

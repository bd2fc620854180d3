//! Unlocks that cannot undo safeguarding: a name in a category that alerts
//! the safeguarding lead is released only by the DSL or the admin, for one
//! device or a staff room, never for a room or network of children, and
//! always with a reason the governors can follow.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

const CODE: &str = "581204";

/// Two listeners (ks2 pupils, staff) with known ports; `news.example.org` is
/// listed as pornography (it alerts), `bet365.com` as gambling (it does not),
/// and `www.example.com` as gambling while its parent `example.com` is
/// listed as pornography.
fn school() -> WebSchool {
    school_alerting(None)
}

/// [`school`], with alerts going to `hook` when given.
fn school_alerting(hook: Option<&TestHttp>) -> WebSchool {
    let upstream = TestUpstream::start();
    let web = free_port();
    let (ks2, staff) = (free_port(), free_port());
    let config = TestConfig::school()
        .list("test-adult", "adult.txt", "pornography")
        .listen_for(&format!("127.0.0.1:{ks2}"), "ks2")
        .listen_for(&format!("127.0.0.1:{staff}"), "staff")
        .section("[[clients]]\nnetwork = \"127.0.0.64/26\"\nprofile = \"ks2\"")
        .section("[[clients]]\nnetwork = \"127.0.1.0/24\"\nprofile = \"staff\"")
        .table("log", "time_zone = \"UTC\"")
        .table("alerts", "school_name = \"Hilltop Primary\"")
        .table("web", &format!("listen = [\"127.0.0.1:{web}\"]"))
        .blocklist("ks2", &["gambling", "video", "pornography"], "")
        .blocklist(
            "staff",
            &["gambling", "pornography"],
            "audience = \"staff\"",
        )
        .toml();
    let lists: &[(&str, &str)] = &[
        ("gambling.txt", "bet365.com\nwww.example.com\n"),
        ("video.txt", "youtube.com\n"),
        ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
        ("adult.txt", "news.example.org\nexample.com\n"),
    ];
    let url = hook.map(|hook| hook.url("/hook"));
    let lollipop = TestLollipop::start_with(&config, &upstream, lists, move |config| {
        config.alerts.webhook = url.map(|url| lollipop::alerts::WebhookConfig {
            url,
            token_file: None,
        });
    });
    WebSchool {
        upstream,
        lollipop,
        web: std::net::SocketAddr::from(([127, 0, 0, 1], web)),
    }
}

fn short(server: std::net::SocketAddr, source: &str, name: &str) -> String {
    dig(server, &["-b", source, name, "A", "+short"])
        .trim()
        .to_string()
}

const GOOD_REASON: &str = "RSE lesson for the Year 6 group: NHS puberty pages";

fn unlock(client: &WebClient, fields: &[(&str, &str)]) -> Reply {
    client.submit("/unlock", "/unlock", fields)
}

#[test]
fn a_teacher_cannot_unlock_a_category_that_alerts_for_anyone() {
    let school = school();
    school.teacher_with_code("ms.khan", CODE);
    let teacher = school.signed_in("mr.jones", Role::Teacher);
    let device = "127.0.0.2";
    for (client, code) in [(school.client(), Some(CODE)), (teacher, None)] {
        for site in ["news.example.org", "www.example.com"] {
            let mut fields = vec![
                ("domain", site),
                ("scope", "device"),
                ("device", device),
                ("duration", "lesson"),
                ("reason", GOOD_REASON),
            ];
            if let Some(code) = code {
                fields.extend([("name", "ms.khan"), ("code", code)]);
            }
            let reply = unlock(&client, &fields);
            assert_eq!(reply.status, 403, "{site}: {}", reply.body);
            assert!(
                reply
                    .body
                    .contains("Only the designated safeguarding lead or the admin"),
                "{}",
                reply.body
            );
            assert!(reply.body.contains("pornography"), "{}", reply.body);
        }
    }
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty(),
        "nothing was unlocked"
    );
    assert_eq!(short(school.ks2(), device, "news.example.org"), "0.0.0.0");
    assert_eq!(short(school.ks2(), device, "www.example.com"), "0.0.0.0");
    let refused = school
        .audit()
        .into_iter()
        .filter(|entry| entry.action == "override refused")
        .count();
    assert_eq!(refused, 4, "every refusal is in the audit trail");

    // The same teacher may still unlock a category that does not alert.
    let reply = unlock(
        &school.client(),
        &[
            ("name", "ms.khan"),
            ("code", CODE),
            ("domain", "bet365.com"),
            ("scope", "device"),
            ("device", device),
            ("duration", "lesson"),
            ("reason", "probability"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
}

#[test]
fn the_dsl_unlocks_an_alerting_category_for_one_device_or_a_staff_room_only() {
    let hook = TestHttp::start();
    let school = school_alerting(Some(&hook));
    let dsl = school.signed_in("mrs.patel", Role::Dsl);
    let room = |address: std::net::SocketAddr| format!("listener:{address}");
    let (ks2_room, staff_room) = (room(school.ks2()), room(school.staff()));
    let refused = [
        (vec![("scope", "network")], "never for a room or network"),
        (
            vec![("scope", "room"), ("room", ks2_room.as_str())],
            "never for a room or network",
        ),
        (
            vec![("scope", "room"), ("room", "network:127.0.0.64/26")],
            "never for a room or network",
        ),
        // A staff room reached by a children's source-network rule counts
        // as children too.
        (
            vec![("scope", "room"), ("room", staff_room.as_str())],
            "includes children (Key Stage 2)",
        ),
    ];
    for (scope, says) in refused {
        let mut fields = vec![
            ("domain", "news.example.org"),
            ("duration", "lesson"),
            ("reason", GOOD_REASON),
        ];
        fields.extend(scope.iter().copied());
        let reply = unlock(&dsl, &fields);
        assert_eq!(reply.status, 403, "{scope:?}: {}", reply.body);
        assert!(reply.body.contains(says), "{scope:?}: {}", reply.body);
    }
    // A reason of no real length is refused, even for one device.
    for reason in ["abc", "for a lesson", "aaaaaaaaaaaaaaaaaaaaaaaa"] {
        let reply = unlock(
            &dsl,
            &[
                ("domain", "news.example.org"),
                ("scope", "device"),
                ("device", "127.0.0.2"),
                ("duration", "lesson"),
                ("reason", reason),
            ],
        );
        assert_eq!(reply.status, 403, "{reason}: {}", reply.body);
        assert!(
            reply.body.contains("at least 20 characters"),
            "{}",
            reply.body
        );
    }
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty()
    );

    // One device, with a real reason: released for that device only.
    let reply = unlock(
        &dsl,
        &[
            ("domain", "news.example.org"),
            ("scope", "device"),
            ("device", "127.0.0.2"),
            ("duration", "lesson"),
            ("reason", GOOD_REASON),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        short(school.ks2(), "127.0.0.2", "news.example.org"),
        "192.0.2.15"
    );
    assert_eq!(
        short(school.ks2(), "127.0.0.3", "news.example.org"),
        "0.0.0.0"
    );
    let granted = school
        .audit()
        .into_iter()
        .find(|entry| entry.action == "safeguarding override granted")
        .expect("the release is audited as a safeguarding release");
    assert_eq!(granted.actor, "mrs.patel");
    assert!(granted.detail.contains("pornography"), "{}", granted.detail);

    // The release alerts the safeguarding lead (the refusals did not).
    let notices = || -> Vec<String> {
        hook.alerts()
            .iter()
            .map(|request| request.body_text())
            .filter(|body| body.contains("\"kind\":\"system\""))
            .collect()
    };
    wait_until("the release's notice at the webhook", || {
        !notices().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let notices = notices();
    assert_eq!(
        notices.len(),
        1,
        "one notice, for the one release: {notices:?}"
    );
    for words in ["mrs.patel", "news.example.org", "pornography", "RSE lesson"] {
        assert!(
            notices[0].contains(words),
            "{words:?} not in {}",
            notices[0]
        );
    }
}

#[test]
fn an_admin_may_release_an_alerting_category_for_a_staff_network() {
    let school = school();
    let admin = school.signed_in("it.lead", Role::Admin);
    let reply = unlock(
        &admin,
        &[
            ("domain", "news.example.org"),
            ("scope", "room"),
            ("room", "network:127.0.1.0/24"),
            ("duration", "hour"),
            ("reason", GOOD_REASON),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        short(school.staff(), "127.0.1.9", "news.example.org"),
        "192.0.2.15"
    );
    assert_eq!(
        short(school.ks2(), "127.0.0.70", "news.example.org"),
        "0.0.0.0"
    );
}

#[test]
fn only_an_admin_makes_a_dsl() {
    let school = school();
    let dsl = school.signed_in("mrs.patel", Role::Dsl);
    let reply = dsl.submit(
        "/unlock",
        "/users",
        &[
            ("name", "pupil"),
            ("role", "dsl"),
            ("password", "a long enough password"),
            ("confirm", "a long enough password"),
        ],
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    let admin = school.signed_in("it.lead", Role::Admin);
    let users = admin.get("/users");
    assert!(
        users.body.contains("<option value=\"dsl\">"),
        "{}",
        users.body
    );
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "mr.singh"),
            ("role", "dsl"),
            ("password", "a long enough password"),
            ("confirm", "a long enough password"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let made = school
        .admin_store()
        .users()
        .expect("users")
        .into_iter()
        .find(|user| user.name == "mr.singh")
        .expect("user made");
    assert_eq!(made.role, Role::Dsl);
}

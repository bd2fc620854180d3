//! Staff override codes on the status page: a teacher's code unlocks a site
//! for one room, device or the whole network at once (as `dig` sees it),
//! never a locked category; overrides end early or expire by themselves.

use std::time::{Duration, Instant};

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

const CODE: &str = "472913";

/// The school with its DNS listeners on known ports, so a room override
/// (by listener address) can tell the ks2 and staff listeners apart.
fn school() -> WebSchool {
    let ports = [free_port(), free_port()];
    WebSchool::start_with(|config| {
        for (listen, port) in config.listen.iter_mut().zip(ports) {
            *listen.address.get_mut() = format!("127.0.0.1:{port}");
        }
    })
}

fn short(server: std::net::SocketAddr, name: &str) -> String {
    dig(server, &[name, "A", "+short"]).trim().to_string()
}

fn room_of(school: &WebSchool) -> String {
    format!("listener:{}", school.ks2())
}

#[test]
fn a_teacher_code_unlocks_a_site_for_one_room_at_once_and_it_can_be_ended_early() {
    let school = school();
    school.teacher_with_code("ms.khan", CODE);
    assert_eq!(short(school.ks2(), "www.youtube.com"), "0.0.0.0");
    assert_eq!(short(school.ks2(), "www.bet365.com"), "0.0.0.0");
    assert_eq!(short(school.staff(), "www.bet365.com"), "0.0.0.0");

    // No sign-in: the teacher's name and personal code.
    let pupil_device = school.client();
    let room = room_of(&school);
    let reply = pupil_device.submit(
        "/unlock",
        "/unlock",
        &[
            ("name", "ms.khan"),
            ("code", CODE),
            ("domain", "bet365.com"),
            ("scope", "room"),
            ("room", &room),
            ("duration", "lesson"),
            ("reason", "Year 6 maths: probability"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(reply.location().starts_with("/unlock?done="));
    let page = pupil_device.get(reply.location());
    assert!(
        page.body
            .contains("bet365.com is unlocked for Key Stage 2 network"),
        "{}",
        page.body
    );

    // At once, on that listener only.
    assert_eq!(short(school.ks2(), "www.bet365.com"), "192.0.2.14");
    assert_eq!(short(school.staff(), "www.bet365.com"), "0.0.0.0");
    // Another blocked site in the room stays blocked.
    assert_eq!(short(school.ks2(), "www.youtube.com"), "0.0.0.0");

    // The teacher signs in, sees it, and ends it early.
    let teacher = school.client();
    assert_eq!(
        teacher
            .sign_in("ms.khan", &WebSchool::password("ms.khan"))
            .status,
        303
    );
    let list = teacher.get("/overrides");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Year 6 maths: probability"));
    assert!(list.body.contains("ms.khan"));
    let id = school.admin_store().live_overrides().expect("live")[0].id;
    let reply = teacher.submit("/overrides", &format!("/overrides/{id}/end"), &[]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(short(school.ks2(), "www.bet365.com"), "0.0.0.0");
    let again = teacher.submit("/overrides", &format!("/overrides/{id}/end"), &[]);
    assert_eq!(again.status, 400, "ending twice is refused");

    let audit = school.audit();
    let granted = audit
        .iter()
        .find(|a| a.action == "override granted")
        .expect("grant audited");
    assert_eq!(granted.actor, "ms.khan");
    assert_eq!(granted.reason.as_deref(), Some("Year 6 maths: probability"));
    assert!(
        granted.detail.contains("with their override code"),
        "{}",
        granted.detail
    );
    assert!(
        audit
            .iter()
            .any(|a| a.action == "override ended early" && a.actor == "ms.khan")
    );
}

#[test]
fn a_device_override_leaves_other_devices_blocked() {
    let school = school();
    let teacher = school.signed_in("mr.jones", Role::Teacher);
    // Signed in: no code needed.
    let form = teacher.get("/unlock?domain=www.youtube.com&client=127.0.0.2");
    assert_eq!(form.status, 200);
    assert!(
        !form.body.contains("id=\"code\""),
        "no code asked when signed in"
    );
    assert!(form.body.contains("value=\"www.youtube.com\""));
    assert!(form.body.contains("value=\"127.0.0.2\""));
    let reply = teacher.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "youtube.com"),
            ("scope", "device"),
            ("device", "127.0.0.2"),
            ("duration", "hour"),
            ("reason", "Science video on volcanoes"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(reply.location().starts_with("/overrides?done="));
    let from = |source: &str| {
        dig(
            school.ks2(),
            &["-b", source, "www.youtube.com", "A", "+short"],
        )
        .trim()
        .to_string()
    };
    // Unlocked, and still in YouTube's restricted mode (the ks2 profile's).
    assert_eq!(from("127.0.0.2"), "restrict.youtube.com.\n216.239.38.120");
    assert_eq!(from("127.0.0.1"), "0.0.0.0");
    let live = school.admin_store().live_overrides().expect("live");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].granted_by, "mr.jones");
}

#[test]
fn the_whole_network_can_be_unlocked_but_never_a_locked_category() {
    let school = school();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "abuse.example.com"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", "trying to release a locked list"),
        ],
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("nobody can unlock"), "{}", reply.body);
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty()
    );
    assert!(dig(school.ks2(), &["abuse.example.com", "A"]).contains("0.0.0.0"));
    assert!(
        school
            .audit()
            .iter()
            .any(|a| a.action == "override refused" && a.detail.contains("locked"))
    );

    let reply = admin.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "bet365.com"),
            ("scope", "network"),
            ("duration", "day"),
            ("reason", "Whole-school assembly on online gambling"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(short(school.ks2(), "www.bet365.com"), "192.0.2.14");
    assert_eq!(short(school.staff(), "www.bet365.com"), "192.0.2.14");
}

#[test]
fn wrong_codes_are_refused_audited_and_rate_limited() {
    let school = school();
    school.teacher_with_code("ms.khan", CODE);
    // A viewer's code (set behind the page's back) does not unlock anything.
    school.add_user("head", Role::Viewer, "head has a long password");
    school
        .admin_store()
        .set_code("head", Some(CODE))
        .expect("set code");
    let client = school.client();
    let room = room_of(&school);
    let attempt = |name: &str, code: &str| {
        client.submit(
            "/unlock",
            "/unlock",
            &[
                ("name", name),
                ("code", code),
                ("domain", "bet365.com"),
                ("scope", "room"),
                ("room", &room),
                ("duration", "lesson"),
                ("reason", "probability lesson"),
            ],
        )
    };
    assert_eq!(attempt("head", CODE).status, 401);
    let wrong = attempt("ms.khan", "000000");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("do not match"));
    // What was typed is kept, except the code.
    assert!(wrong.body.contains("value=\"bet365.com\""));
    assert!(!wrong.body.contains("000000"));
    assert_eq!(short(school.ks2(), "www.bet365.com"), "0.0.0.0");
    assert!(
        school
            .audit()
            .iter()
            .any(|a| a.action == "override code refused" && a.detail.contains("ms.khan"))
    );
    for _ in 0..4 {
        assert_eq!(attempt("ms.khan", "111111").status, 401);
    }
    // Five failures of this name from this machine (the limit is per
    // address and name): even the right code waits now.
    let held = attempt("ms.khan", CODE);
    assert_eq!(held.status, 429, "{}", held.body);
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty()
    );
}

#[test]
fn bad_input_is_refused_with_what_to_fix_and_script_is_escaped() {
    let school = school();
    let teacher = school.signed_in("mr.jones", Role::Teacher);
    let room = room_of(&school);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("domain", "bet365.com"),
                ("scope", "room"),
                ("room", &room),
                ("duration", "week"),
                ("reason", "a lesson"),
            ],
            "Choose how long",
        ),
        (
            &[
                ("domain", "bet365.com"),
                ("scope", "room"),
                ("room", "listener:10.9.9.9:53"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "Choose the room",
        ),
        (
            &[
                ("domain", "bet365.com"),
                ("scope", "device"),
                ("device", "not-a-device"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "neither an IP address",
        ),
        (
            &[
                ("domain", ""),
                ("scope", "network"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "Type the website",
        ),
        (
            &[
                ("domain", "bet365.com"),
                ("scope", "network"),
                ("duration", "lesson"),
                ("reason", ""),
            ],
            "give a reason",
        ),
        (
            &[
                ("domain", "<script>alert(1)</script>"),
                ("scope", "network"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "is not a website name",
        ),
        (
            &[
                ("domain", "bet365.com"),
                ("scope", "everywhere"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "Choose who",
        ),
        (
            &[
                ("domain", "www.example.com"),
                ("scope", "network"),
                ("duration", "lesson"),
                ("reason", "a lesson"),
            ],
            "not blocked for anyone",
        ),
    ];
    for (fields, expected) in cases {
        let reply = teacher.submit("/unlock", "/unlock", fields);
        assert_eq!(reply.status, 400, "{fields:?}: {}", reply.body);
        assert!(
            reply.body.contains(expected),
            "{fields:?}: wanted '{expected}' in {}",
            reply.body
        );
        assert!(
            !reply.body.contains("<script>alert"),
            "escaped: {}",
            reply.body
        );
    }
    let huge = "x".repeat(600);
    let reply = teacher.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "bet365.com"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", &huge),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty()
    );

    // A prefilled name from the block page's link is escaped too.
    let page = teacher.get("/unlock?domain=%3Cscript%3Ealert(1)%3C/script%3E&client=%22%3E%3Cb%3E");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"));
    assert!(page.body.contains("&#60;script&#62;"), "{}", page.body);
    assert!(!page.body.contains("\"><b>"));
}

#[test]
fn forms_need_their_token_and_the_override_list_needs_a_right() {
    let school = school();
    school.teacher_with_code("ms.khan", CODE);
    let anonymous = school.client();
    let room = room_of(&school);
    // No token: refused before the code is even looked at.
    let reply = anonymous.post(
        "/unlock",
        &[
            ("name", "ms.khan"),
            ("code", CODE),
            ("domain", "bet365.com"),
            ("scope", "room"),
            ("room", &room),
            ("duration", "lesson"),
            ("reason", "probability lesson"),
        ],
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        school
            .admin_store()
            .live_overrides()
            .expect("live")
            .is_empty()
    );

    // Nobody signed in: the list sends you to sign in; ending is refused.
    let list = anonymous.get("/overrides");
    assert_eq!(list.status, 303);
    assert!(list.location().starts_with("/login"));

    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "bet365.com"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", "assembly"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let id = school.admin_store().live_overrides().expect("live")[0].id;

    // A viewer (head, DSL) sees the overrides but cannot end one.
    let viewer = school.signed_in("head", Role::Viewer);
    let list = viewer.get("/overrides");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("assembly"));
    assert!(!list.body.contains("End now"));
    let token = csrf_in(&list.body);
    let end = viewer.post(&format!("/overrides/{id}/end"), &[("csrf", &token)]);
    assert_eq!(end.status, 403);
    // Without the form token, even an admin's end is refused.
    let end = admin.post(&format!("/overrides/{id}/end"), &[]);
    assert_eq!(end.status, 403);
    assert_eq!(
        school.admin_store().live_overrides().expect("live").len(),
        1
    );
}

#[test]
fn an_override_expires_by_itself_within_the_sweep_period() {
    let school = school();
    let admin = school.signed_in("tech", Role::Admin);
    let room = room_of(&school);
    let reply = admin.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "bet365.com"),
            ("scope", "room"),
            ("room", &room),
            ("duration", "lesson"),
            ("reason", "probability lesson"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(short(school.ks2(), "www.bet365.com"), "192.0.2.14");

    // The lesson ends early: two seconds from now, recorded in the store
    // only. Nothing else happens; the sweeper must notice on its own.
    let soon = lollipop::clock::now_unix_ms() + 2_000;
    let db = rusqlite::Connection::open(school.lollipop.dir().join("data/admin.db")).expect("db");
    db.execute("UPDATE overrides SET expires_at = ?1", [soon])
        .expect("shorten");
    let started = Instant::now();
    let limit = Duration::from_secs(30) + Duration::from_secs(10);
    loop {
        if short(school.ks2(), "www.bet365.com") == "0.0.0.0" {
            break;
        }
        assert!(started.elapsed() < limit, "still unlocked after {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        lollipop::clock::now_unix_ms() >= soon,
        "blocked again only once it expired"
    );
    let audit = school.audit();
    let expired = audit
        .iter()
        .find(|a| a.action == "override expired")
        .expect("expiry audited");
    assert!(expired.detail.contains("bet365.com"), "{}", expired.detail);
    assert!(
        expired.detail.contains("granted by tech"),
        "{}",
        expired.detail
    );
    let list = admin.get("/overrides");
    assert!(list.body.contains("Nothing is unlocked"), "{}", list.body);
    assert!(list.body.contains("expired"));
}

#[test]
fn reasons_are_escaped_on_the_overrides_page() {
    let school = school();
    let admin = school.signed_in("tech", Role::Admin);
    let script = "<script>alert('reason')</script>";
    let reply = admin.submit(
        "/unlock",
        "/unlock",
        &[
            ("domain", "bet365.com"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", script),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let list = admin.get("/overrides");
    assert!(!list.body.contains(script), "{}", list.body);
    assert!(list.body.contains("&#60;script&#62;"));
    assert!(list.body.contains("the whole network"));
}

#[test]
fn a_blocked_service_is_unlocked_with_every_name_it_needs() {
    let school = WebSchool::start_with(|config| {
        config.server.lists_dir = format!("{}/lists", env!("CARGO_MANIFEST_DIR")).into();
        if let Some(ks2) = config.profiles.get_mut("ks2") {
            ks2.block_services = vec![toml::Spanned::new(0..0, "tiktok".to_string())];
        }
    });
    let answer = |name: &str| dig(school.ks2(), &[name, "A"]);
    for name in ["www.tiktok.com", "v16.tiktokcdn.com"] {
        assert!(answer(name).contains("0.0.0.0"), "{name} blocked first");
    }
    // The block page names the service as people know it.
    let page = school.client().get_with("/", &[("Host", "www.tiktok.com")]);
    assert!(
        page.body.contains("<em>TikTok (social)</em> group"),
        "{}",
        page.body
    );
    let teacher = school.signed_in("mr.jones", Role::Teacher);
    let form = teacher.get("/unlock");
    assert!(
        form.body.contains("<option value=\"tiktok\""),
        "{}",
        form.body
    );
    let reply = teacher.submit(
        "/unlock",
        "/unlock",
        &[
            ("service", "tiktok"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", "Media studies: how short videos are made"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    // Released: the upstream answers (it knows no such names).
    for name in ["www.tiktok.com", "v16.tiktokcdn.com"] {
        let reply = answer(name);
        assert!(!reply.contains("0.0.0.0"), "{name}: {reply}");
        assert!(reply.contains("NXDOMAIN"), "{name}: {reply}");
    }
    let reply = teacher.submit(
        "/unlock",
        "/unlock",
        &[
            ("service", "roblox"),
            ("scope", "network"),
            ("duration", "lesson"),
            ("reason", "not a blocked service here"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("not a service blocked here"));
}

#[test]
fn each_room_has_a_printable_card_whose_code_opens_the_form_with_the_room_chosen() {
    let school = WebSchool::start();
    let teacher = school.signed_in("ms.khan", Role::Teacher);
    let cards = teacher.get("/unlock/cards");
    assert_eq!(cards.status, 200, "{}", cards.body);
    // One card a room, each with its QR code and link.
    let rooms = cards.body.matches("class=\"card unlock-card\"").count();
    assert_eq!(rooms, 2, "two listeners: {}", cards.body);
    assert_eq!(cards.body.matches("<svg").count(), 2, "{}", cards.body);
    let link = cards
        .body
        .split("Unlock a site for this room: <a href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a card's link")
        .replace("&#x3a;", ":")
        .replace("&amp;", "&");
    assert!(link.contains("/unlock?room=listener%3A127.0.0.1"), "{link}");
    // The link opens the form with that room chosen.
    let path = &link[link.find("/unlock").expect("path")..];
    let form = teacher.get(path);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body
            .contains("value=\"listener:127.0.0.1:0\" selected"),
        "{}",
        form.body
    );
    // A pupil cannot print them.
    assert_ne!(school.client().get("/unlock/cards").status, 200);
}

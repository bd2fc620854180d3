//! The status page's doors: the first-admin setup link, signing in and out,
//! roles, form tokens, session expiry, guessing limits, and hostile input.

use crate::support::web::*;
use lollipop::admin::Role;

#[test]
fn a_setup_link_creates_the_first_admin_once() {
    let school = WebSchool::start();
    let token = school.admin_store().new_setup_token().expect("token");
    let spare = school.admin_store().new_setup_token().expect("token");
    let client = school.client();
    let path = format!("/setup?token={token}");
    let reply = client.submit(
        &path,
        "/setup",
        &[
            ("token", &token),
            ("name", "tech"),
            ("password", "three random words"),
            ("confirm", "three random words"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let session = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("lollipop_session="))
        .expect("a session cookie")
        .to_string();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    // Signed in as the new admin: the users page opens.
    assert_eq!(client.get("/rules").status, 200);

    // The link is spent.
    let again = school.client().get(&path);
    assert!(
        again.body.contains("expired or was already used"),
        "{}",
        again.body
    );
    // And a made-up token never worked.
    let forged = school.client().get("/setup?token=0000");
    assert!(forged.body.contains("expired or was already used"));

    // A spare link died with the first admin: it cannot reset the admin's
    // password, nor make another admin.
    let intruder = school.client();
    let spare_page = intruder.get(&format!("/setup?token={spare}"));
    assert!(spare_page.body.contains("expired or was already used"));
    for name in ["tech", "pupil"] {
        // The form token comes from the sign-in page: the spare link's page
        // offers no form at all.
        let reply = intruder.submit(
            "/login",
            "/setup",
            &[
                ("token", &spare),
                ("name", name),
                ("password", "a pupil's password"),
                ("confirm", "a pupil's password"),
            ],
        );
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply.body.contains("expired or was already used"),
            "{}",
            reply.body
        );
    }
    let store = school.admin_store();
    assert!(
        store
            .check_login("tech", "three random words")
            .expect("login")
            .is_some()
    );
    assert!(
        store
            .check_login("tech", "a pupil's password")
            .expect("login")
            .is_none()
    );
    assert!(store.user("pupil").expect("users").is_none());
}

#[test]
fn pages_need_a_sign_in_and_scripts_need_a_token() {
    let school = WebSchool::start();
    let client = school.client();
    for path in [
        "/",
        "/log",
        "/log.csv",
        "/check",
        "/rules",
        "/users",
        "/reports",
        "/audit",
        "/lists",
        "/settings",
        "/review",
        "/review/1/assessment",
        "/assessment",
        "/overrides",
    ] {
        let reply = client.get(path);
        assert_eq!(reply.status, 303, "{path} should redirect to sign-in");
        assert!(
            reply.location().starts_with("/login?next="),
            "{path}: {}",
            reply.location()
        );
    }
    for path in ["/api/v1/status", "/api/v1/blocked", "/metrics"] {
        let reply = client.get(path);
        assert_eq!(reply.status, 401, "{path}");
    }
    let bad_token = client.get_with("/api/v1/status", &[("Authorization", "Bearer lp_nonsense")]);
    assert_eq!(bad_token.status, 401);
}

#[test]
fn a_wrong_password_is_refused_and_repeated_guesses_are_stopped() {
    let school = WebSchool::start();
    school.add_user("head", Role::Viewer, "the right password");
    let client = school.client();
    let wrong = client.sign_in("head", "the wrong password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("do not match"), "{}", wrong.body);
    assert!(client.cookie("lollipop_session").is_none());
    for _ in 0..4 {
        client.sign_in("head", "still wrong");
    }
    // Five failures: even the right password must wait now.
    let blocked = client.sign_in("head", "the right password");
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(blocked.body.contains("Try again in"));
    // Failed attempts are in the audit trail.
    let audit = school.audit();
    assert!(
        audit
            .iter()
            .filter(|a| a.action == "sign-in failed")
            .count()
            >= 5,
        "{audit:?}"
    );
}

#[test]
fn each_role_sees_only_its_pages() {
    let school = WebSchool::start();
    let viewer = school.signed_in("head", Role::Viewer);
    assert_eq!(viewer.get("/log").status, 200);
    assert_eq!(viewer.get("/rules").status, 403);
    assert_eq!(viewer.get("/users").status, 403);

    let teacher = school.signed_in("ms.khan", Role::Teacher);
    assert_eq!(teacher.get("/unlock").status, 200);
    assert_eq!(teacher.get("/log").status, 403);
    assert_eq!(teacher.get("/rules").status, 403);

    let admin = school.signed_in("tech", Role::Admin);
    for path in [
        "/",
        "/log",
        "/rules",
        "/users",
        "/lists",
        "/settings",
        "/audit",
    ] {
        assert_eq!(admin.get(path).status, 200, "{path}");
    }
}

#[test]
fn forms_without_their_token_are_refused() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let fields = [
        ("profile", "ks2"),
        ("domain", "www.bet365.com"),
        ("action", "allow"),
        ("reason", "maths lesson on probability"),
    ];
    let missing = admin.post("/rules", &fields);
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("form has expired"));
    let mut forged = vec![(
        "csrf",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    )];
    forged.extend_from_slice(&fields);
    assert_eq!(admin.post("/rules", &forged).status, 403);
    assert!(school.admin_store().live_rules().expect("rules").is_empty());
    // The sign-in form has a token too, before anyone is signed in.
    let stranger = school.client();
    let reply = stranger.post("/login", &[("name", "tech"), ("password", "x")]);
    assert_eq!(reply.status, 403);
}

#[test]
fn an_idle_session_ends_and_says_so() {
    let school = WebSchool::start_with(|config| config.web.session_idle_minutes = 0);
    let client = school.client();
    assert_eq!(school.sign_in(&client, "head", Role::Viewer).status, 303);
    let reply = client.get("/log");
    assert_eq!(reply.status, 303);
    assert!(
        reply.location().contains("expired=1"),
        "{}",
        reply.location()
    );
    let page = client.get(reply.location());
    assert!(page.body.contains("signed out after"), "{}", page.body);
}

#[test]
fn signing_out_ends_the_session() {
    let school = WebSchool::start();
    let client = school.signed_in("head", Role::Viewer);
    let cookie = client.cookie("lollipop_session").expect("session");
    let reply = client.submit("/log", "/logout", &[]);
    assert_eq!(reply.status, 303);
    assert!(client.cookie("lollipop_session").is_none());
    // The old cookie no longer works, even if kept.
    let replay = school.client();
    let reply = replay.get_with("/log", &[("Cookie", &format!("lollipop_session={cookie}"))]);
    assert_eq!(reply.status, 303);
}

#[test]
fn huge_forms_and_scripts_in_input_do_no_harm() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let page = admin.get("/rules");
    let token = csrf_in(&page.body);
    let huge = "a".repeat(200 * 1024);
    let reply = admin.post(
        "/rules",
        &[
            ("csrf", &token),
            ("profile", "ks2"),
            ("domain", "example.org"),
            ("action", "allow"),
            ("reason", &huge),
        ],
    );
    assert_eq!(
        reply.status,
        400,
        "{}",
        &reply.body[..reply.body.len().min(300)]
    );
    assert!(reply.body.contains("larger than"));

    let script = "<script>alert(1)</script>";
    let reply = admin.post(
        "/rules",
        &[
            ("csrf", &token),
            ("profile", "ks2"),
            ("domain", "example.org"),
            ("action", "allow"),
            ("reason", script),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let listed = admin.get("/rules");
    assert!(!listed.body.contains(script));
    assert!(
        listed.body.contains("&#60;script&#62;"),
        "escaped on output"
    );
    let reply = admin.post(
        "/rules",
        &[
            ("csrf", &token),
            ("profile", "ks2"),
            ("domain", script),
            ("action", "allow"),
            ("reason", "why not"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(!reply.body.contains(script));
    let reply = admin.post(
        "/rules",
        &[
            ("csrf", &token),
            ("profile", "nursery"),
            ("domain", "example.org"),
            ("action", "allow"),
            ("reason", "why not"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("no profile called"));
}

/// Every form action on the site, with fields that would do something.
const ACTIONS: &[&str] = &[
    "/rules",
    "/rules/1/remove",
    "/overrides/1/end",
    "/review",
    "/users",
    "/users/head/remove",
    "/users/head/code",
    "/tokens",
    "/tokens/1/revoke",
    "/unlock",
];

#[test]
fn every_route_checks_sign_in_role_and_form_token() {
    let school = WebSchool::start();
    school.add_user("head", Role::Viewer, "the head's password");
    // Signed out: pages go to sign-in, actions too (or, for the public
    // unlock form, need its token), scripts get 401.
    let stranger = school.client();
    for path in [
        "/log/1",
        "/log.csv?category=gambling",
        "/check?name=www.bet365.com&profile=ks2",
        "/overrides",
    ] {
        let reply = stranger.get(path);
        assert_eq!(reply.status, 303, "{path}");
        assert!(reply.location().starts_with("/login?next="), "{path}");
    }
    for path in ACTIONS {
        let reply = stranger.post(path, &[("reason", "x")]);
        // Without a session there is no form token either: refused before
        // anything else is looked at.
        assert_eq!(reply.status, 403, "{path} signed out");
        assert!(reply.body.contains("form has expired"), "{path}");
    }
    for path in ["/api/v1/check?name=a.com&profile=ks2", "/api/v1/overrides"] {
        assert_eq!(stranger.get(path).status, 401, "{path}");
    }

    // Signed in as an admin, but without the form's token: refused, and
    // nothing changed.
    let admin = school.signed_in("tech", Role::Admin);
    for path in ACTIONS {
        let reply = admin.post(
            path,
            &[
                ("name", "intruder"),
                ("role", "admin"),
                ("password", "a long enough password"),
                ("confirm", "a long enough password"),
                ("label", "x"),
                ("reason", "x"),
            ],
        );
        assert_eq!(reply.status, 403, "{path} without a token");
        assert!(reply.body.contains("form has expired"), "{path}");
    }
    let store = school.admin_store();
    assert!(store.user("intruder").expect("users").is_none());
    assert!(store.user("head").expect("users").is_some());
    assert!(store.api_tokens().expect("tokens").is_empty());
    assert!(store.reviews().expect("reviews").is_empty());

    // A viewer's token is valid, but the admin's actions are not theirs.
    let head = school.client();
    assert_eq!(head.sign_in("head", "the head's password").status, 303);
    for path in ["/users", "/tokens", "/rules", "/users/tech/remove"] {
        let reply = head.submit("/log", path, &[("name", "x"), ("label", "x")]);
        assert_eq!(reply.status, 403, "{path} as a viewer");
    }
    assert!(store.user("tech").expect("users").is_some());

    // A form missing its fields is bad input with a message, not a crash.
    for (path, page) in [
        ("/users", "/users"),
        ("/tokens", "/users"),
        ("/rules", "/rules"),
    ] {
        let reply = admin.submit(page, path, &[]);
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert!(
            reply.body.contains("Please check what you entered"),
            "{path}"
        );
    }
}

#[test]
fn every_response_carries_the_security_headers() {
    let school = WebSchool::start();
    let client = school.client();
    // A page, a redirect to sign in, a static file, a form error and a
    // name the block page answers for.
    for path in [
        "/login",
        "/",
        "/static/app.js",
        "/setup?token=0000",
        "/nothing-here",
    ] {
        let reply = client.get(path);
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            reply.header("referrer-policy"),
            Some("same-origin"),
            "{path}"
        );
        // Plain HTTP: no HSTS, which would lock browsers out of the page.
        assert_eq!(reply.header("strict-transport-security"), None, "{path}");
    }
}

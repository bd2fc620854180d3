//! The users page: admin only; adding users and changing roles, override
//! codes, removing users (never yourself, never the last admin), and API
//! tokens shown once and revocable. Everything is audited.

use crate::support::web::*;
use lollipop::admin::Role;

#[test]
fn only_admins_manage_users_and_every_form_needs_its_token() {
    let school = WebSchool::start();
    let anonymous = school.client();
    let reply = anonymous.get("/users");
    assert_eq!(reply.status, 303);
    assert!(reply.location().starts_with("/login"));
    for role in [Role::Viewer, Role::Teacher] {
        let user = school.signed_in(&format!("{}-user", role.as_str()), role);
        assert_eq!(user.get("/users").status, 403, "{role:?}");
        let token = csrf_in(&user.get("/unlock").body);
        let reply = user.post(
            "/users",
            &[
                ("csrf", &token),
                ("name", "intruder"),
                ("role", "admin"),
                ("password", "a long enough password"),
                ("confirm", "a long enough password"),
            ],
        );
        assert_eq!(reply.status, 403, "{role:?}");
        let reply = user.post(
            "/tokens",
            &[("csrf", &token), ("label", "x"), ("role", "admin")],
        );
        assert_eq!(reply.status, 403, "{role:?}");
    }
    assert!(
        school
            .admin_store()
            .user("intruder")
            .expect("users")
            .is_none()
    );

    let admin = school.signed_in("tech", Role::Admin);
    let page = admin.get("/users");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("tech"));
    // Without the form token nothing changes.
    let reply = admin.post(
        "/users",
        &[
            ("name", "intruder"),
            ("role", "admin"),
            ("password", "a long enough password"),
            ("confirm", "a long enough password"),
        ],
    );
    assert_eq!(reply.status, 403);
    assert!(
        school
            .admin_store()
            .user("intruder")
            .expect("users")
            .is_none()
    );
}

#[test]
fn an_admin_adds_a_teacher_gives_them_a_code_and_removes_them() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "ms.khan"),
            ("role", "teacher"),
            ("password", "correct horse battery"),
            ("confirm", "correct horse battery"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = admin.get(reply.location());
    assert!(
        page.body.contains("ms.khan can now sign in as a teacher"),
        "{}",
        page.body
    );

    let teacher = school.client();
    assert_eq!(
        teacher.sign_in("ms.khan", "correct horse battery").status,
        303
    );
    assert_eq!(teacher.get("/unlock").status, 200);

    let reply = admin.submit("/users", "/users/ms.khan/code", &[("code", "4729 13")]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let store = school.admin_store();
    assert!(
        store
            .check_code("ms.khan", "4729 13")
            .expect("check")
            .is_some()
    );
    let short = admin.submit("/users", "/users/ms.khan/code", &[("code", "12")]);
    assert_eq!(short.status, 400);
    assert!(short.body.contains("6 to 64"), "{}", short.body);

    // A viewer cannot be given a code.
    school.add_user("head", Role::Viewer, "head has a long password");
    let reply = admin.submit("/users", "/users/head/code", &[("code", "123456")]);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("cannot use override codes"),
        "{}",
        reply.body
    );

    let reply = admin.submit(
        "/users",
        "/users/ms.khan/code",
        &[("code", ""), ("clear", "1")],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(
        store
            .check_code("ms.khan", "4729 13")
            .expect("check")
            .is_none()
    );

    // Promoting signs the teacher out, so the new rights start cleanly.
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "ms.khan"),
            ("role", "viewer"),
            ("password", "another long password"),
            ("confirm", "another long password"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let after = teacher.get("/overrides");
    assert_eq!(after.status, 303, "signed out");
    assert!(after.location().starts_with("/login"));

    // A role alone can change: the password stays as it was.
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "ms.khan"),
            ("role", "teacher"),
            ("password", ""),
            ("confirm", ""),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(
        admin
            .get(reply.location())
            .body
            .contains("with the same password")
    );
    let kept = store
        .check_login("ms.khan", "another long password")
        .expect("login")
        .expect("the old password still works");
    assert_eq!(kept.role, Role::Teacher);
    // A new user still needs one.
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "mr.new"),
            ("role", "teacher"),
            ("password", ""),
            ("confirm", ""),
        ],
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(store.user("mr.new").expect("users").is_none());

    let reply = admin.submit("/users", "/users/ms.khan/remove", &[]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(store.user("ms.khan").expect("users").is_none());
    let again = admin.submit("/users", "/users/ms.khan/remove", &[]);
    assert_eq!(again.status, 400);

    let actions: Vec<String> = school.audit().into_iter().map(|a| a.action).collect();
    for wanted in [
        "user added",
        "override code set",
        "override code removed",
        "user changed",
        "user removed",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
}

#[test]
fn nobody_removes_themselves_or_the_last_admin() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit("/users", "/users/tech/remove", &[]);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("cannot remove yourself"),
        "{}",
        reply.body
    );
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "tech"),
            ("role", "viewer"),
            ("password", "tech has a long password"),
            ("confirm", "tech has a long password"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("only admin"), "{}", reply.body);
    assert_eq!(
        school
            .admin_store()
            .user("tech")
            .expect("users")
            .expect("tech")
            .role,
        Role::Admin
    );
    // Mismatched passwords and bad names are refused with what to fix.
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "new"),
            ("role", "teacher"),
            ("password", "one long password"),
            ("confirm", "another long password"),
        ],
    );
    assert_eq!(reply.status, 400);
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "<script>x</script>"),
            ("role", "teacher"),
            ("password", "a long enough password"),
            ("confirm", "a long enough password"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(!reply.body.contains("<script>"));
    let reply = admin.submit(
        "/users",
        "/users",
        &[
            ("name", "new"),
            ("role", "superuser"),
            ("password", "a long enough password"),
            ("confirm", "a long enough password"),
        ],
    );
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("not a role"));
}

#[test]
fn an_api_token_is_shown_once_works_and_stops_working_when_revoked() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/users",
        "/tokens",
        &[
            ("label", "LA monitoring <script>x</script>"),
            ("role", "viewer"),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("cache-control")
            .unwrap_or("")
            .contains("no-store")
    );
    assert!(!reply.body.contains("<script>x"), "label escaped");
    let start = reply.body.find("lp_").expect("token shown");
    let token: String = reply.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(token.len(), 3 + 64);
    // Shown once: the list afterwards has the label, not the token.
    let page = admin.get("/users");
    assert!(page.body.contains("LA monitoring"));
    assert!(!page.body.contains(&token));

    let script = school.client();
    let bearer = format!("Bearer {token}");
    let status = script.get_with("/api/v1/status", &[("Authorization", &bearer)]);
    assert_eq!(status.status, 200, "{}", status.body);

    let id = school.admin_store().api_tokens().expect("tokens")[0].id;
    let reply = admin.submit("/users", &format!("/tokens/{id}/revoke"), &[]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let status = script.get_with("/api/v1/status", &[("Authorization", &bearer)]);
    assert_eq!(status.status, 401);
    let again = admin.submit("/users", &format!("/tokens/{id}/revoke"), &[]);
    assert_eq!(again.status, 400);

    let actions: Vec<String> = school.audit().into_iter().map(|a| a.action).collect();
    assert!(actions.iter().any(|a| a == "API token created"));
    assert!(actions.iter().any(|a| a == "API token revoked"));
}

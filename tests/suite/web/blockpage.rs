//! The block page: a request for a blocked name (its answer pointed the
//! browser here) gets a friendly page for the child with a staff link to
//! unlock it; our own names and addresses reach the status page.

use crate::support::web::*;

#[test]
fn a_blocked_name_pointed_here_gets_the_block_page_with_a_staff_link() {
    let school = WebSchool::start();
    let child = school.client();
    let page = child.get_with("/watch?v=abc", &[("Host", "www.youtube.com")]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("blocked at school"), "{}", page.body);
    assert!(page.body.contains("tell your teacher"));
    assert!(page.body.contains("www.youtube.com"));
    assert!(
        page.body
            .contains("href=\"/unlock?domain=www.youtube.com&#38;client=127.0.0.1\""),
        "{}",
        page.body
    );
    assert!(
        page.header("cache-control")
            .unwrap_or("")
            .contains("no-store")
    );

    // The stylesheet and the unlock form work under the blocked name too.
    let css = child.get_with("/static/style.css", &[("Host", "www.youtube.com")]);
    assert!(css.header("content-type").unwrap_or("").contains("css"));
    let form = child.get_with(
        "/unlock?domain=www.youtube.com",
        &[("Host", "www.youtube.com")],
    );
    assert_eq!(form.status, 200);
    assert!(form.body.contains("override code"));

    // A locked category: no staff link, and its category is not named.
    let locked = child.get_with("/", &[("Host", "abuse.example.com")]);
    assert_eq!(locked.status, 200);
    assert!(locked.body.contains("blocked at school"));
    assert!(!locked.body.contains("/unlock"));
    assert!(!locked.body.contains("iwf"));

    // Our own names, addresses and unblocked names reach the status page.
    for host in ["localhost", "127.0.0.1", "www.example.com"] {
        let reply = child.get_with("/overrides", &[("Host", host)]);
        assert_eq!(reply.status, 303, "{host}: {}", reply.body);
        assert!(reply.location().starts_with("/login"), "{host}");
        let missing = child.get_with("/no-such-page", &[("Host", host)]);
        assert_eq!(missing.status, 404, "{host}");
    }
}

#[test]
fn with_a_public_url_the_staff_link_goes_there_and_that_name_is_ours() {
    let school = WebSchool::start_with(|config| {
        config.web.public_url = Some("https://lollipop.hilltop.sch.uk".into());
    });
    let child = school.client();
    let page = child.get_with("/", &[("Host", "bet365.com")]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(
            "href=\"https://lollipop.hilltop.sch.uk/unlock?domain=bet365.com&#38;client=127.0.0.1\""
        ),
        "{}",
        page.body
    );
    let ours = child.get_with("/overrides", &[("Host", "lollipop.hilltop.sch.uk")]);
    assert_eq!(ours.status, 303);
}

//! End to end in headless chromium: a pupil's browser opens a blocked site
//! and gets the block page; a teacher follows its staff link, types their
//! name and override code, and `dig` sees the site unlocked for that device
//! at once; the override expires by itself and `dig` is blocked again.
//! Saves screenshots of the block page and the unlock page.

use std::time::{Duration, Instant};

use crate::support::browser::Browser;
use crate::support::web::*;
use crate::support::*;

#[test]
fn a_teacher_unlocks_a_site_from_the_block_page_and_it_expires() {
    let school = WebSchool::start();
    school.teacher_with_code("ms.khan", "472913");
    let blocked = |source: &str| {
        dig(
            school.ks2(),
            &["-b", source, "www.bet365.com", "A", "+short"],
        )
        .trim()
        .to_string()
    };
    assert_eq!(blocked("127.0.0.1"), "0.0.0.0");

    // The blocked answer would point the pupil's browser at the appliance;
    // here chromium is sent there as its HTTP proxy, so it asks us for
    // http://www.bet365.com/ with that Host, as it would after the answer.
    let browser = Browser::start_behind_proxy(school.web, school.web);
    browser
        .runtime
        .block_on(browser.client.goto("http://www.bet365.com/"))
        .expect("open the blocked site");
    let page = browser.text();
    assert!(page.contains("This page is blocked at school"), "{page}");
    assert!(page.contains("tell your teacher"), "{page}");
    browser.screenshot("blockpage");

    browser.click_and_wait("p.staff-link a");
    assert!(
        browser.path().starts_with("/unlock?domain=www.bet365.com"),
        "{}",
        browser.path()
    );
    browser.fill("name", "ms.khan");
    browser.fill("code", "472913");
    browser.fill("reason", "Year 6 maths: probability");
    browser
        .runtime
        .block_on(browser.client.execute("window.scrollTo(0, 0);", vec![]))
        .expect("scroll to the top");
    browser.screenshot("unlock");
    browser.click_and_wait("form[action='/unlock'] button[type=submit]");
    let page = browser.text();
    assert!(
        page.contains("www.bet365.com is unlocked for Y5-iPad-07"),
        "{page}"
    );

    // At once, for that device only.
    assert_eq!(blocked("127.0.0.1"), "192.0.2.14");
    assert_eq!(blocked("127.0.0.2"), "0.0.0.0");

    // The lesson ends in two seconds; nobody clicks anything.
    let db = rusqlite::Connection::open(school.lollipop.dir().join("data/admin.db")).expect("db");
    db.execute(
        "UPDATE overrides SET expires_at = ?1",
        [lollipop::clock::now_unix_ms() + 2_000],
    )
    .expect("shorten");
    let started = Instant::now();
    while blocked("127.0.0.1") != "0.0.0.0" {
        assert!(started.elapsed() < Duration::from_secs(40), "never expired");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The teacher signs in and sees it listed as expired.
    browser.sign_in("ms.khan", &WebSchool::password("ms.khan"));
    browser.goto("/overrides");
    let page = browser.text();
    assert!(page.contains("Nothing is unlocked"), "{page}");
    assert!(page.contains("expired"), "{page}");
    browser.screenshot("overrides");
}

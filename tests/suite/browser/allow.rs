//! End to end in a real browser (headless chromium): sign in, allow a site
//! and see `dig` change its answer. Saves screenshots of the main pages.

use crate::support::browser::Browser;
use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

#[test]
fn a_technician_signs_in_and_allows_a_site_for_a_lesson() {
    let school = WebSchool::start();
    school.add_user("tech", Role::Admin, "three random words");
    let browser = Browser::start(school.web);

    browser.sign_in("tech", "wrong words here");
    assert!(browser.text().contains("do not match"));
    browser.sign_in("tech", "three random words");
    assert_eq!(browser.path(), "/");

    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    browser.goto("/rules");
    browser.fill("domain", "www.bet365.com");
    browser.select("profile", "ks2");
    browser.fill("reason", "Year 6 maths: probability");
    browser.click_and_wait("form[action='/rules'] button[type=submit]");
    let page = browser.text();
    assert!(
        page.contains("www.bet365.com is now allowed for ks2"),
        "{page}"
    );
    browser.screenshot("allow-block");
    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "192.0.2.14"
    );
}

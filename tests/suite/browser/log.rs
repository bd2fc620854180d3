//! End to end in a real browser (headless chromium): the head teacher signs
//! in, reads today's dashboard, filters the blocked log, opens one entry to
//! see why, exports the log as CSV, and checks a site. Saves screenshots of
//! these pages.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

#[test]
fn the_head_reads_the_log_and_exports_it() {
    let school = WebSchool::start();
    for name in ["www.bet365.com", "www.youtube.com", "abuse.example.com"] {
        assert_eq!(dig(school.ks2(), &[name, "A", "+short"]).trim(), "0.0.0.0");
    }
    dig(school.ks2(), &["www.example.com", "A", "+short"]);
    school.lollipop.flush_log();
    let browser = school.browser_signed_in("head", Role::Viewer);
    assert_eq!(browser.path(), "/");
    let today = browser.text();
    assert!(today.contains("Is filtering working?"), "{today}");
    assert!(today.contains("Top blocked categories today"));
    browser.screenshot("dashboard");

    browser.click_and_wait("a[href='/log']");
    let log = browser.text();
    assert!(
        log.contains("3 blocked tries in 3 log entries match"),
        "{log}"
    );
    browser.screenshot("log");
    browser.select("category", "video");
    browser.click_and_wait("form.filters button[type=submit]");
    let filtered = browser.text();
    assert!(
        filtered.contains("1 blocked try in 1 log entry match"),
        "{filtered}"
    );
    assert!(filtered.contains("www.youtube.com"));
    assert!(!filtered.contains("www.bet365.com"));

    // The export link carries the filters; fetch it as the browser would.
    let csv = browser.script(
        "const done = arguments[arguments.length - 1]; \
         fetch(document.getElementById('export').href).then(r => r.text()).then(done);",
    );
    let csv = csv.as_str().expect("CSV text");
    assert!(csv.starts_with("Ref,"), "{csv}");
    assert!(csv.contains("www.youtube.com"));
    assert!(!csv.contains("bet365"));

    browser.click_and_wait("#log tbody a");
    let entry = browser.text();
    assert!(entry.contains("It is in the video category"), "{entry}");
    assert!(entry.contains("blocked for Key Stage 2"), "{entry}");
    assert!(entry.contains("Y5-iPad-07"));
    browser.screenshot("log-entry");

    browser.click_and_wait("a.button[href^='/check?']");
    let check = browser.text();
    assert!(
        check.contains("www.youtube.com is blocked for Key Stage 2"),
        "{check}"
    );
    browser.screenshot("check");

    browser.goto("/reports");
    assert!(browser.text().contains("Blocked tries"));
    browser.screenshot("reports");
}

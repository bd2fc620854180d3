//! Every page, in a real browser (headless chromium), meets the basics a
//! screen-reader or keyboard user needs: one heading per page, a label for
//! every field, named buttons and charts, the skip link first in the tab
//! order, and nothing wider than a tablet's screen.

use crate::support::browser::Browser;
use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

const CHECKS: &str = r#"
const problems = [];
if (document.documentElement.lang !== "en-GB") problems.push("lang is not en-GB");
if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
  if (field.labels.length === 0 && !field.getAttribute("aria-label"))
    problems.push("field without a label: " + (field.name || field.outerHTML));
}
for (const button of document.querySelectorAll("button, a.button")) {
  if (!(button.textContent.trim() || button.getAttribute("aria-label")))
    problems.push("button without a name: " + button.outerHTML);
}
for (const svg of document.querySelectorAll("svg")) {
  if (svg.getAttribute("role") !== "img" || !svg.getAttribute("aria-label"))
    problems.push("chart without a text alternative");
}
if (document.documentElement.scrollWidth > window.innerWidth + 1)
  problems.push("page wider than the window: " + document.documentElement.scrollWidth);
return problems;
"#;

#[test]
fn every_page_has_labels_headings_and_fits_a_tablet() {
    let school = WebSchool::start();
    for name in ["www.bet365.com", "www.youtube.com"] {
        dig(school.ks2(), &[name, "A", "+short"]);
    }
    school.lollipop.flush_log();
    let browser = school.browser_signed_in("tech", Role::Admin);
    // A tablet held upright.
    browser.resize(820, 1180);
    for path in [
        "/",
        "/log",
        "/log/1",
        "/check?name=www.bet365.com&profile=ks2",
        "/unlock",
        "/overrides",
        "/rules",
        "/reports",
        "/review",
        "/audit",
        "/lists",
        "/settings",
        "/users",
    ] {
        browser.goto(path);
        let problems = browser.script(&format!(
            "const done = arguments[arguments.length - 1]; done((() => {{ {CHECKS} }})());"
        ));
        assert_eq!(problems, serde_json::json!([]), "{path}");
    }
    // The checks do find a field without a label.
    let planted = browser.script(&format!(
        "const done = arguments[arguments.length - 1]; \
         document.body.appendChild(document.createElement('input')); \
         done((() => {{ {CHECKS} }})());"
    ));
    assert!(
        planted.to_string().contains("field without a label"),
        "{planted}"
    );
    // The first Tab lands on the skip link.
    browser.goto("/");
    let first = browser.script(
        "const done = arguments[arguments.length - 1]; \
         document.activeElement.blur(); \
         const focusable = [...document.querySelectorAll('a[href], button, input, select, textarea')]; \
         done(focusable[0].className);",
    );
    assert_eq!(first, serde_json::json!("skip"));
    for page in ["/login", "/unlock"] {
        let stranger = Browser::start(school.web);
        stranger.goto(page);
        let problems = stranger.script(&format!(
            "const done = arguments[arguments.length - 1]; done((() => {{ {CHECKS} }})());"
        ));
        assert_eq!(problems, serde_json::json!([]), "{page} signed out");
    }
}

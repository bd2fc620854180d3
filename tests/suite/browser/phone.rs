//! In a real browser (headless chromium): the dashboard's safeguarding
//! panel, the self-assessment and its print view, the weekly report with
//! its trend chart, and every page on a 400 px phone: no sideways
//! scrolling and chart labels big enough to read. Saves the README's
//! screenshots, the phone ones as `phone-*.png`.

use crate::support::browser::Browser;
use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use lollipop::journal::BlockEvent;

/// A school whose Key Stage 2 rooms are the "Oak class Wi-Fi", with
/// alerting categories to fill the safeguarding panel.
fn school() -> WebSchool {
    let config = |web: &str| {
        TestConfig::school()
            .section(
                "[[listen]]\naddress = \"127.0.0.1:0\"\nprofile = \"ks2\"\ndisplay_name = \"Oak class Wi-Fi\"",
            )
            .listen_for("127.0.0.1:0", "staff")
            .table("log", "time_zone = \"Europe/London\"")
            .table("alerts", "school_name = \"Hilltop Primary\"")
            .table("web", web)
            .section("[[devices]]\nip = \"127.0.0.1\"\nname = \"Y5-iPad-07\"\nroom = \"Oak class\"\nowner = \"Year 5\"")
            .list("adult", "adult.txt", "pornography")
            .list("harm", "harm.txt", "self-harm")
            .blocklist(
                "ks2",
                &["gambling", "video", "pornography", "self-harm"],
                "block_services = [\"fortnite\"]",
            )
            .blocklist("staff", &["gambling"], "")
            .toml()
    };
    let mut lists = SCHOOL_LISTS.to_vec();
    lists.extend([
        ("adult.txt", "adult-site.example\n"),
        ("harm.txt", "harm-site.example\n"),
        ("lists/services/fortnite.txt", "fortnite.com\n"),
    ]);
    let school = WebSchool::with_config(config, &lists);
    // Allowed look-ups too, so the shares blocked are a school's, not 100%.
    for i in 0..40 {
        dig(
            school.ks2(),
            &[&format!("www{i}.example.com"), "A", "+short"],
        );
    }
    // Earlier weeks, so the report's trend has something to draw.
    let journal = school.lollipop.running().journal.clone();
    let now = lollipop::clock::now_unix_ms();
    for week in 1..8 {
        for i in 0..(100 + week * 13 % 40) {
            journal.record_query(lollipop::journal::QueryEvent {
                at_unix_ms: now - week * 7 * 86_400_000 - i * 1_000,
                client: "127.0.0.1".parse().expect("ip"),
                profile: "ks2".into(),
                name: format!("www{i}.example.com"),
                query_type: "A".into(),
                blocked: false,
                category: None,
            });
        }
        for i in 0..(week * 3 % 7 + 1) {
            journal.record_block(BlockEvent {
                at_unix_ms: now - week * 7 * 86_400_000 - i * 60_000,
                client: "127.0.0.1".parse().expect("ip"),
                listener: None,
                profile: "ks2".into(),
                name: format!("www{i}.bet365.com"),
                query_type: "A",
                category: Some("gambling".into()),
                list: Some("test-gambling".into()),
                rule: Some("bet365.com".into()),
                action: "null",
                locked: false,
            });
        }
    }
    // Today's, after the earlier weeks' (the log lists newest entries first).
    for name in [
        "www.harm-site.example",
        "www.adult-site.example",
        "www.bet365.com",
        "www.youtube.com",
        "www.fortnite.com",
    ] {
        assert_eq!(dig(school.ks2(), &[name, "A", "+short"]).trim(), "0.0.0.0");
    }
    school.lollipop.flush_log();
    school
}

/// Problems a phone would show: sideways scrolling, chart labels drawn
/// smaller than 11 px once the chart is scaled to the screen.
const PHONE: &str = r#"
const problems = [];
if (window.innerWidth > 420) problems.push("window is " + window.innerWidth + " px wide");
if (document.documentElement.scrollWidth > window.innerWidth)
  problems.push("scrolls sideways: " + document.documentElement.scrollWidth + " > " + window.innerWidth);
for (const label of document.querySelectorAll("svg text")) {
  const svg = label.ownerSVGElement;
  const box = svg.viewBox.baseVal;
  const scale = box && box.width ? svg.getBoundingClientRect().width / box.width : 1;
  const px = parseFloat(getComputedStyle(label).fontSize) * scale;
  if (label.textContent.trim() && px < 11)
    problems.push("chart label '" + label.textContent + "' is " + px.toFixed(1) + " px");
}
return problems;
"#;

fn phone_problems(browser: &Browser) -> serde_json::Value {
    browser.script(&format!(
        "const done = arguments[arguments.length - 1]; done((() => {{ {PHONE} }})());"
    ))
}

#[test]
fn the_dsl_reads_the_safeguarding_panel_and_prints_the_self_assessment() {
    let school = school();
    let browser = school.browser_signed_in("mrs.patel", Role::Dsl);
    assert_eq!(browser.path(), "/");
    let today = browser.text();
    let panel = today
        .split("Safeguarding this week")
        .nth(1)
        .and_then(|rest| rest.split("Is filtering working?").next())
        .expect("the panel leads the page");
    assert!(panel.contains("www.harm-site.example"), "{panel}");
    assert!(panel.contains("Y5-iPad-07, Oak class (Year 5)"), "{panel}");
    assert!(panel.contains("today ") || panel.contains(", "), "{panel}");
    assert!(today.contains("Key Stage 2"), "{today}");
    assert!(today.contains("Fortnite (game)"), "{today}");
    assert!(
        !today.contains("service-fortnite") && !today.contains("ks2"),
        "{today}"
    );
    browser.screenshot("safeguarding");

    browser.goto("/assessment");
    let assessment = browser.text();
    assert!(
        assessment.contains("Filtering self-assessment"),
        "{assessment}"
    );
    assert!(assessment.contains("Printable version"));
    browser.screenshot("assessment");
    browser.click_and_wait("a[href='/assessment?print=1']");
    let print = browser.text();
    assert!(print.contains("filtering self-assessment"), "{print}");
    assert!(
        !print.contains("Sign out"),
        "the print view is the document alone"
    );
    browser.screenshot("assessment-print");

    browser.goto("/reports");
    // The printable report opens in a tab of its own: follow its link here.
    let printable = browser.script(
        "const done = arguments[arguments.length - 1]; \
         done(document.querySelector(\"a[href$='print=1']\").getAttribute('href'));",
    );
    browser.goto(printable.as_str().expect("the printable version's link"));
    let report = browser.text();
    assert!(report.contains("The last 6 weeks"), "{report}");
    let bars = browser.script(
        "const done = arguments[arguments.length - 1]; \
         done(document.querySelectorAll('svg.trend rect').length);",
    );
    assert_eq!(bars, serde_json::json!(6));
    browser.screenshot("report-print");
}

#[test]
fn every_page_fits_a_400_px_phone() {
    let school = school();
    let browser = school.browser_signed_in("tech", Role::Admin);
    browser.resize(400, 1400);
    let pages = [
        ("/", "dashboard"),
        ("/log", "log"),
        ("/log/1", "log-entry"),
        ("/check?name=www.fortnite.com&profile=*", "check"),
        ("/unlock", "unlock"),
        ("/overrides", "overrides"),
        ("/rules", "allow-block"),
        ("/reports", "reports"),
        ("/reports?print=1", "report-print"),
        ("/review", "review"),
        ("/assessment", "assessment"),
        ("/assessment?print=1", "assessment-print"),
        ("/audit", "audit"),
        ("/lists", "lists"),
        ("/settings", "settings"),
        ("/users", "users"),
    ];
    for (path, name) in pages {
        browser.goto(path);
        assert_eq!(phone_problems(&browser), serde_json::json!([]), "{path}");
        browser.screenshot(&format!("phone-{name}"));
    }
    // The pages seen without signing in.
    let stranger = Browser::start(school.web);
    stranger.resize(400, 1000);
    for (path, name) in [("/login", "login"), ("/unlock", "unlock-code")] {
        stranger.goto(path);
        assert_eq!(phone_problems(&stranger), serde_json::json!([]), "{path}");
        stranger.screenshot(&format!("phone-{name}"));
    }
    // The check finds a page that is too wide.
    browser.goto("/");
    let planted = browser.script(&format!(
        "const done = arguments[arguments.length - 1]; \
         const wide = document.createElement('div'); wide.style.width = '900px'; wide.textContent = 'x'; \
         document.body.appendChild(wide); done((() => {{ {PHONE} }})());"
    ));
    assert!(
        planted.to_string().contains("scrolls sideways"),
        "{planted}"
    );
}

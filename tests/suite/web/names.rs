//! Pages say what people call things (issue 18, point 5): profiles, rooms
//! and services by their display names, times as "Mon 7 Dec, 08:40", and
//! the same count of blocked tries on the dashboard and the log. Ids and
//! addresses stay in links, the API and CSV, never in the words shown.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use lollipop::journal::BlockEvent;

/// The ks2 listener is the "Oak class Wi-Fi"; staff keeps the default name.
fn named_school() -> WebSchool {
    let config = |web: &str| {
        TestConfig::school()
            .section(
                "[[listen]]\naddress = \"127.0.0.1:0\"\nprofile = \"ks2\"\ndisplay_name = \"Oak class Wi-Fi\"",
            )
            .listen_for("127.0.0.1:0", "staff")
            .table("log", "time_zone = \"Europe/London\"")
            .table("alerts", "school_name = \"Hilltop Primary\"")
            .table("web", web)
            .section("[[devices]]\nip = \"127.0.0.1\"\nname = \"Y5-iPad-07\"")
            .blocklist("ks2", &["gambling", "video"], "block_services = [\"fortnite\"]")
            .blocklist("staff", &["gambling"], "")
            .toml()
    };
    let mut lists = SCHOOL_LISTS.to_vec();
    lists.push(("lists/services/fortnite.txt", "fortnite.com\n"));
    WebSchool::with_config(config, &lists)
}

fn event(name: &str, category: &str, at_unix_ms: i64) -> BlockEvent {
    BlockEvent {
        at_unix_ms,
        client: "127.0.0.1".parse().expect("ip"),
        listener: None,
        profile: "ks2".into(),
        name: name.into(),
        query_type: "A",
        category: Some(category.into()),
        list: Some(category.into()),
        rule: Some(name.into()),
        action: "null",
        locked: false,
    }
}

/// The words a page shows: tags (and so links and form values) removed.
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    // A print view's own stylesheet is not words either.
    let body = html.rsplit("</style>").next().unwrap_or(html);
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Text of the page `path` shows the head, checked for ids and jargon.
fn shown(head: &WebClient, path: &str) -> String {
    let page = head.get(path);
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    let text = visible(&page.body);
    for jargon in ["service-fortnite", "ks2", "VLAN ", "127.0.0.1:"] {
        assert!(!text.contains(jargon), "{path} shows {jargon:?}: {text}");
    }
    text
}

#[test]
fn pages_show_display_names_and_never_ids() {
    let school = named_school();
    let journal = school.lollipop.running().journal.clone();
    let now = lollipop::clock::now_unix_ms();
    journal.record_block(event("www.fortnite.com", "service-fortnite", now - 5_000));
    journal.record_block(event("www.bet365.com", "gambling", now - 4_000));
    school.lollipop.flush_log();
    let head = school.signed_in("head", Role::Admin);

    let dashboard = shown(&head, "/");
    assert!(dashboard.contains("Key Stage 2"), "{dashboard}");
    assert!(dashboard.contains("Fortnite (game)"), "{dashboard}");

    let log = shown(&head, "/log");
    assert!(log.contains("Fortnite (game)"), "{log}");
    assert!(log.contains("Key Stage 2"), "{log}");
    // The profile filter offers names; the URL keeps the id.
    assert!(
        head.get("/log")
            .body
            .contains("<option value=\"ks2\" >Key Stage 2</option>")
    );
    // A time as people read it: "Mon 7 Dec, 08:40", not 2026-12-07 08:40.
    let today = lollipop::clock::people::when(lollipop::clock::TimeZone::EuropeLondon, now);
    let day = &today[..today.find(',').expect("a comma")];
    assert!(log.contains(day), "{day} in {log}");
    assert!(
        !log.contains(&lollipop::clock::format_utc(now)[..10]),
        "{log}"
    );

    let rows =
        lollipop::journal::JournalReader::open(&school.lollipop.dir().join("data/lollipop.db"))
            .expect("journal")
            .query_blocked(&lollipop::journal::LogFilter::default())
            .expect("rows");
    let fortnite = rows
        .iter()
        .find(|r| r.name == "www.fortnite.com")
        .expect("row");
    let entry = shown(&head, &format!("/log/{}", fortnite.id));
    assert!(
        entry.contains("It is in the Fortnite (game) category"),
        "{entry}"
    );
    assert!(entry.contains("blocked for Key Stage 2"), "{entry}");
    // The jargon lives here, in the why detail: the look-up type and the ISO time.
    assert!(entry.contains("A (an IPv4 address)"), "{entry}");
    assert!(
        entry.contains(&lollipop::clock::format_utc(fortnite.at_unix_ms)),
        "{entry}"
    );

    let unlock = shown(&head, "/unlock");
    assert!(unlock.contains("Oak class Wi-Fi (Key Stage 2)"), "{unlock}");
    assert!(unlock.contains("Staff network"), "{unlock}");
    assert!(unlock.contains("Fortnite (game)"), "{unlock}");

    let check = shown(&head, "/check?name=www.bet365.com&profile=*");
    assert!(check.contains(" for Key Stage 2"), "{check}");

    for path in ["/reports", "/rules", "/overrides"] {
        shown(&head, path);
    }
    let report = head.get(&format!("/reports?print=1&from={}", this_monday(now)));
    let report_text = visible(&report.body);
    assert!(report_text.contains("Fortnite (game)"), "{report_text}");
    assert!(report_text.contains("Key Stage 2"), "{report_text}");
    assert!(!report_text.contains("service-fortnite") && !report_text.contains("ks2"));
}

/// `YYYY-MM-DD` of this week's Monday (London), for the report holding today.
fn this_monday(now: i64) -> String {
    let tz = lollipop::clock::TimeZone::EuropeLondon;
    let day = tz.local_day(now);
    let monday = day - (day + 3).rem_euclid(7);
    let (y, m, d) = lollipop::clock::civil_from_days(monday);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn the_dashboard_and_the_log_count_the_same_tries() {
    let school = named_school();
    let journal = school.lollipop.running().journal.clone();
    let now = lollipop::clock::now_unix_ms();
    // A browser retrying one name three times (one entry, three tries),
    // and two more names once each.
    for back in [3_000, 2_000, 1_000] {
        journal.record_block(event("www.bet365.com", "gambling", now - back));
    }
    journal.record_block(event("www.youtube.com", "video", now - 900));
    journal.record_block(event("www.fortnite.com", "service-fortnite", now - 800));
    school.lollipop.flush_log();
    let head = school.signed_in("head", Role::Viewer);

    let dashboard = head.get("/");
    let figure = dashboard
        .body
        .split("id=\"blocked-today\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the dashboard's blocked figure");
    assert_eq!(figure, "5", "{}", dashboard.body);
    assert!(dashboard.body.contains("5 blocked tries in 3 log entries"));
    // Its link opens the log on the same day, which counts the same.
    let link = dashboard
        .body
        .split("href=\"/log?from=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/log?from={}", rest.replace("&amp;", "&")))
        .expect("the link to today's log");
    let log = head.get(&link);
    let tries = log
        .body
        .split("data-tries=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the log's count");
    assert_eq!(tries, figure, "{link}: {}", log.body);
    assert!(
        log.body
            .contains("<strong>5 blocked tries in 3 log entries</strong> match")
    );
}

#[test]
fn the_weekly_report_draws_its_trend_as_svg() {
    let school = named_school();
    let journal = school.lollipop.running().journal.clone();
    let now = lollipop::clock::now_unix_ms();
    journal.record_block(event("www.bet365.com", "gambling", now - 1_000));
    journal.record_block(event("www.bet365.com", "gambling", now - 8 * 86_400_000));
    school.lollipop.flush_log();
    let head = school.signed_in("head", Role::Viewer);
    let from = this_monday(now);
    for path in [
        format!("/reports?from={from}"),
        format!("/reports?from={from}&print=1"),
    ] {
        let page = head.get(&path);
        assert_eq!(page.status, 200);
        assert_eq!(
            page.body.matches("<svg class=\"trend\"").count(),
            1,
            "{path}"
        );
        assert_eq!(page.body.matches("<rect").count(), 6, "{path}: six weeks");
        assert!(
            page.body.contains("aria-label=\"Blocked tries per week"),
            "{path}"
        );
    }
    let print = head.get(&format!("/reports?from={from}&print=1"));
    assert!(!print.body.contains("<script"), "drawn without a script");
    assert!(print.body.contains("@media print"));
    assert!(print.body.contains("name=\"viewport\""));
}

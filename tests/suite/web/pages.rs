//! The reading pages of the status page: today's dashboard, the blocked log
//! with its filters, paging, CSV export and one entry's why, "check a site",
//! the weekly report, the annual review record, the audit trail, and the
//! lists and settings — filled by real lookups through `dig`.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use lollipop::journal::BlockEvent;

/// Blocked lookups from the Year 5 iPad (127.0.0.1) on the ks2 listener.
fn some_blocked_lookups(school: &WebSchool) {
    for name in ["www.bet365.com", "m.youtube.com", "abuse.example.com"] {
        assert_eq!(dig(school.ks2(), &[name, "A", "+short"]).trim(), "0.0.0.0");
    }
    // And one allowed.
    assert_eq!(
        dig(school.ks2(), &["www.example.com", "A", "+short"]).trim(),
        "192.0.2.10"
    );
    school.lollipop.flush_log();
}

/// A blocked gambling lookup written straight to the block log.
fn gambling_event(name: &str, client: &str, at_unix_ms: i64) -> BlockEvent {
    BlockEvent {
        at_unix_ms,
        client: client.parse().expect("ip"),
        listener: None,
        profile: "ks2".into(),
        name: name.into(),
        query_type: "A",
        category: Some("gambling".into()),
        list: Some("test-gambling".into()),
        rule: Some("bet365.com".into()),
        action: "null",
        locked: false,
    }
}

#[test]
fn the_dashboard_shows_health_counts_charts_and_top_blocks() {
    let school = WebSchool::start();
    some_blocked_lookups(&school);
    let head = school.signed_in("head", Role::Viewer);
    let page = head.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("Is filtering working?"), "{body}");
    assert!(body.contains("Internet look-ups"));
    assert!(body.contains("working; last answer"), "{body}");
    assert!(body.contains("sites in 3 lists"), "{body}");
    // Safeguards that are off, in red: this school set up no alerts.
    assert!(
        body.contains("Safeguarding alerts are not set up"),
        "{body}"
    );
    // Today: four look-ups, three blocked, all on ks2.
    assert!(
        body.contains(r#"<td class="num">4</td><td class="num">3</td>"#),
        "{body}"
    );
    assert_eq!(body.matches("<svg class=\"chart\"").count(), 2);
    assert!(body.contains("Lookups and blocks in the last 24 hours: 4 lookups, 3 blocked"));
    assert!(body.contains(">gambling</a>"));
    assert!(body.contains(">Y5-iPad-07</a>"));

    // A teacher's start page is the unlock form.
    let teacher = school.signed_in("ms.khan", Role::Teacher);
    let reply = teacher.get("/");
    assert_eq!(reply.status, 303);
    assert_eq!(reply.location(), "/unlock");
}

#[test]
fn the_log_filters_pages_and_explains_an_entry() {
    let school = WebSchool::start();
    some_blocked_lookups(&school);
    let head = school.signed_in("head", Role::Viewer);

    let all = head.get("/log");
    assert_eq!(all.status, 200);
    assert!(
        all.body
            .contains("<strong>3 blocked tries in 3 log entries</strong> match"),
        "{}",
        all.body
    );
    assert!(all.body.contains("www.bet365.com"));
    assert!(all.body.contains("Y5-iPad-07"));
    assert!(
        all.body.contains("tag locked"),
        "the IWF hit is marked locked"
    );

    let gambling = head.get("/log?category=gambling");
    assert!(
        gambling
            .body
            .contains("<strong>1 blocked try in 1 log entry</strong>")
    );
    assert!(!gambling.body.contains("m.youtube.com"));
    let by_name = head.get("/log?name=tube");
    assert!(by_name.body.contains("m.youtube.com"));
    assert!(!by_name.body.contains("www.bet365.com"));
    let by_device = head.get("/log?device=iPad");
    assert!(by_device.body.contains("<strong>3 blocked tries"));
    let other_device = head.get("/log?device=nobody");
    assert!(other_device.body.contains("<strong>0 blocked tries"));
    let staff = head.get("/log?profile=staff");
    assert!(staff.body.contains("<strong>0 blocked tries"));
    let future = head.get("/log?from=2099-01-01");
    assert!(future.body.contains("<strong>0 blocked tries"));
    let today = head.get("/log?from=2000-01-01&to=2099-12-31");
    assert!(today.body.contains("<strong>3 blocked tries"));

    // Bad dates and pages get a clear message, not a crash.
    let bad = head.get("/log?from=yesterday");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a date"), "{}", bad.body);
    let backwards = head.get("/log?from=2026-02-01&to=2026-01-01");
    assert_eq!(backwards.status, 400);
    assert_eq!(head.get("/log?page=0").status, 400);
    assert_eq!(head.get("/log?page=-3").status, 400);

    // One entry: why, and the device's other attempts.
    let journal =
        lollipop::journal::JournalReader::open(&school.lollipop.dir().join("data/lollipop.db"))
            .expect("journal");
    let rows = journal
        .query_blocked(&lollipop::journal::LogFilter::default())
        .expect("rows");
    let bet = rows
        .iter()
        .find(|r| r.name == "www.bet365.com")
        .expect("row");
    assert!(all.body.contains(&format!("/log/{}", bet.id)));
    let entry = head.get(&format!("/log/{}", bet.id));
    assert_eq!(entry.status, 200);
    assert!(
        entry
            .body
            .contains("It is in the gambling category (list: test-gambling)"),
        "{}",
        entry.body
    );
    assert!(entry.body.contains("bet365.com"));
    assert!(
        entry.body.contains("m.youtube.com"),
        "the device's recent history"
    );
    assert!(
        entry
            .body
            .contains("/check?name=www.bet365.com&amp;client=127.0.0.1")
    );
    assert_eq!(head.get("/log/999999").status, 404);
    assert_eq!(head.get("/log/abc").status, 404);
}

#[test]
fn the_log_pages_through_many_rows() {
    let school = WebSchool::start();
    let journal = school.lollipop.running().journal.clone();
    let now = lollipop::clock::now_unix_ms();
    for i in 0..120 {
        journal.record_block(gambling_event(
            &format!("site{i}.bet365.com"),
            &format!("127.0.0.{}", 2 + i % 50),
            now - 1000 * i64::from(120 - i),
        ));
    }
    school.lollipop.flush_log();
    let head = school.signed_in("head", Role::Viewer);
    let first = head.get("/log?category=gambling");
    assert!(first.body.contains("Page 1 of 3"), "{}", first.body);
    assert!(first.body.contains(">site119.bet365.com<"), "newest first");
    assert!(first.body.contains("category=gambling&amp;page=2"));
    let third = head.get("/log?category=gambling&page=3");
    assert!(third.body.contains(">site0.bet365.com<"));
    assert!(!third.body.contains(">site119.bet365.com<"));
    assert_eq!(
        third.body.matches("<tr>").count(),
        1 + 20,
        "header + 20 rows"
    );
}

#[test]
fn csv_export_follows_the_filters_and_defuses_formulas() {
    let school = WebSchool::start();
    some_blocked_lookups(&school);
    let journal = school.lollipop.running().journal.clone();
    journal.record_block(gambling_event(
        "=cmd.bet365.com",
        "127.0.0.9",
        lollipop::clock::now_unix_ms(),
    ));
    school.lollipop.flush_log();
    let head = school.signed_in("head", Role::Viewer);
    let csv = head.get("/log.csv?category=gambling");
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert!(
        csv.header("content-disposition")
            .unwrap_or("")
            .contains("attachment; filename=\"blocked-lookups-"),
    );
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "header + two gambling rows: {}", csv.body);
    assert!(lines[0].starts_with("Ref,"));
    assert!(lines[1].contains("www.bet365.com"), "oldest first");
    assert!(csv.body.contains("'=cmd.bet365.com"), "{}", csv.body);
    assert!(!csv.body.contains("youtube"));
    assert_eq!(head.get("/log.csv?to=31/12/2026").status, 400);
    // Teachers cannot export the log.
    let teacher = school.signed_in("ms.khan", Role::Teacher);
    assert_eq!(teacher.get("/log.csv").status, 403);
}

#[test]
fn names_with_script_are_shown_as_text() {
    let school = WebSchool::start();
    let journal = school.lollipop.running().journal.clone();
    let script = "<script>alert(1)</script>";
    journal.record_block(BlockEvent {
        at_unix_ms: lollipop::clock::now_unix_ms(),
        client: "127.0.0.1".parse().expect("ip"),
        listener: Some(script.into()),
        profile: "ks2".into(),
        name: format!("{script}.bet365.com"),
        query_type: "A",
        category: Some(script.into()),
        list: Some(script.into()),
        rule: Some(script.into()),
        action: "null",
        locked: false,
    });
    school.lollipop.flush_log();
    let admin = school.signed_in("tech", Role::Admin);
    for path in ["/", "/log", "/log/1", "/reports"] {
        let page = admin.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(script), "{path} shows raw script");
    }
    assert!(admin.get("/log").body.contains("&#60;script&#62;"));
    let check = admin.get("/check?name=%3Cscript%3E.example&profile=ks2");
    assert_eq!(check.status, 400);
    assert!(!check.body.contains(script));
}

#[test]
fn check_a_site_says_what_and_why() {
    let school = WebSchool::start();
    let teacher = school.signed_in("ms.khan", Role::Teacher);
    let blocked = teacher.get("/check?name=www.bet365.com&profile=ks2");
    assert_eq!(blocked.status, 200);
    assert!(
        blocked
            .body
            .contains("is <span class=\"status-bad\">blocked</span> for Key Stage 2"),
        "{}",
        blocked.body
    );
    assert!(blocked.body.contains("<dd>gambling</dd>"));
    assert!(blocked.body.contains("<dd>test-gambling</dd>"));
    assert!(blocked.body.contains("Unlock it for a lesson"));

    let staff = teacher.get("/check?name=m.youtube.com&profile=staff");
    assert!(
        staff.body.contains("status-ok\">allowed</span> for Staff"),
        "{}",
        staff.body
    );

    let locked = teacher.get("/check?name=abuse.example.com&client=127.0.0.1");
    assert!(
        locked.body.contains("nobody can unlock this category"),
        "{}",
        locked.body
    );
    // A local list's entry is shown (only a licensed feed's is withheld).
    assert!(
        locked
            .body
            .contains("<dt>Matching entry</dt><dd>abuse.example.com</dd>"),
        "{}",
        locked.body
    );
    assert!(!locked.body.contains("not shown (licensed list)"));
    assert!(!locked.body.contains("Unlock it for a lesson"));

    let canary = teacher.get("/check?name=use-application-dns.net&profile=ks2");
    assert!(
        canary.body.contains("answered by Lollipop"),
        "{}",
        canary.body
    );

    for bad in [
        "/check?name=not%20a%20name&profile=ks2",
        "/check?name=example.org&profile=nursery",
        "/check?name=example.org&client=10.0.0.300",
    ] {
        let reply = teacher.get(bad);
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.body.contains("class=\"notice\""), "{bad}");
    }
    assert_eq!(school.client().get("/check").status, 303, "sign-in first");
}

#[test]
fn the_weekly_report_and_the_review_record() {
    let school = WebSchool::start();
    some_blocked_lookups(&school);
    let head = school.signed_in("head", Role::Viewer);
    // The page opens on the last full week; this week is its "Week after".
    let last_week = head.get("/reports");
    assert_eq!(last_week.status, 200);
    assert!(
        !last_week.body.contains("www.bet365.com"),
        "{}",
        last_week.body
    );
    let this_week = last_week
        .body
        .split("href=\"/reports?from=")
        .nth(2)
        .and_then(|rest| rest.split('"').next())
        .expect("the Week after link")
        .to_string();
    let report = head.get(&format!("/reports?from={this_week}"));
    assert_eq!(report.status, 200);
    assert!(report.body.contains("Blocked tries"));
    assert!(report.body.contains("www.bet365.com"), "{}", report.body);
    assert!(report.body.contains("test-gambling"));
    let print = head.get("/reports?print=1");
    assert!(print.body.starts_with("<!doctype html>"));
    assert!(print.body.contains("Hilltop Primary: filtering report"));
    // A plain-English summary for governors heads it.
    assert!(
        print
            .body
            .contains("In summary: the school&#39;s devices made"),
        "{}",
        print.body
    );
    assert_eq!(head.get("/reports?from=last-week").status, 400);
    let old = head.get("/reports?from=2020-01-06");
    assert!(
        old.body.contains("Mon 6 Jan to Sun 12 Jan 2020"),
        "{}",
        old.body
    );
    assert!(old.body.contains("None this week."));

    let review = head.get("/review");
    assert!(review.body.contains("No filtering review is recorded yet"));
    let reply = head.submit(
        "/review",
        "/review",
        &[
            ("held_on", "2026-09-15"),
            ("participants", "Head, DSL, governor Mrs Patel, technician"),
            (
                "checked",
                "Blocked categories per key stage; alerts; overrides",
            ),
            ("decisions", "Block <b>new</b> game sites for KS2"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let review = head.get(reply.location());
    assert!(review.body.contains("The review is recorded."));
    assert!(review.body.contains("Review held on 2026-09-15"));
    assert!(
        review
            .body
            .contains("Block &#60;b&#62;new&#60;/b&#62; game sites")
    );
    let bad = head.submit(
        "/review",
        "/review",
        &[
            ("held_on", "2026-02-30"),
            ("participants", "x"),
            ("checked", "y"),
            ("decisions", "z"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a date"));
    assert_eq!(school.admin_store().reviews().expect("reviews").len(), 1);

    school.lollipop.flush_log();
    let audit = head.get("/audit");
    assert!(audit.body.contains("review recorded"), "{}", audit.body);
    assert!(audit.body.contains("signed in"));
    assert_eq!(head.get("/audit?from=soon").status, 400);
    let none = head.get("/audit?to=2001-01-01");
    assert!(none.body.contains("Nothing recorded in this period"));
    // A teacher cannot read the reports.
    let teacher = school.signed_in("ms.khan", Role::Teacher);
    assert_eq!(teacher.get("/reports").status, 403);
    assert_eq!(teacher.get("/audit").status, 403);
}

#[test]
fn lists_and_settings_show_health_profiles_and_hide_secrets() {
    let school = WebSchool::start();
    let admin = school.signed_in("tech", Role::Admin);
    let lists = admin.get("/lists");
    assert_eq!(lists.status, 200);
    assert!(lists.body.contains("test-gambling"));
    assert!(lists.body.contains("local file"));
    assert!(
        lists
            .body
            .contains("Locked categories (nobody can unlock them): <strong>iwf</strong>")
    );
    assert!(
        lists.body.contains("queries to 127.0.0.1:"),
        "{}",
        lists.body
    );
    assert!(lists.body.contains("everyone else (the default)"));
    let settings = admin.get("/settings");
    assert_eq!(settings.status, 200);
    assert!(settings.body.contains("[profiles.ks2]"));
    assert!(settings.body.contains("Hilltop Primary"));
    let head = school.signed_in("head", Role::Viewer);
    assert_eq!(head.get("/lists").status, 403);
    assert_eq!(head.get("/settings").status, 403);
}

#[test]
fn the_dashboard_says_when_the_upstream_stops_answering() {
    // An upstream address where nothing listens.
    let dead = format!("127.0.0.1:{}", free_port());
    let school = WebSchool::start_with(move |config| {
        config.upstream[0].address = toml::Spanned::new(0..0, dead);
        config.resolver.timeout_ms = 200;
    });
    let head = school.signed_in("head", Role::Viewer);
    assert!(head.get("/").body.contains("no look-ups yet"));
    for name in ["www.example.com", "news.example.org"] {
        dig(school.ks2(), &[name, "A", "+tries=1", "+time=3"]);
    }
    let page = head.get("/");
    assert!(
        page.body.contains("not answering (2 failed)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("status-bad"));
    // Blocked names still get their answer without any upstream.
    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
}

#[test]
fn the_self_assessment_follows_the_settings_and_is_kept_with_each_review() {
    let school = WebSchool::start();
    let head = school.signed_in("head", Role::Viewer);
    let page = head.get("/assessment");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("Filtering and monitoring standards for schools and colleges"),
        "{body}"
    );
    assert!(
        body.contains("Appropriate filtering for education settings"),
        "{body}"
    );
    // The school's own settings decide each line: no alert channel here,
    // the IWF list present and locked, no review yet.
    let row = |body: &str, requirement: &str| -> String {
        body.split("<tr>")
            .find(|row| row.contains(requirement))
            .unwrap_or_else(|| panic!("no row for {requirement}: {body}"))
            .to_string()
    };
    assert!(
        row(body, "The safeguarding lead is alerted").contains("status-bad\">not met"),
        "{body}"
    );
    assert!(
        row(body, "Child sexual abuse content").contains("status-ok\">met"),
        "{body}"
    );
    assert!(
        row(body, "Filtering reviewed at least once a year").contains("not met"),
        "{body}"
    );
    assert!(
        row(body, "Search terms and page content").contains("not possible at DNS level"),
        "{body}"
    );
    let print = head.get("/assessment?print=1");
    assert!(print.body.starts_with("<!doctype html>"), "{}", print.body);
    assert!(
        print
            .body
            .contains("Hilltop Primary: filtering self-assessment"),
        "{}",
        print.body
    );

    // A review recorded today: the line turns green, and the record keeps
    // the assessment as it stood.
    let today = head
        .get("/review")
        .body
        .split("name=\"held_on\" type=\"date\" required value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("today's date in the form")
        .to_string();
    let reply = head.submit(
        "/review",
        "/review",
        &[
            ("held_on", &today),
            ("participants", "Head, DSL, governor"),
            ("checked", "the self-assessment"),
            ("decisions", "set up alerts"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = head.get("/assessment");
    assert!(
        row(&page.body, "Filtering reviewed at least once a year").contains("status-ok\">met"),
        "{}",
        page.body
    );
    let review = head.get("/review");
    assert!(
        review.body.contains("/review/1/assessment"),
        "{}",
        review.body
    );
    let kept = head.get("/review/1/assessment");
    assert_eq!(kept.status, 200);
    assert!(
        kept.body.contains("filtering self-assessment"),
        "{}",
        kept.body
    );
    assert_eq!(head.get("/review/99/assessment").status, 404);

    // Setting up alerts flips their line.
    let hook = TestHttp::start();
    let url = hook.url("/hook");
    let alerting = WebSchool::start_with(move |config| {
        config.alerts.webhook = Some(lollipop::alerts::WebhookConfig {
            url,
            token_file: None,
        });
    });
    let head = alerting.signed_in("head", Role::Viewer);
    let page = head.get("/assessment");
    assert!(
        row(&page.body, "The safeguarding lead is alerted").contains("status-ok\">met"),
        "{}",
        page.body
    );
}

/// The dashboard's "Safeguarding this week" panel.
fn safeguarding_panel(body: &str) -> String {
    body.split("Safeguarding this week")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("the safeguarding panel")
        .to_string()
}

#[test]
fn the_dashboard_leads_with_this_weeks_safeguarding_and_names_children_only_to_the_dsl() {
    let config = |web: &str| {
        TestConfig::school()
            .listen_for("127.0.0.1:0", "ks2")
            .table("web", web)
            .section("[[devices]]\nip = \"127.0.0.1\"\nname = \"Y5-iPad-07\"\nroom = \"Oak class\"\nowner = \"Year 5\"")
            .list("adult", "adult.txt", "pornography")
            .list("harm", "harm.txt", "self-harm")
            .blocklist("ks2", &["gambling", "pornography", "self-harm"], "")
            .toml()
    };
    let lists = [
        ("gambling.txt", "bet365.com\n"),
        ("video.txt", "youtube.com\n"),
        ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
        ("adult.txt", "adult-site.example\n"),
        ("harm.txt", "harm-site.example\n"),
    ];
    let school = WebSchool::with_config(config, &lists);
    for name in [
        "www.adult-site.example.",
        "www.harm-site.example.",
        "www.bet365.com.",
    ] {
        assert_eq!(answers(&a(school.ks2(), name)), ["A 0.0.0.0"], "{name}");
    }
    school.lollipop.flush_log();

    let dsl = school.signed_in("mrs.patel", Role::Dsl);
    let page = dsl.get("/");
    let panel = safeguarding_panel(&page.body);
    // It leads the page, before "Is filtering working?".
    assert!(page.body.find("Safeguarding this week") < page.body.find("Is filtering working?"));
    assert!(
        panel.contains("www.harm-site.example") && panel.contains("www.adult-site.example"),
        "{panel}"
    );
    assert!(panel.contains("Y5-iPad-07, Oak class (Year 5)"), "{panel}");
    assert!(
        !panel.contains("bet365"),
        "gambling does not alert: {panel}"
    );
    assert!(panel.contains("Nothing is unlocked."), "{panel}");
    assert!(panel.contains("of lookups blocked this week"), "{panel}");

    // A viewer (a governor) sees the self-harm attempt as a count only.
    let governor = school.signed_in("governor", Role::Viewer);
    let page = governor.get("/");
    let panel = safeguarding_panel(&page.body);
    assert!(!panel.contains("harm-site"), "{panel}");
    assert!(
        panel.contains("1 attempt at self-harm sites this week"),
        "{panel}"
    );
    assert!(panel.contains("www.adult-site.example"), "{panel}");
}

#[test]
fn the_dashboard_says_when_the_clock_is_not_set_yet() {
    let school = WebSchool::start();
    let head = school.signed_in("head", Role::Viewer);
    assert!(!head.get("/").body.contains("Clock"));
    // As the validating recursor reports a clock not yet trusted.
    let stats = &school.lollipop.running().metrics.upstream;
    stats
        .validating_as_of
        .store(1_579_046_400, std::sync::atomic::Ordering::Relaxed);
    stats
        .clock_untrusted
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let page = head.get("/");
    assert!(page.body.contains("Clock"), "{}", page.body);
    assert!(
        page.body.contains("checked as of 15 January 2020, 00:00"),
        "{}",
        page.body
    );
}

#[test]
fn a_review_is_recorded_even_when_its_assessment_copy_cannot_be_saved() {
    let school = WebSchool::start();
    // A file where the copies' directory should be: the copy cannot be written.
    std::fs::write(school.lollipop.dir().join("data/reviews"), "in the way").expect("block");
    let head = school.signed_in("head", Role::Viewer);
    let reply = head.submit(
        "/review",
        "/review",
        &[
            ("held_on", "2026-09-15"),
            ("participants", "Head, DSL"),
            ("checked", "the self-assessment"),
            ("decisions", "none"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = head.get(reply.location());
    assert!(
        page.body
            .contains("The review is recorded, but the self-assessment copy could not be saved"),
        "{}",
        page.body
    );
    assert_eq!(school.admin_store().reviews().expect("reviews").len(), 1);
}

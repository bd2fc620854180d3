//! The trust's central log and its dashboard together (issue 20): three
//! real school boxes (two of them one school's pair) ship to a real
//! PostgreSQL 15 (tables made by the boxes themselves), lookups are blocked
//! through DNS, one in self-harm from a
//! named pupil's laptop that alerts the safeguarding lead, and the real
//! `lollipop trust serve` on the same database shows each school's health,
//! the blocked attempts by school and category, who tried self-harm to the
//! DSL only, and each school's weekly report, with the boxes' own figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::central::{TrustPostgres, trust_dashboard, wait_long};
use crate::support::web::*;
use crate::support::*;

/// A school box shipping to `postgres` as `school`, blocking gambling and
/// self-harm; `extra` adds its devices and alerts.
fn school_box(
    postgres: &TrustPostgres,
    upstream: &TestUpstream,
    school: &str,
    extra: impl FnOnce(TestConfig) -> TestConfig,
) -> TestLollipop {
    let config = extra(
        TestConfig::new()
            .listen("127.0.0.1:0")
            .upstream("{upstream}")
            .list("test-gambling", "gambling.txt", "gambling")
            .list("test-self-harm", "self-harm.txt", "self-harm")
            .blocklist("ks2", &["gambling", "self-harm"], ""),
    )
    .table("ship", &format!("school = \"{school}\""))
    .table("ship.postgres", &format!("url = \"{}\"", postgres.url()))
    .toml();
    TestLollipop::start(
        &config,
        upstream,
        &[
            ("gambling.txt", "bet365.com\ncasino.example\n"),
            ("self-harm.txt", "thinspo.example\n"),
        ],
    )
}

/// Asks `server` for `name` and checks it was blocked.
fn blocked(server: SocketAddr, name: &str) {
    let reply = a(server, name);
    assert_eq!(answers(&reply), ["A 0.0.0.0"], "{name} was not blocked");
}

/// Blocked tries by category in a box's own block log (retries folded into
/// a row counted by its `count`), and its rows' times in Unix ms.
fn own_figures(lollipop: &TestLollipop) -> (BTreeMap<String, i64>, Vec<i64>) {
    lollipop.flush_log();
    let conn = rusqlite::Connection::open(lollipop.dir().join("data/lollipop.db"))
        .expect("block log opens");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    let mut statement = conn
        .prepare("SELECT category, sum(count) FROM blocked GROUP BY category")
        .expect("select");
    let by_category = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("figures");
    let mut statement = conn
        .prepare("SELECT at FROM blocked ORDER BY id")
        .expect("select");
    let times = statement
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("times");
    (by_category, times)
}

/// The row of the schools' table for `school`.
fn school_row<'a>(page: &'a str, school: &str) -> &'a str {
    let start = page
        .find(&format!("<th scope=\"row\">{school}</th>"))
        .unwrap_or_else(|| panic!("{school} is not on the dashboard: {page}"));
    let end = page[start..]
        .find("</tr>")
        .map_or(page.len(), |e| start + e);
    &page[start..end]
}

/// The weekly report link in a school's row.
fn report_link(row: &str) -> String {
    let start = row.find("href=\"").expect("a report link") + "href=\"".len();
    let end = row[start..].find('"').expect("link ends") + start;
    row[start..end].replace("&amp;", "&")
}

#[test]
fn what_the_boxes_ship_is_what_the_trust_dashboard_shows() {
    let postgres = TrustPostgres::start();
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    let oak = school_box(&postgres, &upstream, "Oak Primary", |config| {
        config
            .section(
                "[[devices]]\nip = \"127.0.0.1\"\nname = \"Y6-Laptop-03\"\nowner = \"Ben Pupil\"\nroom = \"Year 6\"",
            )
            .table(
                "alerts",
                "school_name = \"Oak Primary\"\ncategories = [\"self-harm\"]",
            )
            .table(
                "alerts.webhook",
                &format!("url = \"{}\"", hook.url("/hook")),
            )
    });
    // Oak's second box (the secondary of its pair): the same school.
    let oak_second = school_box(&postgres, &upstream, "Oak Primary", |config| config);
    let elm = school_box(&postgres, &upstream, "Elm Infants", |config| config);

    // Oak: a gambling site asked twice in a row (a browser's retry: one row
    // counted twice), another once, and a self-harm site from Ben's laptop.
    blocked(oak.address(), "www.bet365.com.");
    blocked(oak.address(), "www.bet365.com.");
    blocked(oak.address(), "casino.example.");
    blocked(oak.address(), "www.thinspo.example.");
    // Oak's second box: one gambling site; Elm: one.
    blocked(oak_second.address(), "casino.example.");
    blocked(elm.address(), "www.bet365.com.");

    // The boxes' own figures, which the trust's must match.
    let (oak_own, oak_times) = own_figures(&oak);
    let (oak_second_own, _) = own_figures(&oak_second);
    let (elm_own, _) = own_figures(&elm);
    assert_eq!(
        oak_second_own,
        BTreeMap::from([("gambling".to_string(), 1)])
    );
    let expected_oak = BTreeMap::from([("gambling".to_string(), 3), ("self-harm".to_string(), 1)]);
    assert_eq!(oak_own, expected_oak);
    assert_eq!(elm_own, BTreeMap::from([("gambling".to_string(), 1)]));
    assert_eq!(oak_times.len(), 3, "the retry folded into its row");

    // The real dashboard on the same database, as the DSL.
    let dir = tempfile::tempdir().expect("dir");
    let (_dashboard, address) = trust_dashboard(dir.path(), &postgres.url(), &[]);
    let dsl = WebClient::new(address);
    assert_eq!(dsl.sign_in("dsl", &WebSchool::password("dsl")).status, 303);
    let figures = [
        "<tr><td>Oak Primary</td><td>gambling</td><td>4</td></tr>",
        "<tr><td>Oak Primary</td><td>self-harm</td><td>1</td></tr>",
        "<tr><td>Elm Infants</td><td>gambling</td><td>1</td></tr>",
    ];
    let mut page = String::new();
    wait_long("the dashboard shows what the boxes shipped", || {
        let reply = dsl.get("/");
        page = reply.body;
        reply.status == 200
            && figures.iter().all(|f| page.contains(f))
            && page.contains("<td>Y6-Laptop-03</td><td>www.thinspo.example</td><td><span class=\"status-ok\">✔ sent by webhook</span></td>")
    });

    // Each box with its health: all heard from just now, lists up to date;
    // alerts set up on Oak's first box only.
    let oak_rows: Vec<&str> = page
        .match_indices("<th scope=\"row\">Oak Primary</th>")
        .map(|(at, _)| school_row(&page[at..], "Oak Primary"))
        .collect();
    assert_eq!(oak_rows.len(), 2, "{page}");
    assert!(
        oak_rows
            .iter()
            .all(|row| row.contains("<span class=\"status-ok\">✔ ") && row.contains("✔ up to date")),
        "{oak_rows:?}"
    );
    assert_eq!(
        oak_rows
            .iter()
            .filter(|row| row.contains("✔ set up"))
            .count(),
        1,
        "{oak_rows:?}"
    );
    let elm_row = school_row(&page, "Elm Infants");
    assert!(
        elm_row.contains("<span class=\"status-ok\">✔ "),
        "{elm_row}"
    );
    assert!(elm_row.contains("✔ up to date"), "{elm_row}");
    assert!(
        elm_row.contains("✖ not set up: nobody is told"),
        "{elm_row}"
    );
    // The DSL sees who tried the self-harm site.
    assert!(page.contains("Y6-Laptop-03 (Ben Pupil)"), "{page}");

    // The times the trust holds are the boxes' own instants, whatever the
    // server's time zone.
    let oak_id = std::fs::read_to_string(oak.dir().join("data/box-id")).expect("Oak's box id");
    let central_times: Vec<i64> = postgres
        .psql(
            &format!(
                "SELECT (extract(epoch from at) * 1000)::bigint FROM blocked \
                 WHERE box_id = '{}' ORDER BY event_id",
                oak_id.trim()
            ),
            "trust",
        )
        .lines()
        .map(|line| line.parse().expect("a time"))
        .collect();
    assert_eq!(central_times, oak_times);

    // A governor (viewer) sees the figures, never who.
    let governor = WebClient::new(address);
    let reply = governor.sign_in("governor", &WebSchool::password("governor"));
    assert_eq!(reply.status, 303);
    let page = governor.get("/").body;
    assert!(figures.iter().all(|f| page.contains(f)), "{page}");
    assert!(!page.contains("Y6-Laptop-03"), "{page}");
    assert!(!page.contains("Ben Pupil"), "{page}");
    assert!(page.contains("shown to the safeguarding lead"), "{page}");

    // Each school's weekly report, reached by its link (both of Oak's boxes
    // in one), and the trust's.
    let oak_report = governor.get(&report_link(school_row(&page, "Oak Primary")));
    assert_eq!(oak_report.status, 200, "{}", oak_report.body);
    assert!(
        oak_report.body.contains("Oak Primary: the last seven days")
            && oak_report.body.contains(
                "<strong>5</strong> blocked attempts; <strong>1</strong> safeguarding alert."
            ),
        "{}",
        oak_report.body
    );
    let elm_report = governor.get(&report_link(school_row(&page, "Elm Infants")));
    assert!(
        elm_report.body.contains("Elm Infants: the last seven days")
            && elm_report.body.contains(
                "<strong>1</strong> blocked attempt; <strong>0</strong> safeguarding alerts."
            ),
        "{}",
        elm_report.body
    );
    let trust = governor.get("/report");
    assert!(
        trust.body.contains(
            "<strong>6</strong> blocked attempts; <strong>1</strong> safeguarding alert."
        ) && trust.body.contains(
            "<tr><td>www.bet365.com</td><td>3</td></tr><tr><td>casino.example</td><td>2</td></tr>"
        ),
        "{}",
        trust.body
    );
}

//! Bank holidays renewed with the lists (issue 19): GOV.UK's file served on
//! loopback, fetched by `lollipop lists update` (a cut-short file refused,
//! a whole one kept in the downloads directory), shown by `lists status`,
//! and after a reload a bank holiday the shipped file does not know puts a
//! profile on its out-of-term rules, seen in a real DNS answer at a fake
//! clock time. Then the same by the running service's own schedule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;

const HOLIDAYS: &str = include_str!("../../lists/calendar/bank-holidays.json");
const TERM_DATES: &str = include_str!("../fixtures/term-dates.ics");

/// ks2 blocks video out of term; the bank holidays come from the shipped
/// copy (under `{dir}/lists`) or the updater's, renewed from `url`.
fn config(url: &str, updates: &str) -> String {
    format!(
        r#"
[server]
data_dir = "{{dir}}/data"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
profile = "ks2"
[[upstream]]
address = "{{upstream}}"
protocol = "udp"
[resolver]
timeout_ms = 1500
attempts = 1
clock_synced_file = "synced"
[updates]
{updates}
[blocking]
answer = "null"
ttl_secs = 30
[[lists]]
name = "video"
path = "video.txt"
category = "video"
[calendar]
nation = "england-and-wales"
bank_holidays_url = "{url}"
term_dates = "term-dates.ics"
[[calendar.periods]]
name = "lessons"
start = "08:45"
end = "15:15"
[profiles.ks2]
mode = "blocklist"
[[profiles.ks2.time_rules]]
when = "out-of-term"
block_categories = ["video"]
"#
    )
}

const FILES: [(&str, &str); 4] = [
    ("video.txt", "video.example\n"),
    ("lists/calendar/bank-holidays.json", HOLIDAYS),
    ("term-dates.ics", TERM_DATES),
    ("synced", ""),
];

/// GOV.UK's file with one more bank holiday for England and Wales on
/// Wednesday 4 November 2026, a term day in the fixture.
fn with_extra_holiday() -> String {
    let mut file: serde_json::Value = serde_json::from_str(HOLIDAYS).expect("json");
    let events = file["england-and-wales"]["events"]
        .as_array_mut()
        .expect("events");
    events.push(serde_json::json!({
        "title": "Extra bank holiday",
        "date": "2026-11-04",
        "notes": "",
        "bunting": true
    }));
    file.to_string()
}

/// The file with England and Wales cut to one day.
fn cut_short() -> String {
    r#"{"england-and-wales": {"division": "england-and-wales", "events": [
        {"title": "New Year's Day", "date": "2027-01-01", "notes": "", "bunting": true}]}}"#
        .into()
}

/// Whether `name` is blocked, with the EDE text, once it settles to
/// `blocked` within a few seconds (the rules of time are swapped in by a
/// timer after a reload).
fn settles(server: SocketAddr, name: &str, blocked: bool) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = a(server, &format!("{name}."));
        let is_blocked = answers(&reply).contains(&"A 0.0.0.0".to_string());
        if is_blocked == blocked || Instant::now() > deadline {
            assert_eq!(is_blocked, blocked, "{name}: {reply:?}");
            return extended_error(&reply).map(|(_, text)| text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wednesday 4 November 2026, 10:00 GMT: lessons on a term day.
fn wednesday() -> Clock {
    Clock::set_at(lollipop::clock::parse_test_time("2026-11-04T10:00:00Z").expect("time"))
}

#[test]
fn lists_update_renews_the_bank_holidays_and_a_reload_puts_them_in_force() {
    let http = TestHttp::start();
    http.serve("/bank-holidays.json", 200, &cut_short());
    let upstream = TestUpstream::start();
    let config = config(&http.url("/bank-holidays.json"), "enabled = false");
    let lollipop = TestLollipop::start_at(&config, &upstream, &FILES, |_| {}, wednesday());
    let config_path = lollipop.dir().join("lollipop.toml");
    let renewed = lollipop.dir().join("data/sources/bank-holidays.json");
    settles(lollipop.address(), "video.example", false);

    // A file cut to one day is refused; the shipped file stays in force.
    let out = lollipop_cli(&config_path, &["lists", "update"]);
    assert!(out.contains("Bank holidays: FAILED"), "{out}");
    assert!(out.contains("refused as cut short"), "{out}");
    assert!(!renewed.exists(), "nothing written for a refused file");
    let status = lollipop_cli(&config_path, &["lists", "status"]);
    assert!(
        status.contains("bank holidays (england-and-wales): "),
        "{status}"
    );
    assert!(
        status.contains("lists/calendar/bank-holidays.json (shipped with the lists)"),
        "{status}"
    );
    assert!(status.contains("last error: http://"), "{status}");
    assert!(status.contains("last successful check never"), "{status}");

    // A whole file with a new bank holiday: renewed, and shown in force.
    http.serve("/bank-holidays.json", 200, &with_extra_holiday());
    let out = lollipop_cli(&config_path, &["lists", "update"]);
    let days = lollipop::calendar::holidays::parse(&with_extra_holiday(), "england-and-wales")
        .expect("parses")
        .len();
    assert!(
        out.contains(&format!(
            "Bank holidays: updated, {days} entries from http://"
        )),
        "{out}"
    );
    assert!(renewed.exists(), "{out}");
    let status = lollipop_cli(&config_path, &["lists", "status"]);
    assert!(
        status.contains(
            "data/sources/bank-holidays.json (renewed by the list updater), file changed"
        ),
        "{status}"
    );
    assert!(
        status.contains(&format!("{days} days, the last")),
        "{status}"
    );
    assert!(status.contains("renewed from http://"), "{status}");
    assert!(!status.contains("last error:"), "{status}");

    // As `run` does after an update that changed something: the calendar
    // is rebuilt from the renewed file, and today is now out of term.
    let outcome = lollipop.reload_with(|text| text);
    assert_eq!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded);
    let words = settles(lollipop.address(), "video.example", true).unwrap_or_default();
    assert!(words.contains("out of term"), "{words}");

    // Again: the same file, so nothing to reload.
    let out = lollipop_cli(&config_path, &["lists", "update"]);
    assert!(out.contains("Bank holidays: not modified"), "{out}");

    // A damaged renewed copy is passed over for the shipped one.
    std::fs::write(&renewed, "{").expect("damage");
    let status = lollipop_cli(&config_path, &["lists", "status"]);
    assert!(status.contains("(shipped with the lists)"), "{status}");
    let outcome = lollipop.reload_with(|text| text);
    assert_eq!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded);
    settles(lollipop.address(), "video.example", false);
}

#[test]
fn the_running_service_renews_the_bank_holidays_on_its_schedule() {
    let http = TestHttp::start();
    http.serve("/bank-holidays.json", 200, &with_extra_holiday());
    let upstream = TestUpstream::start();
    let config = config(
        &http.url("/bank-holidays.json"),
        "enabled = true\ncheck_every_secs = 1",
    );
    let lollipop = TestLollipop::start_at(&config, &upstream, &FILES, |_| {}, wednesday());
    // `serve` starts the schedule beside the resolver; the in-process
    // service does not, so it is started here as `serve` does.
    let reloader = lollipop.running().reloader.clone();
    let runtime = lollipop.block_on(async { tokio::runtime::Handle::current() });
    let updater = runtime.spawn(lollipop::service::schedules::run_list_updates(reloader));
    // The schedule downloads the file, reports it updated and reloads.
    let words = settles(lollipop.address(), "video.example", true).unwrap_or_default();
    assert!(words.contains("out of term"), "{words}");
    assert!(
        lollipop
            .dir()
            .join("data/sources/bank-holidays.json")
            .exists()
    );
    updater.abort();
}

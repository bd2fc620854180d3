//! School time over real sockets (issue 19): a fake clock driven through a
//! term day, a week with an INSET day, the March and October clock changes
//! and a 1970 boot, with the answers asked of a running Lollipop at each
//! step. The in-process tests move a set clock; the 1970 boot runs the
//! binary with `LOLLIPOP_TEST_CLOCK_FILE` and rewrites the file.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const HOLIDAYS: &str = include_str!("../../lists/calendar/bank-holidays.json");
const TERM_DATES: &str = include_str!("../fixtures/term-dates.ics");

/// ks2 on the first listener, staff on the second (127.0.0.2): ks2 may use
/// video at lunch and games in the after-school club, and never chat at
/// lunch; staff may game in the evening, and get ks2's rules out of term.
fn school(first: &str, second: &str, trust: &str) -> String {
    format!(
        r#"
[server]
data_dir = "{{dir}}/data"
default_profile = "ks2"
[[listen]]
address = "{first}"
profile = "ks2"
[[listen]]
address = "{second}"
profile = "staff"
[[upstream]]
address = "{{upstream}}"
protocol = "udp"
[resolver]
timeout_ms = 1500
attempts = 1
{trust}
[blocking]
answer = "null"
ttl_secs = 30
[[lists]]
name = "video"
path = "video.txt"
category = "video"
[[lists]]
name = "games"
path = "games.txt"
category = "games"
[[lists]]
name = "chat"
path = "chat.txt"
category = "chat"
[calendar]
nation = "england-and-wales"
bank_holidays = "bank-holidays.json"
term_dates = "term-dates.ics"
[[calendar.periods]]
name = "lessons"
start = "08:45"
end = "12:15"
[[calendar.periods]]
name = "lunch"
start = "12:15"
end = "13:15"
[[calendar.periods]]
name = "club"
label = "After-school club"
start = "15:15"
end = "17:00"
[[calendar.periods]]
name = "evening"
start = "18:00"
end = "07:00"
school = false
[profiles.ks2]
mode = "blocklist"
block_categories = ["video", "games"]
[[profiles.ks2.time_rules]]
when = "lunch"
allow_categories = ["video"]
block_categories = ["chat"]
[[profiles.ks2.time_rules]]
when = "club"
allow_categories = ["games"]
[profiles.staff]
mode = "blocklist"
audience = "staff"
block_categories = ["games"]
[[profiles.staff.time_rules]]
when = "evening"
allow_categories = ["games"]
[[profiles.staff.time_rules]]
when = "out-of-term"
use_profile = "ks2"
"#
    )
}

const FILES: [(&str, &str); 6] = [
    ("video.txt", "video.example\n"),
    ("games.txt", "games.example\n"),
    ("chat.txt", "chat.example\n"),
    ("bank-holidays.json", HOLIDAYS),
    ("term-dates.ics", TERM_DATES),
    ("synced", ""),
];

/// The EDE text if `name` is blocked for whoever asks `server`, else None.
fn blocked(server: SocketAddr, name: &str) -> Option<String> {
    let reply = a(server, &format!("{name}."));
    answers(&reply).contains(&"A 0.0.0.0".to_string()).then(|| {
        extended_error(&reply)
            .map(|(_, text)| text)
            .unwrap_or_default()
    })
}

/// A time of day, and the EDE words expected for three names (None: passed).
type Step<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// Unix ms of a UTC time.
fn utc(text: &str) -> i64 {
    lollipop::clock::parse_test_time(text).expect("time")
}

/// Waits until `server` answers `name` as `wanted` (Some(words in the
/// EDE) for blocked, None for passed), after the clock moved.
fn expect(server: SocketAddr, name: &str, wanted: Option<&str>, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = blocked(server, name);
        let ok = match (&got, wanted) {
            (Some(text), Some(words)) => text.contains(words),
            (None, None) => true,
            _ => false,
        };
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: {name} should be {wanted:?}, is {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lollipop on the school's config, with the upstream it asks.
fn start(clock: &Clock) -> (TestLollipop, TestUpstream) {
    let upstream = TestUpstream::start();
    let config = school(
        "127.0.0.1:0",
        "127.0.0.2:0",
        "clock_synced_file = \"synced\"",
    );
    let lollipop = TestLollipop::start_at(&config, &upstream, &FILES, |_| {}, clock.clone());
    (lollipop, upstream)
}

#[test]
fn a_term_day_opens_video_at_lunch_and_games_for_the_club() {
    // Wednesday 4 November 2026, GMT: local time is UTC.
    let clock = Clock::set_at(utc("2026-11-04T08:00:00Z"));
    let (lollipop, _upstream) = start(&clock);
    let ks2 = lollipop.addresses[0];
    // (local time, then what video, games and chat get: None is passed).
    let steps: [Step; 6] = [
        ("08:00", Some("video blocked"), Some("games blocked"), None),
        (
            "12:15",
            None,
            Some("games blocked"),
            Some("blocked at lunch (12:15-13:15)"),
        ),
        ("13:14", None, Some("games blocked"), Some("chat")),
        ("13:15", Some("video blocked"), Some("games blocked"), None),
        ("15:30", Some("video blocked"), None, None),
        ("17:00", Some("video blocked"), Some("games blocked"), None),
    ];
    for (time, video, games, chat) in steps {
        clock.set(utc(&format!("2026-11-04T{time}:00Z")));
        expect(ks2, "video.example", video, time);
        expect(ks2, "www.games.example", games, time);
        expect(ks2, "chat.example", chat, time);
    }
    // A reload mid-period keeps the period's rules.
    clock.set(utc("2026-11-04T12:30:00Z"));
    expect(ks2, "video.example", None, "lunch");
    let outcome = lollipop.reload_with(|text| text.replace("ttl_secs = 30", "ttl_secs = 20"));
    assert_eq!(outcome, lollipop::service::reload::ReloadOutcome::Reloaded);
    assert_eq!(
        blocked(ks2, "video.example"),
        None,
        "still lunch after a reload"
    );
    // Summer time: Wednesday 9 September's lunch starts at 11:15 UTC.
    clock.set(utc("2026-09-09T11:10:00Z"));
    expect(ks2, "video.example", Some("video blocked"), "11:10 BST");
    clock.set(utc("2026-09-09T11:15:00Z"));
    expect(ks2, "video.example", None, "12:15 BST");
    // The block log names the rule of time.
    clock.set(utc("2026-11-04T12:20:00Z"));
    expect(
        ks2,
        "chat.example",
        Some("(blocked at lunch (12:15-13:15))"),
        "log",
    );
    lollipop.flush_log();
    let database = lollipop.dir().join("data/lollipop.db");
    let rows = lollipop::journal::query_blocked(&database, &Default::default()).expect("read");
    let rules: Vec<String> = rows.iter().filter_map(|r| r.rule.clone()).collect();
    assert!(
        rules
            .iter()
            .any(|rule| rule == "chat.example; blocked at lunch (12:15-13:15)"),
        "{rules:?}"
    );
}

#[test]
fn a_week_with_an_inset_day() {
    // Monday 2 November 2026 is an INSET day in the term-dates fixture.
    let clock = Clock::set_at(utc("2026-11-02T12:30:00Z"));
    let (lollipop, _upstream) = start(&clock);
    let (ks2, staff) = (lollipop.addresses[0], lollipop.addresses[1]);
    // INSET lunch: no pupils, so no lunch rule for ks2; staff in term.
    expect(
        ks2,
        "video.example",
        Some("video blocked for profile ks2"),
        "Mon",
    );
    expect(staff, "video.example", None, "Mon staff");
    expect(
        staff,
        "games.example",
        Some("games blocked for profile staff"),
        "Mon",
    );
    // Tuesday to Friday lunch: video open for ks2.
    for day in ["03", "04", "05", "06"] {
        clock.set(utc(&format!("2026-11-{day}T12:30:00Z")));
        expect(ks2, "video.example", None, day);
        clock.set(utc(&format!("2026-11-{day}T14:00:00Z")));
        expect(ks2, "video.example", Some("video blocked"), day);
    }
    // Saturday: staff devices get ks2's rules, and the EDE says why.
    clock.set(utc("2026-11-07T11:00:00Z"));
    expect(
        staff,
        "video.example",
        Some("video blocked for profile staff (out of term: the rules of profile ks2)"),
        "Sat",
    );
    expect(ks2, "video.example", Some("video blocked"), "Sat");
    // Saturday evening: staff's evening rule opens games.
    clock.set(utc("2026-11-07T19:00:00Z"));
    expect(staff, "games.example", None, "Sat evening");
    // Sunday 08:00, after the evening: ks2's rules again, games blocked.
    clock.set(utc("2026-11-08T08:00:00Z"));
    expect(
        staff,
        "games.example",
        Some("(out of term: the rules of profile ks2)"),
        "Sun",
    );
    // Monday 9th: a term day, staff's own rules.
    clock.set(utc("2026-11-09T10:00:00Z"));
    expect(staff, "video.example", None, "Mon 9th");
}

#[test]
fn the_march_and_october_clock_changes_move_the_evening() {
    // Staff games are open 18:00-07:00 local time, every day.
    let clock = Clock::set_at(utc("2026-03-28T19:00:00Z"));
    let (lollipop, _upstream) = start(&clock);
    let staff = lollipop.addresses[1];
    // Sunday 29 March 2026: at 01:00 GMT the clocks go forward.
    let march = [
        ("2026-03-28T17:59:00Z", false),
        ("2026-03-28T19:00:00Z", true),
        ("2026-03-29T00:59:00Z", true),
        ("2026-03-29T01:00:00Z", true),
        // 06:59 BST.
        ("2026-03-29T05:59:00Z", true),
        // 07:00 BST, an hour before 07:00 GMT would have been.
        ("2026-03-29T06:00:00Z", false),
        // 18:00 BST on Sunday.
        ("2026-03-29T16:59:00Z", false),
        ("2026-03-29T17:00:00Z", true),
    ];
    // Sunday 25 October 2026: at 01:00 UTC (02:00 BST) they go back.
    let october = [
        // 17:59 BST on Saturday.
        ("2026-10-24T16:59:00Z", false),
        ("2026-10-24T17:00:00Z", true),
        ("2026-10-25T00:59:00Z", true),
        ("2026-10-25T01:00:00Z", true),
        // 06:59 GMT.
        ("2026-10-25T06:59:00Z", true),
        ("2026-10-25T07:00:00Z", false),
    ];
    for (at, open) in march.into_iter().chain(october) {
        clock.set(utc(at));
        let wanted = (!open).then_some("games blocked for profile staff");
        expect(staff, "games.example", wanted, at);
    }
}

/// The 1970 boot, on the binary itself: the time comes from a file the
/// test rewrites (`LOLLIPOP_TEST_CLOCK_FILE`), and the clock is trusted
/// once it reads later than the time saved at the last shutdown.
#[test]
fn a_1970_boot_is_strict_until_the_clock_is_set() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let first = format!("127.0.0.1:{port}");
    let second = format!("127.0.0.2:{port}");
    let config = school(
        &first,
        &second,
        "clock_synced_file = \"not-synced-yet\"\nclock_state_file = \"clock-saved\"",
    );
    for (name, content) in FILES {
        std::fs::write(dir.path().join(name), content).expect("write");
    }
    // Saved at the last shutdown: 1 November 2026.
    std::fs::write(dir.path().join("clock-saved"), "1793491200\n").expect("saved");
    let time = dir.path().join("time");
    std::fs::write(&time, "0").expect("time");
    let config_path = dir.path().join("lollipop.toml");
    std::fs::write(&config_path, expand(&config, &upstream, dir.path())).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .args(["--config"])
        .arg(&config_path)
        .arg("run")
        .env(lollipop::clock::TEST_CLOCK_ENV, &time)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let _process = Process(child);
    let ks2: SocketAddr = first.parse().expect("addr");
    let staff: SocketAddr = second.parse().expect("addr");
    wait_until("the binary answers", || {
        let question = query_message(
            "chat.example.",
            hickory_server::proto::rr::RecordType::A,
            Ask::default(),
        );
        use hickory_server::proto::serialize::binary::BinEncodable;
        exchange_udp(ks2, &question.to_bytes().expect("encode")).is_some()
    });
    // 1970: chat (blocked by a lunch rule) is blocked all day, video
    // (allowed by one) stays blocked, staff keep their own rules.
    expect(
        ks2,
        "chat.example",
        Some("(blocked the clock is not set yet: strictest rules)"),
        "1970",
    );
    expect(
        ks2,
        "video.example",
        Some("video blocked for profile ks2"),
        "1970",
    );
    expect(staff, "video.example", None, "1970 staff");
    // Still 1970 at what would be lunch: nothing opens.
    std::fs::write(&time, "1970-01-01T12:30:00Z").expect("time");
    std::thread::sleep(Duration::from_millis(400));
    assert!(blocked(ks2, "video.example").is_some());
    // NTP sets the clock: Wednesday 4 November 2026, lunch.
    std::fs::write(&time, "2026-11-04T12:30:00Z").expect("time");
    expect(ks2, "video.example", None, "set, lunch");
    expect(
        ks2,
        "chat.example",
        Some("(blocked at lunch (12:15-13:15))"),
        "set, lunch",
    );
    std::fs::write(&time, "2026-11-04T14:00:00Z").expect("time");
    expect(ks2, "chat.example", None, "set, afternoon");
    expect(
        ks2,
        "video.example",
        Some("video blocked"),
        "set, afternoon",
    );
}

/// The dashboard shows what the calendar says now, the rules of time in
/// force, and the term dates imported from the iCalendar fixture.
#[test]
fn the_status_page_shows_school_time_and_the_imported_term_dates() {
    use crate::support::web::{WebClient, WebSchool};
    let upstream = TestUpstream::start();
    let port = free_port();
    let config = format!(
        "{}\n[web]\nlisten = [\"127.0.0.1:{port}\"]\n",
        school(
            "127.0.0.1:0",
            "127.0.0.2:0",
            "clock_synced_file = \"synced\""
        )
    );
    // Wednesday 4 November 2026, 12:30: lunch.
    let clock = Clock::set_at(utc("2026-11-04T12:30:00Z"));
    let lollipop = TestLollipop::start_at(&config, &upstream, &FILES, |_| {}, clock);
    let password = WebSchool::password("head");
    lollipop::admin::AdminStore::open(&lollipop.dir().join("data/admin.db"))
        .and_then(|store| store.set_user("head", lollipop::admin::Role::Viewer, &password, "test"))
        .expect("user");
    let client = WebClient::new(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(client.sign_in("head", &password).status, 303);
    let page = client.get("/");
    assert_eq!(page.status, 200);
    // Check says what holds now and when it changes.
    let check = client.get("/check?name=video.example&profile=ks2");
    assert!(
        check.body.contains("allowed at lunch (12:15-13:15)"),
        "{}",
        check.body
    );
    let check = client.get("/check?name=games.example&profile=ks2");
    assert!(
        check
            .body
            .contains("allowed 15:15-17:00 at after-school club on school days"),
        "{}",
        check.body
    );
    for words in [
        "School time",
        "Now: Lunch until 13:15 (term day)",
        "Video open; chat closed for Key Stage 2 until 13:15 (at lunch (12:15-13:15))",
        "term-dates.ics: 3 terms, 3 closures, 3 INSET days",
        "Parents&#39; evening",
        "Staff training day (INSET)",
        "Spring Term 2027: Tuesday 5 January 2027 to Friday 26 March 2027",
    ] {
        assert!(page.body.contains(words), "{words} not in:\n{}", page.body);
    }
}

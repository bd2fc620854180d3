//! What waits for a clock that can be believed (issue 19), over the running
//! service with a set clock: the block log's retention (while the clock is
//! behind the time saved at the last shutdown, and after a jump years
//! ahead without NTP: the rows stay until NTP has synced), and the unlock
//! expiry sweeper. And the unlock form out of term: a teacher is refused
//! in plain words over HTTP, an administrator is not.

use std::time::{Duration, Instant};

use crate::support::web::{SCHOOL_LISTS, WebSchool, school};
use crate::support::*;
use lollipop::admin::Role;

/// Unix ms of a UTC time.
fn utc(text: &str) -> i64 {
    lollipop::clock::parse_test_time(text).expect("time")
}

/// The time saved at the last shutdown, and where NTP's mark would be.
fn with_clock_files(config: &str, synced: &str) -> String {
    let resolver = "timeout_ms = 1500\nattempts = 1";
    assert!(config.contains(resolver), "{config}");
    config.replacen(
        resolver,
        &format!(
            "{resolver}\nclock_synced_file = \"{synced}\"\nclock_state_file = \"clock-saved\""
        ),
        1,
    )
}

/// `SCHOOL_LISTS` and the saved time, `saved` (Unix seconds).
fn files(saved: i64, more: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&str, String)> = SCHOOL_LISTS
        .iter()
        .chain(more)
        .map(|(name, text)| (*name, text.to_string()))
        .collect();
    files.push(("clock-saved", format!("{saved}\n")));
    files
}

fn start(config: &str, files: &[(&str, String)], clock: &Clock) -> (TestLollipop, TestUpstream) {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let upstream = TestUpstream::start();
    let lollipop = TestLollipop::start_at(config, &upstream, &files, |_| {}, clock.clone());
    (lollipop, upstream)
}

/// The fields of the unlock form as `submit` takes them.
fn form<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn blocked_rows(lollipop: &TestLollipop) -> usize {
    lollipop.flush_log();
    let database = lollipop.dir().join("data/lollipop.db");
    lollipop::journal::query_blocked(&database, &Default::default())
        .expect("read")
        .len()
}

#[test]
fn retention_waits_for_a_clock_behind_the_saved_time_or_far_ahead_of_it() {
    // Saved at the last shutdown: Sunday 1 November 2026, 00:00 UTC.
    let saved = utc("2026-11-01T00:00:00Z") / 1000;
    let config = with_clock_files(
        &TestConfig::school()
            .listen_for("127.0.0.1:0", "ks2")
            .table("log", "blocked_retention_days = 365")
            .blocklist("ks2", &["gambling"], "")
            .toml(),
        "synced-by-ntp",
    );
    // A clock behind the saved time: not trusted, nothing pruned.
    let clock = Clock::set_at(utc("2026-10-30T10:00:00Z"));
    let (lollipop, _upstream) = start(&config, &files(saved, &[]), &clock);
    let journal = lollipop.running().journal.clone();
    wait_for("held before the clock is set", || journal.pruning_held());
    let report = lollipop.block_on(journal.prune_now()).expect("answers");
    assert!(report.held, "{report:?}");

    // The clock passes the saved time (trusted), a row is logged, and a
    // retention run goes ahead and keeps it (it is a day old at most).
    clock.set(utc("2026-11-04T10:00:00Z"));
    wait_for("retention runs", || !journal.pruning_held());
    assert_eq!(
        answers(&a(lollipop.address(), "www.bet365.com.")),
        ["A 0.0.0.0"]
    );
    assert_eq!(blocked_rows(&lollipop), 1);
    let report = lollipop.block_on(journal.prune_now()).expect("pruned");
    assert!(!report.held, "{report:?}");
    assert_eq!(report.blocked_deleted, 0);

    // A jump to 2030 without NTP: the row is four years old by that clock,
    // but retention waits, and the row stays.
    clock.set(utc("2030-01-01T10:00:00Z"));
    wait_for("held after the jump", || journal.pruning_held());
    let report = lollipop.block_on(journal.prune_now()).expect("answers");
    assert!(report.held, "{report:?}");
    assert_eq!(blocked_rows(&lollipop), 1, "a jump ahead deletes nothing");

    // NTP confirms the date: retention runs, and the old row goes.
    std::fs::write(lollipop.dir().join("synced-by-ntp"), "").expect("synced");
    wait_for("retention runs after NTP", || !journal.pruning_held());
    let report = lollipop.block_on(journal.prune_now()).expect("pruned");
    assert_eq!(report.blocked_deleted, 1, "{report:?}");
    assert_eq!(blocked_rows(&lollipop), 0);
}

#[test]
fn unlock_expiry_waits_for_a_trusted_clock() {
    // Saved at the last shutdown: Monday 8 March 2027, 09:00 UTC; the
    // clock reads 08:00 (behind it, so not trusted).
    let saved = utc("2027-03-08T09:00:00Z") / 1000;
    let port = free_port();
    let config = with_clock_files(
        &school(&format!("listen = [\"127.0.0.1:{port}\"]")),
        "synced-by-ntp",
    );
    let clock = Clock::set_at(utc("2027-03-08T08:00:00Z"));
    let (lollipop, upstream) = start(&config, &files(saved, &[]), &clock);
    let school = WebSchool {
        upstream,
        lollipop,
        web: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    // Two overrides granted at 07:00: one ran out at 08:30, the other runs
    // out at 09:30:02.
    let db = rusqlite::Connection::open(school.lollipop.dir().join("data/admin.db")).expect("db");
    for (target, expires) in [
        ("bet365.com", "2027-03-08T08:30:00Z"),
        ("youtube.com", "2027-03-08T09:30:02Z"),
    ] {
        db.execute(
            "INSERT INTO overrides (target_kind, target, scope_kind, scope, reason, granted_by, starts_at, expires_at)
             VALUES ('domain', ?1, 'listener', '127.0.0.1:53', 'probability', 'tech', ?2, ?3)",
            rusqlite::params![target, utc("2027-03-08T07:00:00Z"), utc(expires)],
        )
        .expect("override");
    }
    let expired = |school: &WebSchool| -> Vec<String> {
        school
            .audit()
            .into_iter()
            .filter(|entry| entry.action == "override expired")
            .map(|entry| entry.detail)
            .collect()
    };
    // 08:45 by a clock that cannot be believed: no expiry is recorded.
    clock.set(utc("2027-03-08T08:45:00Z"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        expired(&school),
        Vec::<String>::new(),
        "recorded by an untrusted clock"
    );
    // The clock passes the saved time. The 08:30 expiry was read by the
    // untrusted clock, so it is never recorded with a time that may be
    // wrong; the sweeper goes on from here.
    clock.set(utc("2027-03-08T09:30:00Z"));
    let pipeline = school.lollipop.running().pipeline.clone();
    wait_for("the clock is trusted", || {
        pipeline.settings().policy.time.trusted
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(expired(&school), Vec::<String>::new());
    // The other one runs out by the trusted clock: recorded, once.
    clock.set(utc("2027-03-08T09:30:05Z"));
    wait_for("the expiry is recorded", || expired(&school).len() == 1);
    std::thread::sleep(Duration::from_millis(1500));
    let expired = expired(&school);
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert!(expired[0].contains("youtube.com"), "{expired:?}");
}

#[test]
fn out_of_term_a_teacher_is_refused_in_plain_words_and_an_administrator_unlocks() {
    let (ks2_port, staff_port, port) = (free_port(), free_port(), free_port());
    let holidays = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lists/calendar/bank-holidays.json"
    );
    let config = with_clock_files(
        &school(&format!("listen = [\"127.0.0.1:{port}\"]")),
        "synced",
    )
    .replacen("127.0.0.1:0", &format!("127.0.0.1:{ks2_port}"), 1)
    .replacen("127.0.0.1:0", &format!("127.0.0.1:{staff_port}"), 1)
        + &format!(
            r#"
[calendar]
bank_holidays = "{holidays}"
terms = [{{ name = "Spring", start = "2027-01-05", end = "2027-03-26" }}]
[[calendar.periods]]
name = "lessons"
start = "08:45"
end = "15:15"
"#
        );
    // Saturday 6 March 2027, 10:00 UTC; NTP has synced.
    let clock = Clock::set_at(utc("2027-03-06T10:00:00Z"));
    let (lollipop, upstream) = start(&config, &files(0, &[("synced", "")]), &clock);
    let school = WebSchool {
        upstream,
        lollipop,
        web: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let short = |name: &str| dig(school.ks2(), &[name, "A", "+short"]).trim().to_string();
    assert_eq!(short("www.bet365.com"), "0.0.0.0");
    let room = format!("listener:{}", school.ks2());
    let fields = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![
            ("domain", "bet365.com".to_string()),
            ("scope", "room".to_string()),
            ("room", room.clone()),
            ("duration", "lesson".to_string()),
            ("reason", "Year 6 maths: probability".to_string()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        fields
    };

    // A teacher's code, out of term: refused, in words, nothing unlocked.
    school.teacher_with_code("ms.khan", "472913");
    let teacher = fields(&[("name", "ms.khan"), ("code", "472913")]);
    let reply = school
        .client()
        .submit("/unlock", "/unlock", &form(&teacher));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains(
            "The school is out of term today (Saturday): only an administrator can unlock a site now."
        ),
        "{}",
        reply.body
    );
    assert_eq!(short("www.bet365.com"), "0.0.0.0");
    assert!(
        school
            .audit()
            .iter()
            .any(|entry| entry.action == "override refused" && entry.actor == "ms.khan")
    );

    // An administrator may.
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit("/unlock", "/unlock", &form(&fields(&[])));
    assert_eq!(reply.status, 303, "{}", reply.body);
    wait_for("unlocked for the room", || {
        short("www.bet365.com") != "0.0.0.0"
    });
}

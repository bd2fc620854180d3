use super::*;

fn day(text: &str) -> i64 {
    parse_date(text).expect("date")
}

/// Unix ms of a UTC wall time.
fn utc(date: &str, h: i64, m: i64) -> i64 {
    day(date) * DAY_MS + (h * 60 + m) * MINUTE_MS
}

fn period(name: &str, start: &str, end: &str) -> Period {
    Period {
        name: name.into(),
        label: name.into(),
        start: parse_hhmm(start).expect("time"),
        end: parse_hhmm(end).expect("time"),
        days: MONDAY_TO_FRIDAY,
        school: true,
    }
}

fn school() -> Calendar {
    let mut evening = period("evening", "18:00", "07:00");
    evening.school = false;
    evening.days = EVERY_DAY;
    Calendar {
        time_zone: TimeZone::EuropeLondon,
        periods: vec![
            period("morning", "08:45", "12:15"),
            period("lunch", "12:15", "13:15"),
            period("afternoon", "13:15", "15:15"),
            period("club", "15:15", "17:00"),
            evening,
        ],
        terms: vec![
            DayRange {
                name: "Spring".into(),
                first: day("2026-01-05"),
                last: day("2026-03-27"),
            },
            DayRange {
                name: "Autumn".into(),
                first: day("2026-09-02"),
                last: day("2026-12-18"),
            },
        ],
        closures: vec![DayRange {
            name: "half term".into(),
            first: day("2026-10-26"),
            last: day("2026-10-30"),
        }],
        inset_days: [(day("2026-11-02"), "INSET".to_string())].into(),
        bank_holidays: [(day("2026-12-25"), "Christmas Day".to_string())].into(),
        school_day_ends: None,
        sources: Vec::new(),
    }
}

fn names(calendar: &Calendar, moment: &Moment) -> Vec<String> {
    moment
        .periods
        .iter()
        .map(|p| calendar.periods[p.index].name.clone())
        .collect()
}

#[test]
fn a_term_day_runs_through_its_periods_in_local_time() {
    let cal = school();
    // Wednesday 4 November 2026, GMT: local time is UTC.
    let at = |h, m| cal.at(utc("2026-11-04", h, m), Audience::Children);
    assert!(names(&cal, &at(8, 0)).is_empty());
    assert_eq!(names(&cal, &at(12, 15)), ["lunch"]);
    assert_eq!(names(&cal, &at(13, 14)), ["lunch"]);
    assert_eq!(names(&cal, &at(13, 15)), ["afternoon"]);
    assert_eq!(at(13, 0).periods[0].ends_at, utc("2026-11-04", 13, 15));
    assert_eq!(names(&cal, &at(19, 0)), ["evening"]);
    // In summer time the same wall clock is an hour earlier in UTC.
    let summer = cal.at(utc("2026-09-09", 11, 15), Audience::Children);
    assert_eq!(names(&cal, &summer), ["lunch"]);
    // The next change from mid-morning is the start of lunch.
    assert_eq!(
        cal.next_change(utc("2026-11-04", 10, 0)),
        utc("2026-11-04", 12, 15)
    );
    assert_eq!(
        cal.school_day_end(utc("2026-11-04", 10, 0), Audience::Children),
        Some(utc("2026-11-04", 17, 0))
    );
}

#[test]
fn a_period_past_midnight_belongs_to_the_day_it_started() {
    let cal = school();
    // Friday evening runs into Saturday morning, and Saturday's starts
    // again at 18:00 (not a school period: every day).
    let early_saturday = cal.at(utc("2026-11-07", 6, 59), Audience::Staff);
    assert_eq!(names(&cal, &early_saturday), ["evening"]);
    assert_eq!(
        early_saturday.periods[0].starts_at,
        utc("2026-11-06", 18, 0)
    );
    assert!(!early_saturday.in_term);
    assert!(
        cal.at(utc("2026-11-07", 7, 0), Audience::Staff)
            .periods
            .is_empty()
    );
    assert_eq!(
        cal.next_change(utc("2026-11-06", 23, 0)),
        utc("2026-11-07", 0, 0),
        "midnight is a change (the day's kind may change)"
    );
    assert_eq!(
        cal.next_change(utc("2026-11-07", 0, 0)),
        utc("2026-11-07", 7, 0)
    );
}

#[test]
fn inset_days_are_term_for_staff_and_holiday_for_pupils() {
    let cal = school();
    let lunch = utc("2026-11-02", 12, 30);
    let pupils = cal.at(lunch, Audience::Children);
    let staff = cal.at(lunch, Audience::Staff);
    assert_eq!(pupils.day, DayKind::Inset);
    assert!(!pupils.in_term && pupils.periods.is_empty());
    assert!(staff.in_term);
    assert_eq!(names(&cal, &staff), ["lunch"]);
    // Half term, weekends and bank holidays are out of term for all.
    for (date, words) in [
        ("2026-10-27", "half term"),
        ("2026-11-07", "Saturday"),
        ("2026-12-25", "Christmas Day"),
        ("2026-08-10", "school holiday"),
    ] {
        let kind = cal.day_kind(day(date));
        assert!(kind.describe().contains(words), "{date}: {kind:?}");
        assert!(!kind.in_term_for(Audience::Staff));
    }
    assert_eq!(
        cal.next_term_day(day("2026-10-24"), Audience::Children),
        Some(day("2026-11-03"))
    );
}

#[test]
fn the_clock_changes_move_instants_not_wall_times() {
    let cal = school();
    // Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST. The evening
    // that started on Saturday at 18:00 GMT ends at 07:00 BST (06:00 UTC).
    let night = cal.at(utc("2026-03-29", 3, 0), Audience::Staff);
    assert_eq!(names(&cal, &night), ["evening"]);
    assert_eq!(night.periods[0].starts_at, utc("2026-03-28", 18, 0));
    assert_eq!(night.periods[0].ends_at, utc("2026-03-29", 6, 0));
    assert_eq!(
        cal.next_change(utc("2026-03-29", 3, 0)),
        utc("2026-03-29", 6, 0)
    );
    // Monday 30 March is in term (the Spring term ends on the 27th: no).
    assert!(
        !cal.day_kind(day("2026-03-30"))
            .in_term_for(Audience::Children)
    );
    // Sunday 25 October 2026: 02:00 BST becomes 01:00 GMT; the evening
    // from Saturday 18:00 BST (17:00 UTC) ends at 07:00 GMT.
    let night = cal.at(utc("2026-10-25", 1, 30), Audience::Staff);
    assert_eq!(night.periods[0].starts_at, utc("2026-10-24", 17, 0));
    assert_eq!(night.periods[0].ends_at, utc("2026-10-25", 7, 0));
    // Monday 2 November (GMT) lunch is at 12:15 UTC; on Wednesday 21
    // October (BST), 11:15 UTC.
    assert_eq!(
        cal.on_day(1, day("2026-11-02"), Audience::Staff),
        Some((utc("2026-11-02", 12, 15), utc("2026-11-02", 13, 15)))
    );
    assert_eq!(
        cal.on_day(1, day("2026-10-21"), Audience::Children),
        Some((utc("2026-10-21", 11, 15), utc("2026-10-21", 12, 15)))
    );
}

#[test]
fn a_1970_clock_is_out_of_term_with_no_periods_but_weekday_ones() {
    let cal = school();
    // Thursday 1 January 1970, 12:30: no term covers it.
    let moment = cal.at(12 * 3_600_000 + 30 * 60_000, Audience::Children);
    assert!(!moment.in_term);
    assert!(moment.periods.is_empty());
}

#[test]
fn times_and_dates_are_read_strictly() {
    assert_eq!(parse_hhmm("08:45"), Ok(525));
    assert_eq!(parse_hhmm("24:00"), Ok(1440));
    for bad in ["8.45", "25:00", "12:60", "12:5", "", "noon", "24:01"] {
        assert!(parse_hhmm(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_date("2026-09-03"), Ok(days_from(2026, 9, 3)));
    for bad in ["2026-02-29", "2026-9-31", "03/09/2026", "1969-12-31"] {
        assert!(parse_date(bad).is_err(), "{bad}");
    }
    assert_eq!(date_words(day("2026-11-02")), "Monday 2 November 2026");
}

fn days_from(y: i64, m: u32, d: u32) -> i64 {
    crate::clock::days_from_civil(y, m, d)
}

//! The school's calendar: the day's periods (registration, lessons, break,
//! lunch, after school) with their times, the terms, INSET days, closures
//! and the bank holidays of the school's nation, and what is in force at
//! one instant. Pure data and arithmetic on the school's local time: the
//! config builds a [`Calendar`] (`config::calendar`), the time rules
//! (`policy::time_rules`) read what [`Calendar::at`] says.
//!
//! Days are counted as days since 1970-01-01 in the school's time zone; a
//! time of day is minutes since local midnight. A period whose end is not
//! after its start runs past midnight into the next day. Converting a local
//! time to an instant goes through [`TimeZone`], so the March and October
//! clock changes move the instants, never the wall-clock times.

pub mod holidays;
pub mod ics;

use std::collections::BTreeMap;

use crate::clock::{TimeZone, civil_from_days};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Who a day is judged for: on an INSET day the building is open to staff
/// (their term rules) and closed to pupils (their out-of-term rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Children,
    Staff,
}

/// What kind of day a local day is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// A term day with pupils.
    Term,
    /// A staff training day: a term day without pupils.
    Inset,
    /// No school: a weekend, a holiday between or within terms, a bank
    /// holiday or a closure; the words say which.
    OutOfTerm(String),
}

impl DayKind {
    /// Whether `audience` is in school on such a day.
    pub fn in_term_for(&self, audience: Audience) -> bool {
        match self {
            DayKind::Term => true,
            DayKind::Inset => audience == Audience::Staff,
            DayKind::OutOfTerm(_) => false,
        }
    }

    /// "term day", "INSET day (staff only)", "out of term: Saturday".
    pub fn describe(&self) -> String {
        match self {
            DayKind::Term => "term day".into(),
            DayKind::Inset => "INSET day (staff only; pupils' out-of-term rules)".into(),
            DayKind::OutOfTerm(why) => format!("out of term: {why}"),
        }
    }
}

/// Days of the week as bits, Monday = bit 0.
pub type Weekdays = u8;
pub const MONDAY_TO_FRIDAY: Weekdays = 0b001_1111;
pub const EVERY_DAY: Weekdays = 0b111_1111;
pub const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
use crate::clock::people::DAY_NAMES as WEEKDAY_WORDS;

/// 0 for Monday .. 6 for Sunday.
pub fn weekday(day: i64) -> usize {
    // 1970-01-01 was a Thursday (3 counting from Monday).
    (day + 3).rem_euclid(7) as usize
}

/// One period of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// The name rules refer to it by ("lunch").
    pub name: String,
    /// What people call it ("Lunch").
    pub label: String,
    /// Minutes after local midnight.
    pub start: u32,
    /// Minutes after local midnight; not after `start`: the next day.
    pub end: u32,
    pub days: Weekdays,
    /// Part of the school day: happens only on days the audience is in
    /// term. Otherwise (an evening, a weekend club) on its days whatever
    /// the term.
    pub school: bool,
}

impl Period {
    fn spans_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// "12:15-13:15".
    pub fn times(&self) -> String {
        format!("{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

/// "09:05".
pub fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60)
}

/// A period happening now, with its instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePeriod {
    /// Index into [`Calendar::periods`].
    pub index: usize,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// What the calendar says at one instant for one audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    pub day: DayKind,
    pub in_term: bool,
    pub periods: Vec<ActivePeriod>,
}

/// A named range of local days, both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    pub name: String,
    pub first: i64,
    pub last: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    pub time_zone: TimeZone,
    pub periods: Vec<Period>,
    pub terms: Vec<DayRange>,
    /// Days inside terms the school is shut (half term written as a
    /// closure, a polling day).
    pub closures: Vec<DayRange>,
    /// Staff training days, with their names.
    pub inset_days: BTreeMap<i64, String>,
    /// Bank holidays of the school's nation, with their names.
    pub bank_holidays: BTreeMap<i64, String>,
    /// When the school day ends (minutes after midnight), for "the rest of
    /// the school day"; None: the end of the day's last school period.
    pub school_day_ends: Option<u32>,
    /// Where each term date and INSET day came from, for the status page
    /// ("term-dates.ics: 6 terms, 5 INSET days").
    pub sources: Vec<String>,
}

impl Calendar {
    /// The kind of local `day`.
    pub fn day_kind(&self, day: i64) -> DayKind {
        if let Some(name) = self.bank_holidays.get(&day) {
            return DayKind::OutOfTerm(format!("bank holiday ({name})"));
        }
        let wd = weekday(day);
        if wd >= 5 {
            return DayKind::OutOfTerm(WEEKDAY_WORDS[wd].into());
        }
        if self.inset_days.contains_key(&day) {
            return DayKind::Inset;
        }
        if let Some(closure) = self
            .closures
            .iter()
            .find(|c| (c.first..=c.last).contains(&day))
        {
            return DayKind::OutOfTerm(closure.name.clone());
        }
        if self.terms.iter().any(|t| (t.first..=t.last).contains(&day)) {
            DayKind::Term
        } else {
            DayKind::OutOfTerm("school holiday".into())
        }
    }

    /// Whether period `period` happens on local `day` for `audience`.
    fn happens(&self, period: &Period, day: i64, audience: Audience) -> bool {
        period.days & (1 << weekday(day)) != 0
            && (!period.school || self.day_kind(day).in_term_for(audience))
    }

    /// The instant of `minutes` after local midnight on `day` (for a time
    /// the clocks skip, the instant the clocks reach it after the change).
    pub fn instant(&self, day: i64, minutes: u32) -> i64 {
        let tz = self.time_zone;
        let offset = |at: i64| i64::from(tz.offset_seconds(at)) * 1000;
        let wall = day * DAY_MS + i64::from(minutes) * MINUTE_MS;
        wall - offset(wall - offset(wall))
    }

    /// The occurrence of `period` that starts on `day`, as instants.
    fn occurrence(&self, period: &Period, day: i64) -> (i64, i64) {
        let end_day = if period.spans_midnight() {
            day + 1
        } else {
            day
        };
        (
            self.instant(day, period.start),
            self.instant(end_day, period.end),
        )
    }

    /// The local day holding `at`.
    pub fn day_of(&self, at: i64) -> i64 {
        self.time_zone.local_day(at)
    }

    /// What is in force at `at` for `audience`.
    pub fn at(&self, at: i64, audience: Audience) -> Moment {
        let today = self.day_of(at);
        let day = self.day_kind(today);
        let mut periods = Vec::new();
        for (index, period) in self.periods.iter().enumerate() {
            // A period from yesterday may still run past midnight.
            for start_day in [today - 1, today] {
                if !self.happens(period, start_day, audience) {
                    continue;
                }
                let (starts_at, ends_at) = self.occurrence(period, start_day);
                if (starts_at..ends_at).contains(&at) {
                    periods.push(ActivePeriod {
                        index,
                        starts_at,
                        ends_at,
                    });
                }
            }
        }
        Moment {
            in_term: day.in_term_for(audience),
            day,
            periods,
        }
    }

    /// The next instant after `at` when what [`Calendar::at`] says may
    /// change for anyone: a period's start or end, or a local midnight.
    pub fn next_change(&self, at: i64) -> i64 {
        let today = self.day_of(at);
        let mut next = self.time_zone.start_of_local_day(today + 1);
        for period in &self.periods {
            for day in [today - 1, today, today + 1] {
                let (start, end) = self.occurrence(period, day);
                for edge in [start, end] {
                    if edge > at && edge < next {
                        next = edge;
                    }
                }
            }
        }
        next
    }

    /// The occurrences of period `index` on local `day` for `audience`
    /// (none if it does not happen that day).
    pub fn on_day(&self, index: usize, day: i64, audience: Audience) -> Option<(i64, i64)> {
        let period = self.periods.get(index)?;
        self.happens(period, day, audience)
            .then(|| self.occurrence(period, day))
    }

    /// When the school day holding `at` ends, if `at` is on a day in
    /// term for `audience` and before that end: `school_day_ends`, or the
    /// end of the day's last school period.
    pub fn school_day_end(&self, at: i64, audience: Audience) -> Option<i64> {
        let today = self.day_of(at);
        if !self.day_kind(today).in_term_for(audience) {
            return None;
        }
        let end = match self.school_day_ends {
            Some(minutes) => self.instant(today, minutes),
            None => self
                .periods
                .iter()
                .filter(|p| p.school && p.days & (1 << weekday(today)) != 0)
                .map(|p| self.occurrence(p, today).1)
                .max()?,
        };
        (at < end).then_some(end)
    }

    /// The first day on or after `from` that is in term for `audience`,
    /// looking a year ahead at most.
    pub fn next_term_day(&self, from: i64, audience: Audience) -> Option<i64> {
        (from..from + 366).find(|day| self.day_kind(*day).in_term_for(audience))
    }

    /// The last day any term covers, to warn when the dates run out.
    pub fn last_term_day(&self) -> Option<i64> {
        self.terms.iter().map(|t| t.last).max()
    }
}

/// `2026-09-03` for local day `day`.
pub fn date_text(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// "Thursday 3 September 2026".
pub fn date_words(day: i64) -> String {
    use crate::clock::people::MONTH_NAMES as MONTHS;
    let (y, m, d) = civil_from_days(day);
    let month = MONTHS.get(m as usize - 1).copied().unwrap_or("?");
    format!("{} {d} {month} {y}", WEEKDAY_WORDS[weekday(day)])
}

/// Parses "HH:MM" (24-hour; "24:00" is the end of the day).
pub fn parse_hhmm(text: &str) -> Result<u32, String> {
    let bad = || format!("'{text}' is not a time of day: write it as HH:MM, e.g. 12:15");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Parses "YYYY-MM-DD" into a day number.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date: write it as YYYY-MM-DD, e.g. 2026-09-03");
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d) = (
        y.parse::<i64>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(crate::clock::days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests;

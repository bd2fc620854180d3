//! Reads term dates from an iCalendar file (RFC 5545), the form local
//! authorities publish them in. Only what term dates need: each VEVENT's
//! DTSTART, DTEND and SUMMARY, all-day or timed, with folded lines and
//! escaped text. What an event is comes from its summary's words:
//! "INSET" or "training day" (staff training days), "half term",
//! "holiday", "closed" or "bank holiday" (closures), then "term" (a term's
//! dates); anything else is listed as not understood, never guessed at.

use crate::clock::TimeZone;

use super::{DayRange, date_text};

/// What an iCalendar file said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub terms: Vec<DayRange>,
    pub closures: Vec<DayRange>,
    pub inset_days: Vec<(i64, String)>,
    /// Events whose summary said none of the words above, as
    /// "line 12: Parents' evening (2026-10-08)".
    pub not_understood: Vec<String>,
}

/// A problem in the file, with its line (1-based, of the unfolded line's
/// first physical line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IcsError {
    pub line: usize,
    pub message: String,
}

/// What one event is, from its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inset,
    Closure,
    Term,
}

fn kind_of(summary: &str) -> Option<Kind> {
    let s = summary.to_ascii_lowercase();
    let has = |w: &str| s.contains(w);
    if has("inset") || has("training day") || has("staff development") || has("teacher day") {
        Some(Kind::Inset)
    } else if has("half term")
        || has("half-term")
        || has("holiday")
        || has("closed")
        || has("closure")
        || has("bank holiday")
    {
        Some(Kind::Closure)
    } else if has("term") {
        Some(Kind::Term)
    } else {
        None
    }
}

/// Reads `text` (a whole .ics file), taking dates in `tz`.
pub fn parse(text: &str, tz: TimeZone) -> Result<Imported, IcsError> {
    let lines = unfold(text);
    if !lines
        .iter()
        .any(|(_, line)| line.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err(IcsError {
            line: 1,
            message: "this is not an iCalendar file (no BEGIN:VCALENDAR)".into(),
        });
    }
    let mut out = Imported::default();
    let mut event: Option<Event> = None;
    for (number, line) in &lines {
        let (name_and_params, value) = match line.split_once(':') {
            Some(split) => split,
            None => continue,
        };
        let mut params = name_and_params.split(';');
        let name = params.next().unwrap_or("").to_ascii_uppercase();
        let is_date = params.any(|p| p.eq_ignore_ascii_case("VALUE=DATE"));
        match (name.as_str(), value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VEVENT") => {
                event = Some(Event {
                    line: *number,
                    ..Event::default()
                })
            }
            ("END", "VEVENT") => {
                let Some(done) = event.take() else {
                    return Err(IcsError {
                        line: *number,
                        message: "END:VEVENT without a BEGIN:VEVENT".into(),
                    });
                };
                done.finish(&mut out)?;
            }
            _ => {
                let Some(current) = event.as_mut() else {
                    continue;
                };
                match name.as_str() {
                    "DTSTART" => current.start = Some(read_day(value, is_date, tz, *number)?),
                    "DTEND" => current.end = Some(read_day(value, is_date, tz, *number)?),
                    "SUMMARY" => current.summary = unescape(value),
                    _ => {}
                }
            }
        }
    }
    if let Some(open) = event {
        return Err(IcsError {
            line: open.line,
            message: "an event that never ends (BEGIN:VEVENT without END:VEVENT)".into(),
        });
    }
    Ok(out)
}

/// One day of an event's start or end: `Date` is an all-day value (an
/// end is the day after the last), `Instant` a time, taken as its local day.
#[derive(Debug, Clone, Copy)]
enum Edge {
    Date(i64),
    Instant(i64),
}

#[derive(Debug, Default)]
struct Event {
    line: usize,
    start: Option<Edge>,
    end: Option<Edge>,
    summary: String,
}

impl Event {
    fn finish(self, out: &mut Imported) -> Result<(), IcsError> {
        let fail = |message: String| IcsError {
            line: self.line,
            message,
        };
        let first = match self.start {
            Some(Edge::Date(day)) | Some(Edge::Instant(day)) => day,
            None => {
                return Err(fail(format!("the event '{}' has no DTSTART", self.summary)));
            }
        };
        let last = match self.end {
            // All-day ends are exclusive (RFC 5545 3.6.1).
            Some(Edge::Date(day)) => day - 1,
            Some(Edge::Instant(day)) => day,
            None => first,
        }
        .max(first);
        if last - first > 400 {
            return Err(fail(format!(
                "the event '{}' lasts more than a year ({} to {}): check its DTEND",
                self.summary,
                date_text(first),
                date_text(last)
            )));
        }
        let name = if self.summary.is_empty() {
            "(no summary)".to_string()
        } else {
            self.summary.clone()
        };
        match kind_of(&self.summary) {
            Some(Kind::Inset) => {
                out.inset_days
                    .extend((first..=last).map(|day| (day, name.clone())));
            }
            Some(Kind::Closure) => out.closures.push(DayRange { name, first, last }),
            Some(Kind::Term) => out.terms.push(DayRange { name, first, last }),
            None => out.not_understood.push(format!(
                "line {}: {name} ({})",
                self.line,
                date_text(first)
            )),
        }
        Ok(())
    }
}

fn read_day(value: &str, is_date: bool, tz: TimeZone, line: usize) -> Result<Edge, IcsError> {
    let value = value.trim();
    let bad = || IcsError {
        line,
        message: format!(
            "'{value}' is not an iCalendar date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS)"
        ),
    };
    let digits = value.get(..8).ok_or_else(bad)?;
    let date = format!(
        "{}-{}-{}",
        digits.get(..4).ok_or_else(bad)?,
        digits.get(4..6).ok_or_else(bad)?,
        digits.get(6..8).ok_or_else(bad)?
    );
    let day = super::parse_date(&date).map_err(|_| bad())?;
    if is_date || value.len() == 8 {
        return Ok(Edge::Date(day));
    }
    // A UTC time may fall on another local day (23:00Z in summer is
    // midnight in London); a floating or TZID time is local already.
    let time = value.get(9..15).ok_or_else(bad)?;
    let (h, m) = (
        time.get(..2)
            .and_then(|h| h.parse::<i64>().ok())
            .ok_or_else(bad)?,
        time.get(2..4)
            .and_then(|m| m.parse::<i64>().ok())
            .ok_or_else(bad)?,
    );
    if value.ends_with(['Z', 'z']) {
        let at = day * 86_400_000 + (h * 60 + m) * 60_000;
        return Ok(Edge::Instant(tz.local_day(at)));
    }
    Ok(Edge::Instant(day))
}

/// Joins folded lines (a line starting with a space or tab continues the
/// one before), keeping each logical line's first line number.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ => lines.push((i + 1, raw.to_string())),
        }
    }
    lines
}

/// RFC 5545 TEXT escapes: `\,` `\;` `\\` `\n`.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') | Some('N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_date;

    const FIXTURE: &str = include_str!("../../tests/fixtures/term-dates.ics");

    fn day(text: &str) -> i64 {
        parse_date(text).expect("date")
    }

    #[test]
    fn the_fixture_gives_terms_closures_and_inset_days() {
        let imported = parse(FIXTURE, TimeZone::EuropeLondon).expect("parses");
        let terms: Vec<(&str, i64, i64)> = imported
            .terms
            .iter()
            .map(|t| (t.name.as_str(), t.first, t.last))
            .collect();
        assert_eq!(
            terms,
            vec![
                ("Autumn Term 2026", day("2026-09-02"), day("2026-12-18")),
                ("Spring Term 2027", day("2027-01-05"), day("2027-03-26")),
                ("Summer Term 2027", day("2027-04-12"), day("2027-07-21")),
            ]
        );
        // An all-day DTEND is the day after the last.
        assert_eq!(imported.closures[0].first, day("2026-10-26"));
        assert_eq!(imported.closures[0].last, day("2026-10-30"));
        let inset: Vec<i64> = imported.inset_days.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            inset,
            vec![day("2026-09-02"), day("2026-11-02"), day("2027-01-05")]
        );
        // A folded, escaped summary is read whole.
        assert!(
            imported.inset_days[1].1.contains("INSET day, whole staff"),
            "{:?}",
            imported.inset_days
        );
        assert_eq!(imported.not_understood.len(), 1, "{imported:?}");
        assert!(imported.not_understood[0].contains("Parents"));
    }

    #[test]
    fn timed_events_take_their_local_day() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260901T230000Z\r\nDTEND:20260902T150000Z\r\nSUMMARY:INSET\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let imported = parse(text, TimeZone::EuropeLondon).expect("parses");
        // 23:00 UTC on 1 September is midnight on the 2nd in London.
        assert_eq!(
            imported.inset_days,
            vec![(day("2026-09-02"), "INSET".into())]
        );
    }

    #[test]
    fn broken_files_say_which_line() {
        let cases = [
            ("hello", 1, "not an iCalendar"),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Autumn term\nEND:VEVENT\n",
                2,
                "no DTSTART",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-09-03\nEND:VEVENT\n",
                3,
                "not an iCalendar date",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260231\nEND:VEVENT\n",
                3,
                "not an iCalendar date",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260903\n",
                2,
                "never ends",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Term\nDTSTART;VALUE=DATE:20260903\nDTEND;VALUE=DATE:20290903\nEND:VEVENT\n",
                2,
                "more than a year",
            ),
        ];
        for (text, line, words) in cases {
            let error = parse(text, TimeZone::Utc).expect_err(text);
            assert_eq!(error.line, line, "{text}: {error}");
            assert!(error.message.contains(words), "{text}: {error}");
        }
    }
}

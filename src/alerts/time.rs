//! Turns event timestamps into the wall-clock times a safeguarding lead reads
//! (UK civil time with the BST rule, or UTC): the calendar and clock parts of
//! a moment, and the formats an email and a webhook use.

pub use crate::clock::TimeZone;
use crate::clock::civil_from_days;
use crate::clock::people::{DAY_NAMES, MONTH_NAMES};

/// A broken-down calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u32,
    pub offset_secs: i64,
    pub abbrev: &'static str,
}

impl Civil {
    pub fn at(unix_ms: i64, zone: TimeZone) -> Civil {
        let secs = unix_ms.div_euclid(1000);
        let offset_secs = i64::from(zone.offset_seconds(unix_ms));
        let abbrev = match (zone, offset_secs) {
            (TimeZone::Utc, _) => "UTC",
            (TimeZone::EuropeLondon, 0) => "GMT",
            (TimeZone::EuropeLondon, _) => "BST",
        };
        let local = secs + offset_secs;
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            // 1970-01-01 was a Thursday (index 3 when Monday is 0).
            weekday: (days + 3).rem_euclid(7) as u32,
            offset_secs,
            abbrev,
        }
    }

    /// "14:03:07"
    pub fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// "Monday 7 April 2025, 14:03:07 BST" — what goes in an email.
    pub fn long(&self) -> String {
        format!(
            "{} {} {} {}, {} {}",
            DAY_NAMES[self.weekday as usize % 7],
            self.day,
            MONTH_NAMES[(self.month as usize + 11) % 12],
            self.year,
            self.clock(),
            self.abbrev
        )
    }

    /// "2025-04-07 13:03:07 UTC" — compact, sortable, unambiguous.
    pub fn short(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {} {}",
            self.year,
            self.month,
            self.day,
            self.clock(),
            self.abbrev
        )
    }

    /// RFC 3339 with the zone's offset, for machines reading the webhook.
    pub fn rfc3339(&self) -> String {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.abs();
        let tail = if off == 0 && self.abbrev == "UTC" {
            "Z".to_string()
        } else {
            format!("{sign}{:02}:{:02}", off / 3600, off % 3600 / 60)
        };
        format!(
            "{:04}-{:02}-{:02}T{}{}",
            self.year,
            self.month,
            self.day,
            self.clock(),
            tail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::days_from_civil;

    fn ms(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000
    }

    #[test]
    fn bst_boundaries_2025() {
        // 2025: BST from Sunday 30 March 01:00 UTC to Sunday 26 October 01:00 UTC.
        let before = Civil::at(ms(2025, 3, 30, 0, 59, 59), TimeZone::EuropeLondon);
        assert_eq!((before.abbrev, before.hour), ("GMT", 0));
        let after = Civil::at(ms(2025, 3, 30, 1, 0, 0), TimeZone::EuropeLondon);
        assert_eq!((after.abbrev, after.hour), ("BST", 2));
        let late = Civil::at(ms(2025, 10, 26, 0, 59, 59), TimeZone::EuropeLondon);
        assert_eq!((late.abbrev, late.hour), ("BST", 1));
        let back = Civil::at(ms(2025, 10, 26, 1, 0, 0), TimeZone::EuropeLondon);
        assert_eq!((back.abbrev, back.hour), ("GMT", 1));
    }

    #[test]
    fn formats_read_naturally() {
        let t = Civil::at(ms(2025, 4, 7, 13, 3, 7), TimeZone::EuropeLondon);
        assert_eq!(t.long(), "Monday 7 April 2025, 14:03:07 BST");
        assert_eq!(t.rfc3339(), "2025-04-07T14:03:07+01:00");
        let u = Civil::at(ms(2024, 2, 29, 23, 0, 0), TimeZone::Utc);
        assert_eq!(u.long(), "Thursday 29 February 2024, 23:00:00 UTC");
        assert_eq!(u.rfc3339(), "2024-02-29T23:00:00Z");
        let g = Civil::at(ms(2024, 12, 25, 9, 30, 0), TimeZone::EuropeLondon);
        assert_eq!(g.rfc3339(), "2024-12-25T09:30:00+00:00");
    }
}

//! The time of day, in one place: what "now" is for every part of Lollipop
//! (Unix milliseconds or seconds), the school's time zone and calendar
//! ([`tz`]), and how an age reads ("3 h 12 min ago").
//!
//! Code that only needs "now" calls [`now_unix_ms`] or [`now_unix_secs`].
//! A component whose behaviour depends on the time (school time, retention,
//! unlock expiry, the weekly report) takes a [`Clock`] instead, so that a
//! test can set the time rather than wait for it.

pub mod people;
pub mod tz;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use tz::{
    TimeZone, UnknownTimeZone, civil_from_days, days_from_civil, format_utc, start_of_day,
};

/// The system's time now, in Unix milliseconds (0 if the system clock is
/// before 1970).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The system's time now, in whole Unix seconds (0 if the system clock is
/// before 1970).
pub fn now_unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where "now" comes from: the system clock, or a time a test sets and
/// moves. Cheap to clone; clones of a set clock share its time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` for the system clock; otherwise the set time, in Unix ms.
    set: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { set: None }
    }

    /// A clock that reads `unix_ms` until it is set or advanced.
    pub fn set_at(unix_ms: i64) -> Clock {
        Clock {
            set: Some(Arc::new(AtomicI64::new(unix_ms))),
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        self.set.is_none()
    }

    /// Now, in Unix milliseconds.
    pub fn now_unix_ms(&self) -> i64 {
        match &self.set {
            None => now_unix_ms(),
            Some(at) => at.load(Ordering::Relaxed),
        }
    }

    /// Now, in whole Unix seconds (0 before 1970).
    pub fn now_unix_secs(&self) -> u64 {
        match &self.set {
            None => now_unix_secs(),
            Some(at) => u64::try_from(at.load(Ordering::Relaxed) / 1000).unwrap_or(0),
        }
    }

    /// Sets a set clock to `unix_ms` (every clone sees it). The system
    /// clock is not changed.
    pub fn set(&self, unix_ms: i64) {
        if let Some(at) = &self.set {
            at.store(unix_ms, Ordering::Relaxed);
        }
    }

    /// Moves a set clock on by `by`. The system clock is not changed.
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.set {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            at.fetch_add(by, Ordering::Relaxed);
        }
    }
}

/// "3 h 12 min ago", "2 days ago".
pub fn age(seconds: u64) -> String {
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h {} min ago", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_reads_what_it_was_set_to_in_every_clone() {
        let clock = Clock::set_at(1_768_435_200_000);
        let seen_by_a_task = clock.clone();
        assert!(!clock.is_system());
        assert_eq!(seen_by_a_task.now_unix_ms(), 1_768_435_200_000);
        assert_eq!(seen_by_a_task.now_unix_secs(), 1_768_435_200);
        clock.advance(Duration::from_secs(90));
        assert_eq!(seen_by_a_task.now_unix_ms(), 1_768_435_290_000);
        clock.set(5_000);
        assert_eq!(seen_by_a_task.now_unix_ms(), 5_000);
        // Before 1970 reads as 0 seconds rather than wrapping.
        clock.set(-5_000);
        assert_eq!(seen_by_a_task.now_unix_secs(), 0);
    }

    #[test]
    fn the_system_clock_is_the_default_and_cannot_be_set() {
        let clock = Clock::default();
        assert!(clock.is_system());
        let before = now_unix_ms();
        clock.set(0);
        clock.advance(Duration::from_secs(3600));
        let read = clock.now_unix_ms();
        assert!(
            read >= before && read < before + 60_000,
            "{read} vs {before}"
        );
        assert!(clock.now_unix_secs() >= now_unix_secs().saturating_sub(60));
    }

    #[test]
    fn ages_read_as_words() {
        assert_eq!(age(0), "just now");
        assert_eq!(age(59), "just now");
        assert_eq!(age(60), "1 min ago");
        assert_eq!(age(3 * 3600 + 12 * 60), "3 h 12 min ago");
        assert_eq!(age(2 * 86_400 + 5), "2 days ago");
    }
}

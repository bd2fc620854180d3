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

    /// The system clock, unless the environment names a test clock:
    /// `LOLLIPOP_TEST_CLOCK_FILE=PATH`, a file holding the time to read
    /// (Unix milliseconds, or `YYYY-MM-DDTHH:MM:SSZ`), looked at every 20 ms
    /// so a test moves the running binary's time by rewriting it. For the
    /// integration tests only (they drive a day, a term and a 1970 boot
    /// through real sockets); an appliance never sets it. One clock per
    /// process, so every part reads the same time.
    pub fn from_env() -> Clock {
        static FROM_ENV: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
        FROM_ENV
            .get_or_init(|| match std::env::var_os(TEST_CLOCK_ENV) {
                Some(path) => test_clock_from_file(std::path::PathBuf::from(path)),
                None => Clock::system(),
            })
            .clone()
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

/// The environment variable that names a test clock's file.
pub const TEST_CLOCK_ENV: &str = "LOLLIPOP_TEST_CLOCK_FILE";

/// A set clock following the time written in `path`.
fn test_clock_from_file(path: std::path::PathBuf) -> Clock {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| parse_test_time(text.trim()))
    };
    let first = read(&path).unwrap_or_else(now_unix_ms);
    tracing::warn!(
        "{TEST_CLOCK_ENV} is set: the time is read from {} (for tests only)",
        path.display()
    );
    let clock = Clock::set_at(first);
    let follower = clock.clone();
    let spawned = std::thread::Builder::new()
        .name("test-clock".into())
        .spawn(move || {
            loop {
                if let Some(at) = read(&path) {
                    follower.set(at);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    if let Err(error) = spawned {
        tracing::error!("the test clock cannot follow its file: {error}");
    }
    clock
}

/// Unix milliseconds, or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn parse_test_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(str::parse::<i64>);
    let (h, min, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let (m, day) = (u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some((days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + sec) * 1000)
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
    fn test_times_read_as_milliseconds_or_utc_text() {
        assert_eq!(parse_test_time("1768435200000"), Some(1_768_435_200_000));
        assert_eq!(
            parse_test_time("2026-01-15T00:00:00Z"),
            Some(1_768_435_200_000)
        );
        assert_eq!(parse_test_time("1970-01-01T00:00:05Z"), Some(5_000));
        for bad in [
            "",
            "2026-01-15",
            "2026-13-01T00:00:00Z",
            "2026-01-15T24:00:00Z",
        ] {
            assert_eq!(parse_test_time(bad), None, "{bad}");
        }
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

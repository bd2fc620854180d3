//! Whether the system clock can be trusted for DNSSEC, and the time that
//! signatures are checked against. A Pi has no battery clock and may start
//! in 1970: until the time is known good, every signature would look "not
//! yet valid", the NTP servers' names would fail to resolve, and the clock
//! would never be set. So, as dnsmasq's `dnssec-no-timecheck` does, the
//! signature times are not held against the answer until the clock is
//! trusted: NTP has synchronised it (systemd-timesyncd's flag file exists),
//! or it reads later than the time Lollipop saved at its last shutdown (or
//! hourly while running).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::clock::Clock;
use crate::config::Config;

/// systemd-timesyncd creates this once it has set the clock from a time
/// server (and removes it at boot).
pub const DEFAULT_SYNCED_FILE: &str = "/run/systemd/timesync/synchronized";

/// The file in the data directory holding the last time Lollipop knew to be
/// right, in Unix seconds.
pub const STATE_FILE_NAME: &str = "clock-saved";

/// How far past the last known time a clock may read without NTP and
/// still prune the block log: a long weekend switched off.
pub const JUMP_ALLOWANCE_SECS: u64 = 4 * 86_400;

pub struct TrustedClock {
    clock: Clock,
    synced_file: PathBuf,
    state_file: PathBuf,
    /// The latest time known to have passed: the saved time, or the
    /// binary's build time (see [`known_past`]).
    floor: u64,
    /// When `floor` was read: the time since is added to it.
    read_at: Instant,
    /// Once trusted, always: a synchronised clock does not become wrong by
    /// itself, and the files need not be looked at again.
    trusted: AtomicBool,
}

impl TrustedClock {
    /// The clock `config`'s `[resolver]` names the files of, reading "now"
    /// from `clock`.
    pub fn from_config(config: &Config, clock: Clock) -> TrustedClock {
        let resolver = &config.resolver;
        let synced_file = resolver.clock_synced_file.as_deref().map_or_else(
            || PathBuf::from(DEFAULT_SYNCED_FILE),
            |path| config.resolve_path(path),
        );
        let state_file = resolver.clock_state_file.as_deref().map_or_else(
            || {
                config
                    .resolve_path(&config.server.data_dir)
                    .join(STATE_FILE_NAME)
            },
            |path| config.resolve_path(path),
        );
        TrustedClock::new(clock, synced_file, state_file)
    }

    pub fn new(clock: Clock, synced_file: PathBuf, state_file: PathBuf) -> TrustedClock {
        let floor = known_past(&state_file);
        TrustedClock {
            clock,
            synced_file,
            state_file,
            floor,
            read_at: Instant::now(),
            trusted: AtomicBool::new(false),
        }
    }

    /// Whether the clock is known good: synchronised by NTP, or not earlier
    /// than the latest time known to have passed.
    pub fn is_trusted(&self) -> bool {
        if self.trusted.load(Ordering::Relaxed) {
            return true;
        }
        // At or past the floor: a time saved by this very run (a reload
        // builds a new clock within the second the last one saved) is not
        // a clock gone back.
        let trusted = self.synced_file.exists() || self.clock.now_unix_secs() >= self.floor;
        if trusted {
            self.trusted.store(true, Ordering::Relaxed);
            tracing::info!("the system clock is trusted: DNSSEC signature times are checked again");
        }
        trusted
    }

    /// Tells the status page and `/metrics` whether signatures are being
    /// checked by a clock not yet trusted (only when `validating`); returns
    /// the time they are checked against, in RRSIG time.
    pub fn note(&self, stats: &crate::metrics::UpstreamStats, validating: bool) -> u32 {
        let time = self.validation_time();
        let untrusted = validating && !self.is_trusted();
        stats.clock_untrusted.store(untrusted, Ordering::Relaxed);
        stats.validating_as_of.store(time, Ordering::Relaxed);
        time as u32
    }

    /// The time DNSSEC signatures are checked against, in Unix seconds:
    /// now, once the clock is trusted. Before that, the latest time known
    /// to have passed (the saved time, else the build time) plus the time
    /// since it was read: the true time is at least that, and signatures
    /// are made to last days to weeks, so a time close below the true one
    /// falls inside most of them, where 1970 falls inside none. It is not
    /// the whole of `dnssec-no-timecheck` (hickory checks every signature
    /// against one time): a signature made after the saved time, or one
    /// that ran out since, still fails; only until the clock is set.
    pub fn validation_time(&self) -> u64 {
        if self.is_trusted() {
            self.clock.now_unix_secs()
        } else {
            self.floor + self.read_at.elapsed().as_secs()
        }
    }

    /// Whether the clock may be trusted with deleting old records: NTP has
    /// set it, or it is trusted and no more than [`JUMP_ALLOWANCE_SECS`]
    /// ahead of the time known to have passed plus the time since. A jump
    /// far ahead (a wrong RTC, a bad manual setting) makes the clock
    /// "later than saved" and so trusted, but must not age the block log
    /// out of existence; retention waits for NTP or a restart instead.
    pub fn may_prune(&self) -> bool {
        if self.synced_file.exists() {
            return true;
        }
        let expected = self.floor + self.read_at.elapsed().as_secs();
        self.is_trusted() && self.clock.now_unix_secs() <= expected + JUMP_ALLOWANCE_SECS
    }

    /// What the clock reads now, trusted or not.
    pub fn reads(&self) -> u64 {
        self.clock.now_unix_secs()
    }

    /// Saves the time now as known to have passed, if the clock is trusted
    /// (an untrusted clock would save 1970). At shutdown and hourly.
    pub fn save(&self) -> Result<()> {
        if !self.is_trusted() {
            return Ok(());
        }
        let now = self.clock.now_unix_secs();
        let temporary = self.state_file.with_extension("new");
        std::fs::write(&temporary, format!("{now}\n"))
            .and_then(|()| std::fs::rename(&temporary, &self.state_file))
            .with_context(|| {
                format!(
                    "cannot save the time to {}: after a restart with the clock unset, DNSSEC \
                     signatures are checked as of the build time instead (check the data \
                     directory is writable by Lollipop)",
                    self.state_file.display()
                )
            })
    }
}

/// The latest time known to have passed: the saved time or, when nothing
/// was saved yet (the first start), the time the running binary was built
/// (its file's modification time, which packaging keeps). The build time
/// rather than nothing: 1970 is inside no signature, a recent image's build
/// time is at least near the long-lived ones. The saved time is the better
/// guide (written hourly, it is at most an hour and the time switched off
/// behind) and is used alone once there is one.
fn known_past(state_file: &Path) -> u64 {
    let saved = std::fs::read_to_string(state_file)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    if let Some(saved) = saved {
        return saved;
    }
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|modified| modified.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: u64 = 1_579_046_400; // 2020-01-15

    fn with_saved(dir: &Path, saved: u64) -> PathBuf {
        let state = dir.join(STATE_FILE_NAME);
        std::fs::write(&state, format!("{saved}\n")).expect("write");
        state
    }

    #[test]
    fn a_clock_behind_the_saved_time_is_not_trusted_and_validates_as_of_it() {
        let dir = tempfile::tempdir().expect("dir");
        let saved = SAVED;
        let state = with_saved(dir.path(), saved);
        let clock = Clock::set_at(86_400_000); // 2 January 1970
        let trusted = TrustedClock::new(clock.clone(), dir.path().join("synced"), state.clone());
        assert!(!trusted.is_trusted());
        let time = trusted.validation_time();
        assert!((saved..saved + 5).contains(&time), "{time}");
        // Nothing saved from an untrusted clock.
        trusted.save().expect("save");
        assert_eq!(known_past(&state), saved);

        // NTP synchronises: trusted, and the clock's own time from then on.
        std::fs::write(dir.path().join("synced"), "").expect("touch");
        clock.set(i64::try_from(saved + 3600).expect("fits") * 1000);
        assert!(trusted.is_trusted());
        assert_eq!(trusted.validation_time(), saved + 3600);
        trusted.save().expect("save");
        assert_eq!(known_past(&state), saved + 3600);
    }

    #[test]
    fn a_clock_later_than_the_saved_time_is_trusted_without_ntp() {
        let dir = tempfile::tempdir().expect("dir");
        let state = with_saved(dir.path(), SAVED);
        let trusted = TrustedClock::new(Clock::system(), dir.path().join("synced"), state);
        assert!(trusted.is_trusted());
    }

    #[test]
    fn a_clock_that_reads_the_saved_second_is_trusted() {
        // A reload builds a new clock within the second the running one
        // saved: that is not a clock gone back.
        let dir = tempfile::tempdir().expect("dir");
        let state = with_saved(dir.path(), SAVED);
        let clock = Clock::set_at(i64::try_from(SAVED).expect("fits") * 1000 + 400);
        let trusted = TrustedClock::new(clock, dir.path().join("synced"), state);
        assert!(trusted.is_trusted());
    }
}

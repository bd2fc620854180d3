//! Signed-in sessions, kept in memory (a restart signs everyone out), with
//! an idle time-out; and the limiter that slows password and code guessing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::admin::{Role, random_token, token_hash};
use crate::clock::Clock;

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// Every form carries this; a form without it is refused.
    pub csrf: String,
    /// Unix ms, on the page's clock.
    last_seen: i64,
}

/// What looking a session up found.
pub enum Lookup {
    Active(Session),
    /// It existed but was idle too long; it is gone now.
    Expired,
    Unknown,
}

pub struct Sessions {
    /// Milliseconds; a reload sets it, and it applies to sessions already
    /// open (a shorter time-out signs out those idle longer than it).
    idle_ms: AtomicU64,
    /// Keyed by the cookie's hash, so a memory dump shows no live cookie.
    by_cookie: Mutex<HashMap<String, Session>>,
    clock: Clock,
}

impl Sessions {
    pub fn new(idle: Duration, clock: Clock) -> Sessions {
        Sessions {
            idle_ms: AtomicU64::new(millis(idle)),
            by_cookie: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms.load(Ordering::Relaxed))
    }

    /// Puts a new idle time-out in force (a reload).
    pub fn set_idle(&self, idle: Duration) {
        self.idle_ms.store(millis(idle), Ordering::Relaxed);
    }

    /// Whether a session last seen at `last_seen` is still live now.
    fn live(&self, last_seen: i64, now: i64) -> bool {
        now.saturating_sub(last_seen) < i64::try_from(self.idle().as_millis()).unwrap_or(i64::MAX)
    }

    /// Starts a session; returns the cookie value.
    pub fn start(&self, user: &str, role: Role) -> String {
        let cookie = random_token();
        let session = Session {
            user: user.to_string(),
            role,
            csrf: random_token(),
            last_seen: self.clock.now_unix_ms(),
        };
        let now = self.clock.now_unix_ms();
        let mut map = self.lock();
        map.retain(|_, s| self.live(s.last_seen, now));
        map.insert(token_hash(&cookie), session);
        cookie
    }

    /// The session for `cookie`, marking it active now.
    pub fn touch(&self, cookie: &str) -> Lookup {
        let now = self.clock.now_unix_ms();
        let mut map = self.lock();
        let key = token_hash(cookie);
        match map.get_mut(&key) {
            Some(session) if self.live(session.last_seen, now) => {
                session.last_seen = now;
                Lookup::Active(session.clone())
            }
            Some(_) => {
                map.remove(&key);
                Lookup::Expired
            }
            None => Lookup::Unknown,
        }
    }

    /// The session for `cookie` without marking it active.
    pub fn peek(&self, cookie: &str) -> Option<Session> {
        let now = self.clock.now_unix_ms();
        self.lock()
            .get(&token_hash(cookie))
            .filter(|s| self.live(s.last_seen, now))
            .cloned()
    }

    pub fn end(&self, cookie: &str) {
        self.lock().remove(&token_hash(cookie));
    }

    /// Signs a user out everywhere (removed, or their role changed).
    pub fn end_user(&self, user: &str) {
        self.lock().retain(|_, s| s.user != user);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_cookie.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Sign-in attempts per client address and name, counted before the
/// password is checked (so a burst of guesses sent at once is held to the
/// limit, not hashed): after `max` failures of one name from one address
/// in `window`, that pair waits until the oldest ages out; an address
/// trying many names waits after `max` times [`ADDRESS_FACTOR`]. A name is
/// never locked for everyone: a pupil guessing at the safeguarding lead's
/// name from one machine does not lock her out of her own.
pub struct AttemptLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// How many more failures an address may have, over all names, than one
/// name from it.
pub const ADDRESS_FACTOR: usize = 4;

impl AttemptLimiter {
    pub fn new(max: usize, window: Duration) -> AttemptLimiter {
        AttemptLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The keys an attempt counts under, each with its limit.
    fn keys(&self, address: IpAddr, name: &str) -> [(String, usize); 2] {
        [
            (format!("{address} {}", name.to_lowercase()), self.max),
            (format!("{address}"), self.max * ADDRESS_FACTOR),
        ]
    }

    /// Takes one attempt for `address` at `name`, counted as a failure
    /// until [`AttemptLimiter::succeeded`] says otherwise; or how long to
    /// wait when the limit is reached (nothing is counted then).
    pub fn attempt(&self, address: IpAddr, name: &str) -> Result<(), Duration> {
        let mut map = self.lock();
        // A flood of distinct names must not grow the map without bound.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| t.elapsed() < window));
        }
        let mut longest = None;
        for (key, limit) in self.keys(address, name) {
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| t.elapsed() >= self.window) {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let wait = self.window.saturating_sub(oldest.elapsed());
                    longest = longest.max(Some(wait));
                }
            }
        }
        if let Some(wait) = longest {
            return Err(wait);
        }
        for (key, _) in self.keys(address, name) {
            map.entry(key).or_default().push_back(Instant::now());
        }
        Ok(())
    }

    /// The attempt was right: it and the pair's earlier failures no longer
    /// count.
    pub fn succeeded(&self, address: IpAddr, name: &str) {
        let mut map = self.lock();
        let [(pair, _), (alone, _)] = self.keys(address, name);
        map.remove(&pair);
        if let Some(times) = map.get_mut(&alone) {
            times.pop_back();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_session_expires() {
        let clock = Clock::set_at(1_000_000);
        let sessions = Sessions::new(Duration::from_secs(60), clock.clone());
        let cookie = sessions.start("head", Role::Viewer);
        assert!(matches!(sessions.touch(&cookie), Lookup::Active(_)));
        clock.advance(Duration::from_secs(61));
        assert!(matches!(sessions.touch(&cookie), Lookup::Expired));
        assert!(matches!(sessions.touch(&cookie), Lookup::Unknown));
    }

    #[test]
    fn a_shorter_idle_time_set_on_reload_applies_to_open_sessions() {
        let clock = Clock::set_at(1_000_000);
        let sessions = Sessions::new(Duration::from_secs(15 * 60), clock.clone());
        let cookie = sessions.start("head", Role::Viewer);
        clock.advance(Duration::from_secs(2 * 60));
        sessions.set_idle(Duration::from_secs(60));
        assert!(matches!(sessions.touch(&cookie), Lookup::Expired));
    }

    #[test]
    fn repeated_failures_make_the_client_wait() {
        let limiter = AttemptLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().expect("ip");
        for _ in 0..3 {
            assert!(limiter.attempt(ip, "head").is_ok());
        }
        assert!(limiter.attempt(ip, "head").is_err());
        // Another address may still sign in as the same name: a pupil
        // cannot lock the safeguarding lead out from another machine.
        let own_desk: IpAddr = "10.0.0.10".parse().expect("ip");
        assert!(limiter.attempt(own_desk, "head").is_ok());
        limiter.succeeded(own_desk, "head");
        // The guessing address may try other names, up to its own limit.
        let mut allowed = 0;
        for i in 0..20 {
            if limiter.attempt(ip, &format!("name{i}")).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3 * ADDRESS_FACTOR - 3);
    }

    #[test]
    fn attempts_are_counted_before_the_password_is_checked() {
        let limiter = AttemptLimiter::new(5, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().expect("ip");
        // Twenty guesses sent at once: only five get as far as a hash.
        let taken = (0..20)
            .filter(|_| limiter.attempt(ip, "dsl").is_ok())
            .count();
        assert_eq!(taken, 5);
        // A right answer forgives the pair's failures.
        limiter.succeeded(ip, "dsl");
        assert!(limiter.attempt(ip, "dsl").is_ok());
    }
}

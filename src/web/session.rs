//! Signed-in sessions, kept in memory (a restart signs everyone out), with
//! an idle time-out; and the limiter that slows password and code guessing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::admin::{Role, random_token, token_hash};

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// Every form carries this; a form without it is refused.
    pub csrf: String,
    last_seen: Instant,
}

/// What looking a session up found.
pub enum Lookup {
    Active(Session),
    /// It existed but was idle too long; it is gone now.
    Expired,
    Unknown,
}

pub struct Sessions {
    idle: Duration,
    /// Keyed by the cookie's hash, so a memory dump shows no live cookie.
    by_cookie: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            by_cookie: Mutex::new(HashMap::new()),
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Starts a session; returns the cookie value.
    pub fn start(&self, user: &str, role: Role) -> String {
        let cookie = random_token();
        let session = Session {
            user: user.to_string(),
            role,
            csrf: random_token(),
            last_seen: Instant::now(),
        };
        let mut map = self.lock();
        let idle = self.idle;
        map.retain(|_, s| s.last_seen.elapsed() < idle);
        map.insert(token_hash(&cookie), session);
        cookie
    }

    /// The session for `cookie`, marking it active now.
    pub fn touch(&self, cookie: &str) -> Lookup {
        let mut map = self.lock();
        let key = token_hash(cookie);
        match map.get_mut(&key) {
            Some(session) if session.last_seen.elapsed() < self.idle => {
                session.last_seen = Instant::now();
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
        self.lock()
            .get(&token_hash(cookie))
            .filter(|s| s.last_seen.elapsed() < self.idle)
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
        let sessions = Sessions::new(Duration::from_millis(50));
        let cookie = sessions.start("head", Role::Viewer);
        assert!(matches!(sessions.touch(&cookie), Lookup::Active(_)));
        std::thread::sleep(Duration::from_millis(80));
        assert!(matches!(sessions.touch(&cookie), Lookup::Expired));
        assert!(matches!(sessions.touch(&cookie), Lookup::Unknown));
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

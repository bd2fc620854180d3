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

/// Failed attempts per client address and per name: after `max` failures
/// in `window`, further attempts are refused until the oldest ages out.
pub struct AttemptLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl AttemptLimiter {
    pub fn new(max: usize, window: Duration) -> AttemptLimiter {
        AttemptLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(address: IpAddr, name: &str) -> [String; 2] {
        [
            format!("ip {address}"),
            format!("name {}", name.to_lowercase()),
        ]
    }

    /// How long until `address` may try `name` again (None: now).
    pub fn wait(&self, address: IpAddr, name: &str) -> Option<Duration> {
        let mut map = self.lock();
        let mut longest = None;
        for key in Self::keys(address, name) {
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| t.elapsed() >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max
                    && let Some(oldest) = times.front()
                {
                    let wait = self.window.saturating_sub(oldest.elapsed());
                    longest = longest.max(Some(wait));
                }
            }
        }
        longest
    }

    pub fn failed(&self, address: IpAddr, name: &str) {
        let mut map = self.lock();
        // A flood of distinct names must not grow the map without bound.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| t.elapsed() < window));
        }
        for key in Self::keys(address, name) {
            map.entry(key).or_default().push_back(Instant::now());
        }
    }

    pub fn succeeded(&self, address: IpAddr, name: &str) {
        let mut map = self.lock();
        map.remove(&format!("name {}", name.to_lowercase()));
        let _ = address;
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
            assert!(limiter.wait(ip, "head").is_none());
            limiter.failed(ip, "head");
        }
        assert!(limiter.wait(ip, "head").is_some());
        // The same address is held back for other names too.
        assert!(limiter.wait(ip, "tech").is_some());
        // Another address guessing the same name is held back as well.
        assert!(
            limiter
                .wait("10.0.0.10".parse().expect("ip"), "head")
                .is_some()
        );
    }
}

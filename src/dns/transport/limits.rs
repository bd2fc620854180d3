//! Who may ask how fast: a token bucket per source address and per
//! network (IPv4 /24, IPv6 /56) for queries, and the count of open TCP
//! connections in total and per address. The limits themselves come from
//! the settings in force (`[limits]`), so a reload changes them at once;
//! the buckets and counts live here, across reloads.
//!
//! Memory is bounded: the buckets are kept in two generations per shard,
//! and when the newer one is full the older is forgotten whole (a forgotten
//! source starts again with a full bucket). A flood from spoofed addresses
//! therefore costs at most `tracked_sources` entries and constant work per
//! packet, and evicts only sources that have been quiet longest.

use std::collections::HashMap as StdHashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use foldhash::{HashMap, HashMapExt};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::{QueryLimits, Rate};

/// Shards of the bucket table: the UDP readers (one per core) rarely wait
/// for each other. A client's address and its network share a shard.
const SHARDS: usize = 16;

/// What to do with a query over the limit on UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Nothing is sent.
    Drop,
    /// An empty answer with TC set, so a real client asks again over TCP.
    Slip,
}

/// The query buckets of one resolver, shared by all its listeners.
pub struct RateLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    /// Over-limit UDP queries so far, for choosing which ones slip. One
    /// count for all clients: the share that slips is 1 in `slip` overall.
    over: AtomicU64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            over: AtomicU64::new(0),
        }
    }
}

#[derive(Default)]
struct Shard {
    current: HashMap<IpNet, Bucket>,
    previous: HashMap<IpNet, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Whether `address` may have one more query answered `now`; takes a
    /// token from its address's and its network's buckets if so.
    pub fn allows(&self, address: IpAddr, limits: &QueryLimits, now: Instant) -> bool {
        if limits.per_address.is_none() && limits.per_network.is_none() {
            return true;
        }
        let address = canonical(address);
        if limits.trusted.iter().any(|net| net.contains(&address)) {
            return true;
        }
        let network = network_of(address);
        let shard = self.hasher.hash_one(network) as usize % SHARDS;
        // Half the share per generation: at most `tracked_sources` in all.
        let generation = (limits.tracked_sources / SHARDS / 2).max(2);
        lock(&self.shards[shard]).take(
            [
                (IpNet::from(address), limits.per_address),
                (network, limits.per_network),
            ],
            now,
            generation,
        )
    }

    /// What to do with a UDP query [`allows`](Self::allows) refused:
    /// every `slip`th slips, the rest are dropped (0: all dropped).
    pub fn over_limit(&self, slip: u32) -> OverLimit {
        let seen = self.over.fetch_add(1, Relaxed);
        if slip > 0 && seen.is_multiple_of(u64::from(slip)) {
            OverLimit::Slip
        } else {
            OverLimit::Drop
        }
    }

    /// Sources remembered now (both generations), for tests.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.current.len() + shard.previous.len()
            })
            .sum()
    }
}

impl Shard {
    /// Takes one token from every limited bucket, or none if any is empty.
    fn take(&mut self, keys: [(IpNet, Option<Rate>); 2], now: Instant, generation: usize) -> bool {
        for (key, rate) in keys {
            if let Some(rate) = rate
                && self.refilled(key, rate, now, generation) < 1.0
            {
                return false;
            }
        }
        for (key, rate) in keys {
            if rate.is_some()
                && let Some(bucket) = self.current.get_mut(&key)
            {
                bucket.tokens -= 1.0;
            }
        }
        true
    }

    /// The tokens in `key`'s bucket now, moving it to the current
    /// generation (a new source starts full).
    fn refilled(&mut self, key: IpNet, rate: Rate, now: Instant, generation: usize) -> f64 {
        if !self.current.contains_key(&key) {
            let bucket = self.previous.remove(&key).unwrap_or(Bucket {
                tokens: rate.burst,
                at: now,
            });
            if self.current.len() >= generation {
                self.previous = std::mem::replace(&mut self.current, HashMap::new());
            }
            self.current.insert(key, bucket);
        }
        let Some(bucket) = self.current.get_mut(&key) else {
            return rate.burst;
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        // Also clamps a bucket saved under a larger burst before a reload.
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.at = now;
        bucket.tokens
    }
}

/// An IPv4 client seen on an IPv6 socket is the same client.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The network a source shares a bucket with: its /24, or its /56 (one
/// site's IPv6 allocation).
fn network_of(address: IpAddr) -> IpNet {
    match address {
        IpAddr::V4(v4) => IpNet::V4(
            Ipv4Net::new(v4, 24).map_or(Ipv4Net::from(Ipv4Addr::UNSPECIFIED), |net| net.trunc()),
        ),
        IpAddr::V6(v6) => IpNet::V6(
            Ipv6Net::new(v6, 56).map_or(Ipv6Net::from(Ipv6Addr::UNSPECIFIED), |net| net.trunc()),
        ),
    }
}

/// A lock whose holder panicked is still a table of counts worth using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open DNS-over-TCP connections of one resolver, in total and per
/// source address (only addresses with a connection open are kept, so the
/// map is bounded by the total cap).
#[derive(Default)]
pub struct TcpConnections {
    open: Mutex<(usize, StdHashMap<IpAddr, usize>)>,
}

/// One open connection's place; given back when dropped.
pub struct TcpSlot {
    connections: Arc<TcpConnections>,
    address: IpAddr,
}

impl TcpConnections {
    /// A place for a new connection from `address`, or None when the total
    /// or that address's cap is reached (the connection is then closed).
    pub fn open(self: &Arc<Self>, address: IpAddr, limits: &QueryLimits) -> Option<TcpSlot> {
        let address = canonical(address);
        let mut open = lock(&self.open);
        let (total, per_address) = &mut *open;
        let mine = per_address.get(&address).copied().unwrap_or(0);
        if *total >= limits.tcp_max_connections || mine >= limits.tcp_max_per_client {
            return None;
        }
        *total += 1;
        per_address.insert(address, mine + 1);
        Some(TcpSlot {
            connections: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        lock(&self.open).0
    }
}

impl Drop for TcpSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.connections.open);
        let (total, per_address) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(count) = per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(address: (u32, u32), network: (u32, u32)) -> QueryLimits {
        let rate = |(per_second, burst): (u32, u32)| {
            (per_second > 0).then(|| Rate {
                per_second: f64::from(per_second),
                burst: f64::from(burst),
            })
        };
        QueryLimits {
            per_address: rate(address),
            per_network: rate(network),
            ..QueryLimits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn answered(
        limiter: &RateLimiter,
        address: &str,
        limits: &QueryLimits,
        now: Instant,
        n: usize,
    ) -> usize {
        (0..n)
            .filter(|_| limiter.allows(ip(address), limits, now))
            .count()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::default();
        let limits = limits((10, 20), (0, 0));
        let start = Instant::now();
        assert_eq!(answered(&limiter, "10.0.0.1", &limits, start, 50), 20);
        // Half a second later: five more tokens, no more.
        let later = start + Duration::from_millis(500);
        assert_eq!(answered(&limiter, "10.0.0.1", &limits, later, 50), 5);
        // A long quiet spell refills only up to the burst.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(answered(&limiter, "10.0.0.1", &limits, much_later, 50), 20);
    }

    #[test]
    fn one_flooding_source_does_not_use_up_another_sources_bucket() {
        let limiter = RateLimiter::default();
        let limits = limits((10, 10), (0, 0));
        let now = Instant::now();
        assert_eq!(answered(&limiter, "10.0.0.1", &limits, now, 100), 10);
        assert_eq!(answered(&limiter, "10.0.0.2", &limits, now, 10), 10);
    }

    #[test]
    fn the_network_limit_binds_many_sources_of_one_slash_24() {
        let limiter = RateLimiter::default();
        let limits = limits((10, 10), (25, 25));
        let now = Instant::now();
        let from_24: usize = (1..=10)
            .map(|host| answered(&limiter, &format!("10.0.7.{host}"), &limits, now, 10))
            .sum();
        assert_eq!(from_24, 25);
        // The next /24 has its own bucket.
        assert_eq!(answered(&limiter, "10.0.8.1", &limits, now, 10), 10);
    }

    #[test]
    fn ipv6_sources_share_their_slash_56() {
        let limiter = RateLimiter::default();
        let limits = limits((10, 10), (15, 15));
        let now = Instant::now();
        let a = answered(&limiter, "2001:db8:0:1::1", &limits, now, 10);
        let b = answered(&limiter, "2001:db8:0:ff::2", &limits, now, 10);
        assert_eq!(a + b, 15);
        assert_eq!(
            answered(&limiter, "2001:db8:0:100::1", &limits, now, 10),
            10
        );
    }

    #[test]
    fn a_source_over_its_limit_takes_nothing_from_its_network() {
        let limiter = RateLimiter::default();
        let limits = limits((5, 5), (10, 10));
        let now = Instant::now();
        assert_eq!(answered(&limiter, "10.0.9.1", &limits, now, 1000), 5);
        assert_eq!(answered(&limiter, "10.0.9.2", &limits, now, 5), 5);
    }

    #[test]
    fn mapped_ipv4_is_the_same_source() {
        let limiter = RateLimiter::default();
        let limits = limits((4, 4), (0, 0));
        let now = Instant::now();
        let plain = answered(&limiter, "10.0.0.1", &limits, now, 2);
        let mapped = answered(&limiter, "::ffff:10.0.0.1", &limits, now, 10);
        assert_eq!(plain + mapped, 4);
    }

    #[test]
    fn trusted_forwarders_are_never_limited() {
        let limiter = RateLimiter::default();
        let mut limits = limits((1, 1), (1, 1));
        limits.trusted = vec!["192.168.1.0/28".parse().expect("net")];
        let now = Instant::now();
        assert_eq!(answered(&limiter, "192.168.1.5", &limits, now, 1000), 1000);
        assert_eq!(answered(&limiter, "192.168.1.20", &limits, now, 10), 1);
        assert_eq!(limiter.tracked(), 2, "trusted sources take no memory");
    }

    #[test]
    fn a_spoofed_flood_cannot_grow_the_table_past_its_cap() {
        let limiter = RateLimiter::default();
        let mut limits = limits((10, 10), (100, 100));
        limits.tracked_sources = 1024;
        let now = Instant::now();
        for i in 0..50_000u32 {
            let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            limiter.allows(address, &limits, now);
        }
        assert!(
            limiter.tracked() <= 1024 + 2 * SHARDS,
            "{}",
            limiter.tracked()
        );
    }

    #[test]
    fn a_busy_source_keeps_its_bucket_through_a_spoofed_flood() {
        let limiter = RateLimiter::default();
        let mut limits = limits((10, 10), (0, 0));
        limits.tracked_sources = 256;
        let now = Instant::now();
        let mut answered_busy = 0;
        for i in 0..20_000u32 {
            let spoofed = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | i));
            limiter.allows(spoofed, &limits, now);
            if limiter.allows(ip("10.0.0.1"), &limits, now) {
                answered_busy += 1;
            }
        }
        // Asked every time, it is never forgotten, so never refilled.
        assert_eq!(answered_busy, 10);
    }

    #[test]
    fn every_slipth_over_limit_query_slips() {
        let limiter = RateLimiter::default();
        let slipped = (0..100)
            .filter(|_| limiter.over_limit(4) == OverLimit::Slip)
            .count();
        assert_eq!(slipped, 25);
        assert!((0..10).all(|_| limiter.over_limit(0) == OverLimit::Drop));
    }

    #[test]
    fn tcp_connections_are_capped_in_total_and_per_address() {
        let connections = Arc::new(TcpConnections::default());
        let limits = QueryLimits {
            tcp_max_connections: 5,
            tcp_max_per_client: 2,
            ..QueryLimits::default()
        };
        let a: Vec<TcpSlot> = (0..4)
            .filter_map(|_| connections.open(ip("10.0.0.1"), &limits))
            .collect();
        assert_eq!(a.len(), 2);
        let b: Vec<TcpSlot> = ["10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .filter_map(|address| connections.open(ip(address), &limits))
            .collect();
        assert_eq!(b.len(), 3, "the total cap of 5 is reached");
        drop(a);
        assert_eq!(connections.total(), 3);
        assert!(connections.open(ip("10.0.0.1"), &limits).is_some());
    }
}

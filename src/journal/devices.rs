//! Names the device behind a client IP when a blocked attempt is written:
//! configured `[[devices]]` entries first, then DHCP leases, the kernel ARP
//! table for the hardware address, and finally an optional reverse lookup.
//!
//! This runs on the journal's writer thread, never on the resolver's hot
//! path, so it may read files; it re-reads them only when they change.

use super::leases::{LeaseFormat, LeaseTable, normalize_mac, parse_arp, parse_leases};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A device named in the appliance's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Matched against the MAC that the lease files or ARP table report.
    #[serde(default)]
    pub mac: Option<String>,
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub room: Option<String>,
}

/// The best we know about a device at the moment of an attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub name: Option<String>,
    pub mac: Option<String>,
    pub owner: Option<String>,
    pub room: Option<String>,
}

pub type ReverseLookup = Box<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

const DEFAULT_ARP_PATH: &str = "/proc/net/arp";
/// `/proc` files report no useful mtime, so the ARP table is also re-read
/// on a timer.
const ARP_MAX_AGE: Duration = Duration::from_secs(10);
const REVERSE_CACHE_FOR: Duration = Duration::from_secs(300);
/// A slow router must not stall a batch: names past this many fresh
/// lookups per batch are left for a later batch.
const REVERSE_LOOKUPS_PER_BATCH: usize = 16;
/// Lease files are rewritten by their servers; anything bigger than this is
/// not a lease file we should hold in memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A file re-parsed when its mtime or length changes.
struct Watched<T> {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    read_at: Option<Instant>,
    data: T,
}

impl<T: Default> Watched<T> {
    fn new(path: PathBuf) -> Self {
        Watched {
            path,
            stamp: None,
            read_at: None,
            data: T::default(),
        }
    }

    fn refresh(&mut self, max_age: Option<Duration>, parse: impl FnOnce(&str) -> T) {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(_) => {
                // Gone: a missing lease file names nobody.
                self.stamp = None;
                self.data = T::default();
                return;
            }
        };
        let stamp = (meta.modified().unwrap_or(UNIX_EPOCH), meta.len());
        let stale = match (max_age, self.read_at) {
            (Some(age), Some(at)) => at.elapsed() >= age,
            _ => false,
        };
        if self.stamp == Some(stamp) && !stale {
            return;
        }
        if meta.len() > MAX_FILE_BYTES {
            tracing::warn!(path = %self.path.display(), "lease file too large; ignored");
            return;
        }
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                self.data = parse(&String::from_utf8_lossy(&bytes));
                self.stamp = Some(stamp);
                self.read_at = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read device file");
            }
        }
    }
}

/// Resolves client IPs to device details.
pub struct DeviceDirectory {
    entries: Vec<DeviceEntry>,
    by_ip: HashMap<IpAddr, usize>,
    by_mac: HashMap<String, usize>,
    leases: Vec<(LeaseFormat, Watched<LeaseTable>)>,
    arp: Option<Watched<HashMap<IpAddr, String>>>,
    reverse: Option<ReverseLookup>,
    reverse_cache: HashMap<IpAddr, (Instant, Option<String>)>,
    reverse_budget: usize,
}

impl Default for DeviceDirectory {
    fn default() -> Self {
        DeviceDirectory::new(Vec::new())
    }
}

impl DeviceDirectory {
    /// A directory of configured devices that also reads `/proc/net/arp`.
    pub fn new(entries: Vec<DeviceEntry>) -> Self {
        let mut by_ip = HashMap::new();
        let mut by_mac = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if let Some(ip) = entry.ip {
                by_ip.entry(ip.to_canonical()).or_insert(i);
            }
            match entry.mac.as_deref().map(|m| (m, normalize_mac(m))) {
                Some((_, Some(mac))) => {
                    by_mac.entry(mac).or_insert(i);
                }
                Some((raw, None)) => {
                    tracing::warn!(device = %entry.name, mac = %raw, "device MAC not understood");
                }
                None => {}
            }
            if entry.ip.is_none() && entry.mac.is_none() {
                tracing::warn!(device = %entry.name, "device has neither ip nor mac; ignored");
            }
        }
        DeviceDirectory {
            entries,
            by_ip,
            by_mac,
            leases: Vec::new(),
            arp: Some(Watched::new(PathBuf::from(DEFAULT_ARP_PATH))),
            reverse: None,
            reverse_cache: HashMap::new(),
            reverse_budget: REVERSE_LOOKUPS_PER_BATCH,
        }
    }

    /// Adds a DHCP lease file, re-read whenever it changes.
    pub fn with_leases(mut self, format: LeaseFormat, path: impl Into<PathBuf>) -> Self {
        self.leases.push((format, Watched::new(path.into())));
        self
    }

    /// Reads the ARP table from `path` instead of `/proc/net/arp`; `None`
    /// turns ARP off.
    pub fn with_arp_path(mut self, path: Option<PathBuf>) -> Self {
        self.arp = path.map(Watched::new);
        self
    }

    /// A last resort for naming a device, e.g. a PTR query to the school
    /// router. Results (also "no name") are cached for five minutes; the
    /// function should answer quickly, as it runs on the writer's thread.
    pub fn with_reverse_lookup(mut self, lookup: ReverseLookup) -> Self {
        self.reverse = Some(lookup);
        self
    }

    /// Re-reads changed files. Called once per batch, not per event.
    pub fn refresh(&mut self) {
        let now = crate::clock::now_unix_ms().div_euclid(1000);
        for (format, file) in &mut self.leases {
            let format = *format;
            file.refresh(None, |text| parse_leases(format, text, now));
        }
        if let Some(arp) = &mut self.arp {
            arp.refresh(Some(ARP_MAX_AGE), parse_arp);
        }
        self.reverse_budget = REVERSE_LOOKUPS_PER_BATCH;
        self.reverse_cache
            .retain(|_, (at, _)| at.elapsed() < REVERSE_CACHE_FOR);
    }

    /// The best details for `ip` right now.
    pub fn lookup(&mut self, ip: IpAddr) -> DeviceInfo {
        let ip = ip.to_canonical();
        let arp_mac = self.arp.as_ref().and_then(|a| a.data.get(&ip)).cloned();
        let lease = self
            .leases
            .iter()
            .rev()
            .find_map(|(_, file)| file.data.get(&ip));
        // A lease whose MAC disagrees with the live ARP table belongs to a
        // device that has since left; its hostname would name the wrong one.
        let lease = lease.filter(|l| match (&arp_mac, &l.mac) {
            (Some(live), Some(leased)) => live == leased,
            _ => true,
        });
        let mac = arp_mac.or_else(|| lease.and_then(|l| l.mac.clone()));

        let entry = self
            .by_ip
            .get(&ip)
            .or_else(|| mac.as_ref().and_then(|m| self.by_mac.get(m)))
            .and_then(|&i| self.entries.get(i));
        if let Some(entry) = entry {
            return DeviceInfo {
                name: Some(entry.name.clone()),
                mac: mac.or_else(|| entry.mac.as_deref().and_then(normalize_mac)),
                owner: entry.owner.clone(),
                room: entry.room.clone(),
            };
        }
        let name = lease
            .and_then(|l| l.hostname.clone())
            .or_else(|| self.reverse_name(ip));
        DeviceInfo {
            name,
            mac,
            owner: None,
            room: None,
        }
    }

    fn reverse_name(&mut self, ip: IpAddr) -> Option<String> {
        let lookup = self.reverse.as_ref()?;
        if let Some((_, name)) = self.reverse_cache.get(&ip) {
            return name.clone();
        }
        if self.reverse_budget == 0 {
            return None;
        }
        self.reverse_budget -= 1;
        let name = lookup(ip).map(|n| n.trim_end_matches('.').to_string());
        self.reverse_cache
            .insert(ip, (Instant::now(), name.clone()));
        name
    }
}

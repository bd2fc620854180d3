//! Reads the files that tell us which hardware address and hostname sit
//! behind an IP: dnsmasq, ISC dhcpd and Kea lease files, and the kernel's
//! ARP table.
//!
//! These files are written by other programs and may be mid-rewrite when we
//! read them, so every parser skips lines it does not understand rather than
//! failing.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Which DHCP server wrote a lease file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseFormat {
    /// `expiry mac ip hostname clientid`, one lease per line.
    Dnsmasq,
    /// ISC dhcpd's `dhcpd.leases`: `lease IP { ... }` blocks.
    IscDhcpd,
    /// Kea's memfile CSV with a header line.
    KeaCsv,
}

/// What a lease says about one IP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    pub mac: Option<String>,
    pub hostname: Option<String>,
}

pub type LeaseTable = HashMap<IpAddr, LeaseRecord>;

/// Parses a lease file's text. Leases that have expired by `now_unix_s`
/// are left out: an IP handed to another device must not keep the old name.
pub fn parse_leases(format: LeaseFormat, text: &str, now_unix_s: i64) -> LeaseTable {
    match format {
        LeaseFormat::Dnsmasq => parse_dnsmasq(text, now_unix_s),
        LeaseFormat::IscDhcpd => parse_isc(text),
        LeaseFormat::KeaCsv => parse_kea(text, now_unix_s),
    }
}

/// `aa:bb:cc:dd:ee:ff` from the spellings DHCP servers and admins use
/// (colons, dashes, Cisco dots, any case). IPv6 DUIDs and IAIDs are not MACs.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let hex: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let separators = raw.trim().len() - hex.len();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    // "aabbccddeeff" is accepted, but a 12-digit string with odd separators
    // (e.g. an IAID with one colon) is not.
    if !matches!(separators, 0 | 2 | 5) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

fn clean_hostname(raw: &str) -> Option<String> {
    let name = raw.trim().trim_matches('"').trim_end_matches('.');
    if name.is_empty() || name == "*" {
        None
    } else {
        Some(name.to_string())
    }
}

fn parse_dnsmasq(text: &str, now: i64) -> LeaseTable {
    let mut table = LeaseTable::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // The "duid ..." line and anything short are not leases.
        if fields.len() < 4 {
            continue;
        }
        let Ok(expiry) = fields[0].parse::<i64>() else {
            continue;
        };
        let Ok(ip) = fields[2].parse::<IpAddr>() else {
            continue;
        };
        // 0 means an infinite lease.
        if expiry != 0 && expiry < now {
            continue;
        }
        table.insert(
            ip,
            LeaseRecord {
                mac: normalize_mac(fields[1]),
                hostname: clean_hostname(fields[3]),
            },
        );
    }
    table
}

fn parse_isc(text: &str) -> LeaseTable {
    let mut table = LeaseTable::new();
    let mut current: Option<(IpAddr, LeaseRecord, bool)> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("lease ") {
            let ip = rest.trim_end_matches('{').trim().parse::<IpAddr>();
            current = ip.ok().map(|ip| (ip, LeaseRecord::default(), true));
            continue;
        }
        if line.starts_with('}') {
            // The file is append-only between rewrites: later blocks win, and
            // a freed lease means the IP no longer belongs to that device.
            if let Some((ip, record, active)) = current.take() {
                if active {
                    table.insert(ip, record);
                } else {
                    table.remove(&ip);
                }
            }
            continue;
        }
        let Some((_, record, active)) = current.as_mut() else {
            continue;
        };
        let stmt = line.trim_end_matches(';');
        if let Some(mac) = stmt.strip_prefix("hardware ethernet ") {
            record.mac = normalize_mac(mac);
        } else if let Some(name) = stmt.strip_prefix("client-hostname ") {
            record.hostname = clean_hostname(name);
        } else if let Some(state) = stmt.strip_prefix("binding state ") {
            *active = state.trim() == "active";
        }
    }
    table
}

fn parse_kea(text: &str, now: i64) -> LeaseTable {
    let mut table = LeaseTable::new();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return table;
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(addr_col), Some(hw_col)) = (col("address"), col("hwaddr")) else {
        return table;
    };
    let host_col = col("hostname");
    let expire_col = col("expire");
    let state_col = col("state");
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|f| f.trim());
        let Some(Ok(ip)) = field(Some(addr_col)).map(str::parse::<IpAddr>) else {
            continue;
        };
        let expire = field(expire_col).and_then(|e| e.parse::<i64>().ok());
        // State 0 is a live lease; 1 declined, 2 expired and reclaimed.
        let state = field(state_col).and_then(|s| s.parse::<i64>().ok());
        let live = state.is_none_or(|s| s == 0) && expire.is_none_or(|e| e == 0 || e >= now);
        if !live {
            table.remove(&ip);
            continue;
        }
        // Kea writes a comma inside a field as "&#x2c".
        let hostname = field(host_col).and_then(|h| clean_hostname(&h.replace("&#x2c", ",")));
        table.insert(
            ip,
            LeaseRecord {
                mac: field(Some(hw_col)).and_then(normalize_mac),
                hostname,
            },
        );
    }
    table
}

/// Parses `/proc/net/arp`. Incomplete entries (flags 0x0) are skipped: their
/// all-zero address would match every unknown device.
pub fn parse_arp(text: &str) -> HashMap<IpAddr, String> {
    let mut table = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        let Ok(ip) = fields[0].parse::<IpAddr>() else {
            continue;
        };
        if fields[2] == "0x0" {
            continue;
        }
        match normalize_mac(fields[3]) {
            Some(mac) if mac != "00:00:00:00:00:00" => {
                table.insert(ip, mac);
            }
            _ => {}
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalize() {
        let want = Some("aa:bb:cc:0d:ee:ff".to_string());
        assert_eq!(normalize_mac("AA:BB:CC:0D:EE:FF"), want);
        assert_eq!(normalize_mac("aa-bb-cc-0d-ee-ff"), want);
        assert_eq!(normalize_mac("aabb.cc0d.eeff"), want);
        assert_eq!(normalize_mac("aabbcc0deeff"), want);
        assert_eq!(normalize_mac("00:01:00:01:2a:bc:de:f0:12:34"), None);
        assert_eq!(normalize_mac("12345678"), None);
        assert_eq!(normalize_mac("zz:bb:cc:dd:ee:ff"), None);
    }
}

//! The transports: UDP readers (one thread per socket, batched system
//! calls), TCP connections (pipelined, answered as they complete), and the
//! listeners that bind them on every `[[listen]]` address behind the
//! allowed-networks rule and the per-client limits (`limits`). They move bytes: reading and writing them is the
//! codec's, answering is the pipeline's.

pub mod limits;
pub mod listeners;
pub mod mmsg;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod repeat_tests;

use std::net::IpAddr;

use arc_swap::ArcSwap;
use ipnet::IpNet;

/// Who may ask: the allowed networks. A reload swaps them in place, so
/// every reader and connection sees the new networks at its next query.
pub struct Access {
    allowed: ArcSwap<Vec<IpNet>>,
}

impl Access {
    pub fn new(allowed: Vec<IpNet>) -> Access {
        Access {
            allowed: ArcSwap::from_pointee(allowed),
        }
    }

    /// Puts `allowed` in force for every listener.
    pub fn set(&self, allowed: Vec<IpNet>) {
        self.allowed.store(std::sync::Arc::new(allowed));
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allowed.load().iter().any(|net| net.contains(&address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_covers_mapped_addresses() {
        let access = Access::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(access.allows("10.1.2.3".parse().unwrap()));
        assert!(access.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!access.allows("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn networks_set_on_reload_are_in_force_at_once() {
        let access = Access::new(vec!["10.0.0.0/8".parse().unwrap()]);
        access.set(vec!["192.0.2.0/24".parse().unwrap()]);
        assert!(access.allows("192.0.2.1".parse().unwrap()));
        assert!(!access.allows("10.1.2.3".parse().unwrap()));
    }
}

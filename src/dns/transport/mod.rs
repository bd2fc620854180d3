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

use std::net::IpAddr;

use ipnet::IpNet;

/// Who may ask: the allowed networks.
pub struct Access {
    allowed: Vec<IpNet>,
}

impl Access {
    pub fn new(allowed: Vec<IpNet>) -> Access {
        Access { allowed }
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|net| net.contains(&address))
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
}

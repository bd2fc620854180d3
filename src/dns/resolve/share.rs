//! Each client's share of the upstream lookups in flight: one address may
//! hold at most so many at once, so a device flooding names that never
//! resolve cannot take every slot and leave the school's other lookups
//! failing. Networks the config trusts (a domain controller forwarding for
//! every pupil) are exempt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use foldhash::fast::RandomState;
use ipnet::IpNet;

/// Who is asking upstream, as the share counts them.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub address: IpAddr,
    /// Networks whose clients take no share (they may use the whole pool).
    pub exempt: &'a [IpNet],
}

impl Requester<'_> {
    fn is_exempt(&self) -> bool {
        self.exempt.iter().any(|net| net.contains(&self.address))
    }
}

/// The lookups each client address has in flight now. Touched only when a
/// question goes upstream, never on a cache hit.
pub struct ClientShares {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize, RandomState>>,
}

/// One lookup held against a client's share; given back when dropped.
pub struct ShareSlot<'a> {
    shares: &'a ClientShares,
    /// None for an exempt requester, who holds nothing.
    address: Option<IpAddr>,
}

impl ClientShares {
    pub fn new(limit: usize) -> ClientShares {
        ClientShares {
            limit: limit.max(1),
            held: Mutex::new(HashMap::with_hasher(RandomState::default())),
        }
    }

    /// A slot of `requester`'s share, or None when it holds its whole share.
    pub fn take(&self, requester: Requester<'_>) -> Option<ShareSlot<'_>> {
        if requester.is_exempt() {
            return Some(ShareSlot {
                shares: self,
                address: None,
            });
        }
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(requester.address).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ShareSlot {
            shares: self,
            address: Some(requester.address),
        })
    }

    /// Lookups `address` has in flight now (for tests).
    pub fn held_by(&self, address: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&address).copied().unwrap_or(0)
    }
}

impl Drop for ShareSlot<'_> {
    fn drop(&mut self) {
        let Some(address) = self.address else {
            return;
        };
        let mut held = self
            .shares
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An address with nothing in flight is forgotten, so the map holds
        // only the clients waiting now, never every client ever seen.
        if let Some(count) = held.get_mut(&address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester(last: u8, exempt: &[IpNet]) -> Requester<'_> {
        Requester {
            address: IpAddr::from([10, 0, 0, last]),
            exempt,
        }
    }

    #[test]
    fn a_client_holding_its_whole_share_is_refused_while_others_are_not() {
        let shares = ClientShares::new(2);
        let first = shares.take(requester(1, &[]));
        let second = shares.take(requester(1, &[]));
        assert!(first.is_some() && second.is_some());
        assert!(shares.take(requester(1, &[])).is_none());
        assert!(shares.take(requester(2, &[])).is_some());
        drop(first);
        assert!(
            shares.take(requester(1, &[])).is_some(),
            "a slot given back"
        );
    }

    #[test]
    fn exempt_networks_take_no_share_and_idle_clients_are_forgotten() {
        let shares = ClientShares::new(1);
        let exempt = ["10.0.0.0/24".parse::<IpNet>().expect("net")];
        let held: Vec<_> = (0..10)
            .map(|_| shares.take(requester(1, &exempt)))
            .collect();
        assert!(held.iter().all(Option::is_some));
        assert_eq!(shares.held_by(IpAddr::from([10, 0, 0, 1])), 0);
        let slot = shares.take(requester(7, &[]));
        assert_eq!(shares.held_by(IpAddr::from([10, 0, 0, 7])), 1);
        drop(slot);
        let map = shares.held.lock().expect("lock");
        assert!(map.is_empty(), "no entry is kept for an idle client");
    }
}

//! What the name rules found in the names a thread read lately, so a name
//! asked again (most lookups are) is not read again.
//!
//! One small direct-mapped table per thread: no lock and nothing shared,
//! since every DNS thread sees much the same names. An entry holds the
//! whole name, never just its hash, so two names can never share an answer;
//! and the rules it was read by, so a reload's new rules never see an old
//! answer.

use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::FixedState;

use super::RuleHit;

/// Names remembered per thread.
const SLOTS: usize = 1024;
/// Longer names (rare, and often made up to carry data) are read each time.
const KEY_MAX: usize = 64;

#[derive(Clone, Copy)]
struct Slot {
    /// The rules that read it; 0 for an empty slot.
    rules: u64,
    mask: u64,
    len: u8,
    key: [u8; KEY_MAX],
    hit: Option<RuleHit>,
}

const EMPTY: Slot = Slot {
    rules: 0,
    mask: 0,
    len: 0,
    key: [0; KEY_MAX],
    hit: None,
};

thread_local! {
    static SLOTS_HERE: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

/// A number per compiled set of rules, never 0 and never reused.
pub(super) fn next_rules_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes this thread read every name afresh: the benches measure the first
/// reading of a name with it.
pub fn bypass_on_this_thread(bypass: bool) {
    BYPASS.with(|b| b.set(bypass));
}

/// The rules' answer for `key` under `mask`: remembered, or `read` and
/// remembered.
pub(super) fn remembered(
    rules: u64,
    key: &[u8],
    mask: u64,
    read: impl FnOnce() -> Option<RuleHit>,
) -> Option<RuleHit> {
    let Ok(len) = u8::try_from(key.len()) else {
        return read();
    };
    if key.len() > KEY_MAX || BYPASS.with(Cell::get) {
        return read();
    }
    // The seed only spreads names over the slots; equality is checked on
    // the whole name.
    let index = (FixedState::with_seed(0x6c6f_6c6c_6970_6f70).hash_one(key) as usize) % SLOTS;
    let known = SLOTS_HERE.with(|slots| {
        let slots = slots.borrow();
        let slot = slots.get(index)?;
        (slot.rules == rules
            && slot.mask == mask
            && slot.key.get(..key.len()) == Some(key)
            && usize::from(slot.len) == key.len())
        .then_some(slot.hit)
    });
    if let Some(hit) = known {
        return hit;
    }
    let hit = read();
    SLOTS_HERE.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.is_empty() {
            slots.resize(SLOTS, EMPTY);
        }
        if let Some(slot) = slots.get_mut(index) {
            let mut stored = Slot {
                rules,
                mask,
                len,
                key: [0; KEY_MAX],
                hit,
            };
            stored.key[..key.len()].copy_from_slice(key);
            *slot = stored;
        }
    });
    hit
}

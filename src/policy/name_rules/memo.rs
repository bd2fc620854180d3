//! What the name rules found in the names a thread read lately, so a name
//! asked again (most lookups are) is not read again. Only names that cost
//! more to read than to look up and remember are kept: those with a digit
//! (a label read up to three ways) or longer than 48 bytes.
//!
//! One small direct-mapped table per thread: no lock and nothing shared,
//! since every DNS thread sees much the same names. An entry holds the
//! whole name, never just its hash, so two names can never share an answer;
//! and the rules it was read by, so a reload's new rules never see an old
//! answer.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use super::RuleHit;
use super::labels::KnownLabels;

/// Names remembered per thread.
const SLOTS: usize = 1024;
/// Longer names (rare, and often made up to carry data) are read each time.
const KEY_MAX: usize = 64;
/// A name up to [`KEY_MAX`] bytes as eight-byte words.
const WORDS: usize = KEY_MAX / 8;

#[derive(Clone, Copy)]
struct Slot {
    /// The rules that read it; 0 for an empty slot.
    rules: u64,
    mask: u64,
    len: u8,
    hit: Option<RuleHit>,
    /// The name's bytes, then zeros.
    words: [u64; WORDS],
}

const EMPTY: Slot = Slot {
    rules: 0,
    mask: 0,
    len: 0,
    hit: None,
    words: [0; WORDS],
};

/// What this thread remembers: names, and (for the scan) labels, in one
/// place so a decision reaches both at once.
struct Remembered {
    slots: Vec<Slot>,
    /// Every look-up misses (the benches' "first reading": looked up, read
    /// and remembered, as a name not asked lately is).
    bypass: bool,
    labels: KnownLabels,
}

thread_local! {
    static REMEMBERED: RefCell<Remembered> = const {
        RefCell::new(Remembered {
            slots: Vec::new(),
            bypass: false,
            labels: KnownLabels::new(),
        })
    };
}

/// Odd numbers with their bits spread, one per word.
const FACTORS: [u64; WORDS] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
];

/// Whether two names' words are the same: every word compared, no early
/// way out.
fn same_words(a: &[u64; WORDS], b: &[u64; WORDS]) -> bool {
    a.iter().zip(b).fold(0, |differ, (a, b)| differ | (a ^ b)) == 0
}

/// A number per compiled set of rules, never 0 and never reused.
pub(super) fn next_rules_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes this thread's look-ups of names miss: the benches measure the
/// first reading of a name with it.
pub fn bypass_on_this_thread(bypass: bool) {
    REMEMBERED.with(|remembered| {
        if let Ok(mut remembered) = remembered.try_borrow_mut() {
            remembered.bypass = bypass;
        }
    });
}

/// Makes this thread's look-ups of labels miss (`labels::bypass_on_this_thread`).
pub(super) fn bypass_labels(bypass: bool) {
    REMEMBERED.with(|remembered| {
        if let Ok(mut remembered) = remembered.try_borrow_mut() {
            remembered.labels.bypass(bypass);
        }
    });
}

/// The rules' answer for the name of `len` bytes in `padded` (its bytes,
/// then zeros) under `mask`: remembered, or `read` (given the thread's
/// remembered labels) and remembered.
pub(super) fn remembered(
    rules: u64,
    padded: &[u8; 256],
    len: usize,
    mask: u64,
    read: impl FnOnce(Option<&mut KnownLabels>) -> Option<RuleHit>,
) -> Option<RuleHit> {
    REMEMBERED.with(|remembered| {
        let Ok(mut remembered) = remembered.try_borrow_mut() else {
            return read(None);
        };
        let remembered = &mut *remembered;
        if len > KEY_MAX {
            return read(Some(&mut remembered.labels));
        }
        // The name as words (past its end the buffer holds zeros), and a
        // hash of them that only spreads names over the slots: equality is
        // checked on the whole name. Every word is read, with no test of
        // the length, and the products are independent of one another.
        let mut words = [0u64; WORDS];
        let mut hash = len as u64;
        for ((word, bytes), factor) in words.iter_mut().zip(padded.chunks_exact(8)).zip(FACTORS) {
            *word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            hash = hash.wrapping_add(word.wrapping_mul(factor));
        }
        let index = (hash >> 54) as usize % SLOTS;
        if let Some(slot) = remembered.slots.get(index)
            && slot.rules == rules
            && slot.mask == mask
            && usize::from(slot.len) == len
            && same_words(&slot.words, &words)
            && !remembered.bypass
        {
            return slot.hit;
        }
        let hit = read(Some(&mut remembered.labels));
        if remembered.slots.is_empty() {
            remembered.slots.resize(SLOTS, EMPTY);
        }
        if let Some(slot) = remembered.slots.get_mut(index) {
            *slot = Slot {
                rules,
                mask,
                len: len as u8,
                hit,
                words,
            };
        }
        hit
    })
}

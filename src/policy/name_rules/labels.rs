//! What the name rules found in the labels a thread read lately, so a new
//! name made of known labels is not read again byte by byte.
//!
//! Labels repeat across names far more than names do ("www", "cdn", "sch",
//! "uk", a school's own name), and a rule never matches across a dot, so
//! what a label holds does not depend on the labels around it. One small
//! direct-mapped table per thread: no lock and nothing shared. An entry
//! holds the whole label (up to [`LABEL_MAX`] bytes, never just its hash)
//! and the rules that read it, so two labels never share an answer and a
//! reload's new rules never see an old one; and every term and exception
//! found in it whatever the profile's categories, which each look-up then
//! filters by its own mask.

use std::cell::RefCell;

/// Labels remembered per thread.
const SLOTS: usize = 1024;
/// Longer labels are read each time: one 128-bit number holds the label.
pub(super) const LABEL_MAX: usize = 16;
/// Terms and exceptions remembered per label; a label holding more is read
/// each time.
pub(super) const FOUND_MAX: usize = 4;

/// A term or exception found in a label, where in the label it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Found {
    pub pattern: u32,
    pub readings: u8,
    pub start: u16,
    pub end: u16,
}

/// A label up to [`LABEL_MAX`] bytes as one little-endian number, the
/// bytes past its end zero, and its length (a label may hold a zero byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LabelKey {
    bytes: u128,
    len: u8,
}

impl LabelKey {
    /// The label starting at `at` in `padded` (a name's bytes, then zeros
    /// to 256; the name is `len` bytes), and its length: None for a label
    /// longer than [`LABEL_MAX`], or one too near the end of the buffer to
    /// load whole. A few instructions: this is asked for every label.
    #[inline(always)]
    pub(super) fn at(padded: &[u8; 256], len: usize, at: usize) -> Option<(LabelKey, usize)> {
        let (_, tail) = padded.split_at_checked(at)?;
        let (bytes, next) = tail.split_first_chunk::<LABEL_MAX>()?;
        let dot = (dots(bytes) | 1 << LABEL_MAX).trailing_zeros() as usize;
        let rest = len.saturating_sub(at);
        let label_len = dot.min(rest);
        if label_len == LABEL_MAX && rest > LABEL_MAX && next.first() != Some(&b'.') {
            return None;
        }
        let keep = KEEP.get(label_len)?;
        let key = LabelKey {
            bytes: u128::from_le_bytes(*bytes) & keep,
            len: label_len as u8,
        };
        Some((key, label_len))
    }

    #[inline(always)]
    fn slot(&self) -> usize {
        let folded = (self.bytes as u64) ^ ((self.bytes >> 64) as u64).rotate_left(29);
        let mixed = (folded ^ u64::from(self.len)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 54) as usize % SLOTS
    }
}

/// The first `n` bytes of a little-endian number, by `n`.
static KEEP: [u128; LABEL_MAX + 1] = keep_table();

const fn keep_table() -> [u128; LABEL_MAX + 1] {
    let mut table = [0u128; LABEL_MAX + 1];
    let mut n = 1;
    while n <= LABEL_MAX {
        table[n] = u128::MAX >> (128 - 8 * n);
        n += 1;
    }
    table
}

/// A bit for each `.` among `bytes`, the first byte lowest: one compare of
/// all sixteen.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dots(bytes: &[u8; LABEL_MAX]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 processor; the load reads the
    // sixteen bytes `bytes` holds, unaligned.
    let mask = unsafe {
        let bytes = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'.' as i8)))
    };
    mask as u32
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn dots(bytes: &[u8; LABEL_MAX]) -> u32 {
    dots_one_by_one(bytes)
}

/// [`dots`] a byte at a time: what other processors (the Pi's) run, and
/// what the unit tests check the x86_64 compare against.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn dots_one_by_one(bytes: &[u8; LABEL_MAX]) -> u32 {
    let mut mask = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        mask |= u32::from(byte == b'.') << i;
    }
    mask
}

#[derive(Clone, Copy)]
struct Slot {
    /// The rules that read it; 0 for an empty slot.
    rules: u64,
    key: LabelKey,
    count: u8,
    found: [Found; FOUND_MAX],
}

const EMPTY: Slot = Slot {
    rules: 0,
    key: LabelKey { bytes: 0, len: 0 },
    count: 0,
    found: [Found {
        pattern: 0,
        readings: 0,
        start: 0,
        end: 0,
    }; FOUND_MAX],
};

/// This thread's remembered labels.
pub(super) struct KnownLabels {
    slots: Vec<Slot>,
    /// Every label read afresh (the benches' "labels new").
    bypass: bool,
}

thread_local! {
    static KNOWN: RefCell<KnownLabels> = const {
        RefCell::new(KnownLabels {
            slots: Vec::new(),
            bypass: false,
        })
    };
}

/// Makes this thread read every label afresh: the benches measure a name
/// whose labels are all new with it.
pub fn bypass_on_this_thread(bypass: bool) {
    KNOWN.with(|known| {
        if let Ok(mut known) = known.try_borrow_mut() {
            known.bypass = bypass;
        }
    });
}

/// Runs `read` with this thread's remembered labels (None when bypassed).
pub(super) fn with_known<T>(read: impl FnOnce(Option<&mut KnownLabels>) -> T) -> T {
    KNOWN.with(|known| match known.try_borrow_mut() {
        Ok(mut known) if !known.bypass => read(Some(&mut known)),
        _ => read(None),
    })
}

impl KnownLabels {
    /// What `rules` found in the label `key`, if it is remembered.
    #[inline(always)]
    pub(super) fn get(&self, rules: u64, key: &LabelKey) -> Option<&[Found]> {
        let slot = self.slots.get(key.slot())?;
        (slot.rules == rules && slot.key == *key)
            .then(|| slot.found.get(..usize::from(slot.count)))
            .flatten()
    }

    /// Remembers what `rules` found in the label `key` (at most
    /// [`FOUND_MAX`]; more is not remembered).
    pub(super) fn put(&mut self, rules: u64, key: LabelKey, found: &[Found]) {
        if found.len() > FOUND_MAX {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize(SLOTS, EMPTY);
        }
        if let Some(slot) = self.slots.get_mut(key.slot()) {
            slot.rules = rules;
            slot.key = key;
            slot.count = found.len() as u8;
            slot.found[..found.len()].copy_from_slice(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dots_are_found_the_same_by_either_reader() {
        let mut bytes = [b'a'; LABEL_MAX];
        // No dot, a dot at each place, and dots everywhere.
        assert_eq!(dots(&bytes), 0);
        for at in 0..LABEL_MAX {
            bytes = [b'a'; LABEL_MAX];
            bytes[at] = b'.';
            assert_eq!(dots(&bytes), 1 << at);
            assert_eq!(dots(&bytes), dots_one_by_one(&bytes));
        }
        let mut bytes: [u8; LABEL_MAX] = *b"uk.sch.a-1.b2.c.";
        assert_eq!(dots(&bytes), dots_one_by_one(&bytes));
        bytes = [b'.'; LABEL_MAX];
        assert_eq!(dots(&bytes), 0xFFFF);
        assert_eq!(dots_one_by_one(&bytes), 0xFFFF);
        // Every byte value at every place: only `.` counts.
        for value in 0..=255u8 {
            let bytes = [value; LABEL_MAX];
            assert_eq!(dots(&bytes), dots_one_by_one(&bytes), "byte {value}");
        }
    }

    fn padded(name: &str) -> [u8; 256] {
        let mut out = [0u8; 256];
        out[..name.len()].copy_from_slice(name.as_bytes());
        out
    }

    #[test]
    fn a_key_is_the_whole_label_and_only_it() {
        let name = "uk.sch.school-website-1.school-website-12.x";
        let buf = padded(name);
        let (uk, len) = LabelKey::at(&buf, name.len(), 0).expect("uk");
        assert_eq!(len, 2);
        let (sch, len) = LabelKey::at(&buf, name.len(), 3).expect("sch");
        assert_eq!(len, 3);
        assert_ne!(uk, sch);
        let (sixteen, len) = LabelKey::at(&buf, name.len(), 7).expect("16 bytes");
        assert_eq!(len, 16);
        assert_eq!(LabelKey::at(&buf, name.len(), 24), None, "17 bytes");
        let (last, len) = LabelKey::at(&buf, name.len(), name.len() - 1).expect("x");
        assert_eq!(len, 1);
        // The same label elsewhere, or in another name, is the same key.
        let other = "x.school-website-1";
        let (again, len) = LabelKey::at(&padded(other), other.len(), 2).expect("again");
        assert_eq!((again, len), (sixteen, 16));
        let (x, _) = LabelKey::at(&padded(other), other.len(), 0).expect("x");
        assert_eq!(x, last);
        // A zero byte inside a label is part of it.
        let zero = "a\0";
        let (with_zero, len) = LabelKey::at(&padded(zero), zero.len(), 0).expect("a0");
        assert_eq!(len, 2);
        let (a, _) = LabelKey::at(&padded("a"), 1, 0).expect("a");
        assert_ne!(with_zero, a);
        // Too near the end of the buffer to load.
        assert_eq!(LabelKey::at(&buf, 250, 245), None);
    }

    #[test]
    fn a_remembered_label_is_for_those_rules_only() {
        let mut known = KnownLabels {
            slots: Vec::new(),
            bypass: false,
        };
        let name = "suicide.sch";
        let (key, _) = LabelKey::at(&padded(name), name.len(), 0).expect("key");
        let found = [Found {
            pattern: 3,
            readings: 7,
            start: 0,
            end: 7,
        }];
        assert_eq!(known.get(1, &key), None);
        known.put(1, key, &found);
        assert_eq!(known.get(1, &key), Some(&found[..]));
        assert_eq!(known.get(2, &key), None);
        let (sch, _) = LabelKey::at(&padded(name), name.len(), 8).expect("sch");
        assert_eq!(known.get(1, &sch), None);
        known.put(1, sch, &[]);
        assert_eq!(known.get(1, &sch), Some(&[][..]));
        // Too much found to remember.
        known.put(2, key, &[found[0]; FOUND_MAX + 1]);
        assert_eq!(known.get(2, &key), None);
    }
}

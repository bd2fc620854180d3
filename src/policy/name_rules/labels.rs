//! What the name rules found in the labels a thread read lately, so a
//! label whose digits make it costly to read (each reading read from its
//! first digit) is not read again in a new name.
//!
//! Labels repeat across names far more than names do (a school's own name,
//! "cdn-07"), and a rule never matches across a dot, so what a label holds
//! does not depend on the labels around it. A label with no digit, or with
//! only a few bytes after its first one, is read faster than it is looked
//! up, so only the others are kept (`scan`). One small
//! direct-mapped table per thread: no lock and nothing shared. An entry
//! holds the whole label (up to [`LABEL_MAX`] bytes, never just its hash)
//! and the rules that read it, so two labels never share an answer and a
//! reload's new rules never see an old one; and every term and exception
//! found in it whatever the profile's categories, which each look-up then
//! filters by its own mask.

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
    /// The label `padded[start..end]` (`padded`: a name's bytes, then zeros
    /// to 256): None for a label longer than [`LABEL_MAX`], or one too near
    /// the end of the buffer to load whole.
    #[inline(always)]
    pub(super) fn of(padded: &[u8; 256], start: usize, end: usize) -> Option<LabelKey> {
        let len = end.checked_sub(start)?;
        let bytes = padded.get(start..)?.first_chunk::<LABEL_MAX>()?;
        let keep = KEEP.get(len)?;
        Some(LabelKey {
            bytes: u128::from_le_bytes(*bytes) & keep,
            len: len as u8,
        })
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

/// A bit for each `byte` among `bytes`, the first byte lowest: one compare
/// of all sixteen.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn positions_of(bytes: &[u8; LABEL_MAX], byte: u8) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 processor; the load reads the
    // sixteen bytes `bytes` holds, unaligned.
    let mask = unsafe {
        let bytes = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(byte as i8)))
    };
    mask as u32
}

/// A bit for each ASCII digit among `bytes`, the first byte lowest.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn digits_in(bytes: &[u8; LABEL_MAX]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 processor; the load reads the
    // sixteen bytes `bytes` holds, unaligned.
    let mask = unsafe {
        let bytes = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
        // A digit is a byte whose distance above '0' is at most 9.
        let above = _mm_sub_epi8(bytes, _mm_set1_epi8(b'0' as i8));
        let digit = _mm_cmpeq_epi8(above, _mm_min_epu8(above, _mm_set1_epi8(9)));
        _mm_movemask_epi8(digit)
    };
    mask as u32
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn digits_in(bytes: &[u8; LABEL_MAX]) -> u32 {
    digits_one_by_one(bytes)
}

/// [`digits_in`] a byte at a time.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn digits_one_by_one(bytes: &[u8; LABEL_MAX]) -> u32 {
    let mut mask = 0;
    for (i, &b) in bytes.iter().enumerate() {
        mask |= u32::from(b.is_ascii_digit()) << i;
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn positions_of(bytes: &[u8; LABEL_MAX], byte: u8) -> u32 {
    positions_one_by_one(bytes, byte)
}

/// [`positions_of`] a byte at a time: what other processors (the Pi's)
/// run, and what the unit tests check the x86_64 compare against.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn positions_one_by_one(bytes: &[u8; LABEL_MAX], byte: u8) -> u32 {
    let mut mask = 0;
    for (i, &b) in bytes.iter().enumerate() {
        mask |= u32::from(b == byte) << i;
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
    /// Every look-up misses (the benches' "labels new": looked up,
    /// read and remembered, as a label not seen lately is).
    bypass: bool,
}

/// Makes this thread's look-ups of labels miss: the benches measure a name
/// whose labels are all new with it. (The thread's labels are kept with
/// its names, `memo`.)
pub fn bypass_on_this_thread(bypass: bool) {
    super::memo::bypass_labels(bypass);
}

impl KnownLabels {
    pub(super) const fn new() -> KnownLabels {
        KnownLabels {
            slots: Vec::new(),
            bypass: false,
        }
    }

    pub(super) fn bypass(&mut self, bypass: bool) {
        self.bypass = bypass;
    }

    /// What `rules` found in the label `key`, if it is remembered.
    #[inline(always)]
    pub(super) fn get(&self, rules: u64, key: &LabelKey) -> Option<&[Found]> {
        let slot = self.slots.get(key.slot())?;
        (slot.rules == rules && slot.key == *key && !self.bypass)
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
    fn a_byte_is_found_the_same_by_either_reader() {
        for byte in [b'.', b'-'] {
            let mut bytes = [b'a'; LABEL_MAX];
            // None, one at each place, and everywhere.
            assert_eq!(positions_of(&bytes, byte), 0);
            for at in 0..LABEL_MAX {
                bytes = [b'a'; LABEL_MAX];
                bytes[at] = byte;
                assert_eq!(positions_of(&bytes, byte), 1 << at);
                assert_eq!(
                    positions_of(&bytes, byte),
                    positions_one_by_one(&bytes, byte)
                );
            }
            let bytes: [u8; LABEL_MAX] = *b"uk.sch.a-1.b--.-";
            assert_eq!(
                positions_of(&bytes, byte),
                positions_one_by_one(&bytes, byte)
            );
            let bytes = [byte; LABEL_MAX];
            assert_eq!(positions_of(&bytes, byte), 0xFFFF);
            assert_eq!(positions_one_by_one(&bytes, byte), 0xFFFF);
            // Every byte value at every place: only `byte` counts.
            for value in 0..=255u8 {
                let bytes = [value; LABEL_MAX];
                assert_eq!(
                    positions_of(&bytes, byte),
                    positions_one_by_one(&bytes, byte),
                    "byte {value}"
                );
            }
        }
    }

    #[test]
    fn digits_are_found_the_same_by_either_reader() {
        for value in 0..=255u8 {
            for at in 0..LABEL_MAX {
                let mut bytes = [b'a'; LABEL_MAX];
                bytes[at] = value;
                assert_eq!(
                    digits_in(&bytes),
                    digits_one_by_one(&bytes),
                    "byte {value} at {at}"
                );
            }
        }
        assert_eq!(digits_in(b"0123456789/:a.-z"), 0x3FF);
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
        let uk = LabelKey::of(&buf, 0, 2).expect("uk");
        let sch = LabelKey::of(&buf, 3, 6).expect("sch");
        assert_ne!(uk, sch);
        let sixteen = LabelKey::of(&buf, 7, 23).expect("16 bytes");
        assert_eq!(LabelKey::of(&buf, 24, 41), None, "17 bytes");
        let last = LabelKey::of(&buf, name.len() - 1, name.len()).expect("x");
        // The same label elsewhere, or in another name, is the same key.
        let other = "x.school-website-1";
        let again = LabelKey::of(&padded(other), 2, other.len()).expect("again");
        assert_eq!(again, sixteen);
        let x = LabelKey::of(&padded(other), 0, 1).expect("x");
        assert_eq!(x, last);
        // A zero byte inside a label is part of it.
        let with_zero = LabelKey::of(&padded("a\0"), 0, 2).expect("a0");
        let a = LabelKey::of(&padded("a"), 0, 1).expect("a");
        assert_ne!(with_zero, a);
        // Too near the end of the buffer to load.
        assert_eq!(LabelKey::of(&buf, 245, 250), None);
    }

    #[test]
    fn a_remembered_label_is_for_those_rules_only() {
        let mut known = KnownLabels::new();
        let name = "suicide.sch";
        let key = LabelKey::of(&padded(name), 0, 7).expect("key");
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
        let sch = LabelKey::of(&padded(name), 8, name.len()).expect("sch");
        assert_eq!(known.get(1, &sch), None);
        known.put(1, sch, &[]);
        assert_eq!(known.get(1, &sch), Some(&[][..]));
        // Too much found to remember.
        known.put(2, key, &[found[0]; FOUND_MAX + 1]);
        assert_eq!(known.get(2, &key), None);
    }
}

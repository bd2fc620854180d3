//! Reading a name for the name rules: the whole name folded and run through
//! the rules' automaton in one pass, every reading of a label's digits in
//! turn.
//!
//! A label is read three ways (1 as i, 1 as l, every digit dropped), but
//! until its first digit the three read the same, and most labels hold no
//! digit. A [`Table`] built from the automaton at reload reads the raw bytes
//! with the folding built in: one look-up a byte, a dot back to the first
//! row, no buffer, nothing allocated for an ASCII name, no work per label.
//! Only from a digit the readings fold apart (0, 1, 3, 4, 5, 7) is the rest
//! of that label read once per reading that differs, each from the state
//! the shared part reached; when that rest is long, what the label holds is
//! taken from the thread's remembered labels (`labels`) if it read the
//! label lately.

use std::mem::MaybeUninit;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;

use super::labels::{self, FOUND_MAX, Found, KnownLabels, LABEL_MAX, LabelKey};
use super::{NameRules, RuleHit, Variant, fold_label};

mod table;
use table::{CLASS, CLASS_BY_READING, MATCH, ROW, STOP, Table};

/// The readings, as bits, in the order a hit is chosen: a term found
/// reading 1 as i is reported before one found reading it as l, then one
/// found dropping every digit.
const READINGS: [Variant; 3] = [Variant::OneIsI, Variant::OneIsL, Variant::NoDigits];
const ONE_IS_I: u8 = 0b001;
const ONE_IS_L: u8 = 0b010;
const NO_DIGITS: u8 = 0b100;
const ALL: u8 = 0b111;

/// Matches kept per name; a name with more is cut short (more than this
/// many terms and exceptions in one name is no ordinary name).
const MAX_MATCHES: usize = 64;

/// The rules' automaton, and the same as a [`Table`].
#[derive(Debug)]
pub(super) struct Automaton {
    dfa: DFA,
    table: Table,
    /// Tells these rules' remembered answers from a reload's.
    id: u64,
}

impl Automaton {
    pub(super) fn new(dfa: DFA) -> Result<Automaton, String> {
        let table = Table::build(&dfa)?;
        Ok(Automaton {
            dfa,
            table,
            id: super::memo::next_rules_id(),
        })
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

/// A term or exception found: in which readings of which label (by where
/// it starts), where.
#[derive(Clone, Copy)]
struct Occurrence {
    found: Found,
    label: u8,
}

struct Scan<'a, 'k> {
    rules: &'a NameRules,
    dfa: &'a DFA,
    table: &'a Table,
    rules_id: u64,
    mask: u64,
    /// The thread's remembered labels (None while another read holds them).
    known: Option<&'k mut KnownLabels>,
    /// The first `len` are written: most names hold no term, and clearing
    /// this for each would cost more than reading the name.
    found: [MaybeUninit<Occurrence>; MAX_MATCHES],
    len: usize,
    /// Everything found in the label `label_owner` (by where it starts),
    /// whatever the mask, for the thread's remembered labels;
    /// `label_len` counts past the end.
    label_owner: u16,
    label_found: [Found; FOUND_MAX],
    label_len: usize,
}

/// The first term of a category in `mask` that flags a label of the
/// reversed `key` and no exception of its category covers in the same
/// reading: first by reading, then by label, then by where it ends.
pub(super) fn find(
    rules: &NameRules,
    automaton: &Automaton,
    key: &[u8],
    padded: &[u8; 256],
    mask: u64,
    shape: Shape,
    known: Option<&mut KnownLabels>,
) -> Option<RuleHit> {
    let mut scan = Scan {
        rules,
        dfa: &automaton.dfa,
        table: &automaton.table,
        rules_id: automaton.id,
        mask,
        known,
        found: [const { MaybeUninit::uninit() }; MAX_MATCHES],
        len: 0,
        label_owner: u16::MAX,
        label_found: [Found::default(); FOUND_MAX],
        label_len: 0,
    };
    // Only an international label ("xn--...") is read apart; every one
    // holds "--", which few other names do.
    if shape.hyphen_pair {
        scan.label_by_label(key, padded);
    } else {
        scan.read(key, padded);
    }
    scan.first_hit()
}

/// What a name holds that decides how it is read and whether its answer
/// is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    /// "--" somewhere: it may hold an international label ("xn--...").
    pub hyphen_pair: bool,
    /// A digit somewhere: a label may be read three ways.
    pub digit: bool,
}

/// The [`Shape`] of the name of `len` bytes in `padded` (its bytes, then
/// zeros): sixteen bytes a compare.
pub(super) fn shape(padded: &[u8; 256], len: usize) -> Shape {
    let mut shape = Shape {
        hyphen_pair: false,
        digit: false,
    };
    let mut carry = 0;
    for chunk in padded.chunks_exact(LABEL_MAX).take(len.div_ceil(LABEL_MAX)) {
        let Ok(chunk) = <&[u8; LABEL_MAX]>::try_from(chunk) else {
            return Shape {
                hyphen_pair: true,
                digit: true,
            };
        };
        let hyphens = labels::positions_of(chunk, b'-');
        shape.hyphen_pair |= hyphens & (hyphens << 1 | carry) != 0;
        shape.digit |= labels::digits_in(chunk) != 0;
        carry = hyphens >> (LABEL_MAX - 1);
    }
    shape
}

/// Where the label holding the byte at `at` in `padded` (a name's bytes,
/// then zeros) starts: the sixteen bytes before it in one compare.
fn label_start(padded: &[u8; 256], at: usize) -> usize {
    let from = at.saturating_sub(LABEL_MAX);
    let Some(bytes) = padded
        .get(from..)
        .and_then(|b| b.first_chunk::<LABEL_MAX>())
    else {
        return 0;
    };
    // The dots before `at` among the sixteen bytes from `from`.
    let before = labels::positions_of(bytes, b'.') & ((1u32 << (at - from)) - 1);
    if before != 0 {
        return from + (31 - before.leading_zeros() as usize) + 1;
    }
    padded
        .get(..from)
        .and_then(|head| head.iter().rposition(|&b| b == b'.'))
        .map_or(0, |dot| dot + 1)
}

/// Where the label holding the byte at `at` in the name of `len` bytes in
/// `padded` ends: its dot, or the end of the name.
fn label_end(padded: &[u8; 256], len: usize, at: usize) -> usize {
    let dot = padded
        .get(at..)
        .and_then(|b| b.first_chunk::<LABEL_MAX>())
        .map(|bytes| labels::positions_of(bytes, b'.'))
        .filter(|&dots| dots != 0)
        .map(|dots| at + dots.trailing_zeros() as usize)
        .or_else(|| {
            let rest = padded.get(at..len)?;
            rest.iter().position(|&b| b == b'.').map(|dot| at + dot)
        });
    dot.map_or(len, |dot| dot.min(len))
}

/// Bytes read a step: the steps' look-ups wait on each other anyway, and
/// a step saves the loop's test for three of them.
const STEP: usize = 4;

/// A label whose readings differ for this many bytes or more from its
/// first digit is looked up in the thread's remembered labels (and
/// remembered): reading a shorter rest every way is cheaper than the
/// look-up.
const REMEMBER_FROM: usize = 6;

impl<'a, 'k> Scan<'a, 'k> {
    /// Reads the name `key` (`padded`: the same bytes, then zeros). A dot
    /// takes the table back to its first row, so the name is read in one
    /// pass with no work per label.
    #[inline(always)]
    fn read(&mut self, key: &[u8], padded: &[u8; 256]) {
        self.read_on(key, padded, 0, 0);
    }

    /// Reads `key` from `from`, the table at row `at`, to its end, four
    /// bytes a step: past the name the buffer holds zeros, which every
    /// reading drops.
    #[inline(always)]
    fn read_on(&mut self, key: &[u8], padded: &[u8; 256], from: usize, mut at: usize) {
        let table = self.table;
        let mut i = from;
        while i < key.len() {
            let Some(&[b0, b1, b2, b3]) = padded.get(i..i + STEP) else {
                break;
            };
            let e0 = table.entry(at, CLASS[usize::from(b0)]);
            if e0 >= MATCH {
                (at, i) = self.stopped(key, padded, i, at, e0);
                continue;
            }
            let e1 = table.entry(e0 as usize, CLASS[usize::from(b1)]);
            if e1 >= MATCH {
                (at, i) = self.stopped(key, padded, i + 1, e0 as usize, e1);
                continue;
            }
            let e2 = table.entry(e1 as usize, CLASS[usize::from(b2)]);
            if e2 >= MATCH {
                (at, i) = self.stopped(key, padded, i + 2, e1 as usize, e2);
                continue;
            }
            let e3 = table.entry(e2 as usize, CLASS[usize::from(b3)]);
            if e3 >= MATCH {
                (at, i) = self.stopped(key, padded, i + 3, e2 as usize, e3);
                continue;
            }
            at = e3 as usize;
            i += STEP;
        }
    }

    /// Reads `key[from..end]`, the table at row `at`, a byte at a time (the
    /// bytes after `end` are the next label's, not zeros).
    fn read_until(
        &mut self,
        key: &[u8],
        padded: &[u8; 256],
        from: usize,
        end: usize,
        mut at: usize,
    ) {
        let mut i = from;
        while i < end {
            let Some(&byte) = key.get(i) else { break };
            let entry = self.table.entry(at, CLASS[usize::from(byte)]);
            if entry >= MATCH {
                (at, i) = self.stopped(key, padded, i, at, entry);
                continue;
            }
            at = entry as usize;
            i += 1;
        }
    }

    /// The table stopped at `pos` in `key`, coming from row `at`, with
    /// `entry`: a match there, or a digit the readings fold apart. Returns
    /// the row and the place to read on from.
    #[cold]
    #[inline(never)]
    fn stopped(
        &mut self,
        key: &[u8],
        padded: &[u8; 256],
        pos: usize,
        at: usize,
        entry: u32,
    ) -> (usize, usize) {
        if entry & STOP == 0 {
            let start = label_start(padded, pos);
            let label = key.get(start..=pos).unwrap_or_default();
            let (row, letters) = self.table.replay(label, &CLASS, 0, 0);
            self.record_row(row, ALL, letters, start as u8);
            return ((entry & ROW) as usize, pos + 1);
        }
        // The rest of the label every way; then its dot (or the end).
        (0, self.digits(key, padded, pos, at))
    }

    /// The label holding `key[from]`, a digit the readings fold apart, from
    /// there on, where the shared reading reached row `at`: read every way,
    /// or, when that rest is long, taken from the thread's remembered
    /// labels (or read and remembered). Returns where the label ends.
    fn digits(&mut self, key: &[u8], padded: &[u8; 256], from: usize, at: usize) -> usize {
        let end = label_end(padded, key.len(), from);
        if end - from < REMEMBER_FROM {
            return self.lanes(key, padded, from, at);
        }
        let start = label_start(padded, from);
        let Some(label_key) = LabelKey::of(padded, start, end) else {
            return self.lanes(key, padded, from, at);
        };
        let label = start as u8;
        let remembered = self.known.as_deref().and_then(|known| {
            let found = known.get(self.rules_id, &label_key)?;
            let mut copy = [Found::default(); FOUND_MAX];
            copy.get_mut(..found.len())?.copy_from_slice(found);
            Some((copy, found.len()))
        });
        if let Some((found, count)) = remembered {
            // What the shared reading found is among what is remembered.
            self.forget(label);
            for &found in found.get(..count).unwrap_or_default() {
                self.keep(found, label);
            }
            return end;
        }
        self.begin_label(label);
        let end = self.lanes(key, padded, from, at);
        let rules_id = self.rules_id;
        if let (Some(known), Some(found)) = (
            self.known.as_deref_mut(),
            self.label_found.get(..self.label_len),
        ) {
            known.put(rules_id, label_key, found);
        }
        end
    }

    /// The rest of the label in `key` from its first digit the readings
    /// fold apart at `from`, where the shared reading reached row `at`:
    /// every reading read side by side, their look-ups independent of one
    /// another. Returns where the label ends (its dot, or the end of `key`).
    fn lanes(&mut self, key: &[u8], padded: &[u8; 256], from: usize, at: usize) -> usize {
        let table = self.table;
        // 1 as l reads as 1 as i does until the label's first 1: its lane
        // is read throughout, and what it finds before that 1 is left to
        // the lane of 1 as i.
        let [mut one_is_i, mut one_is_l, mut no_digits] = [at; 3];
        let mut i = from;
        while let Some(&byte) = key.get(i) {
            if byte == b'.' {
                break;
            }
            let byte = usize::from(byte);
            let mut entries = [
                table.entry(one_is_i, CLASS_BY_READING[0][byte]),
                table.entry(one_is_l, CLASS_BY_READING[1][byte]),
                table.entry(no_digits, CLASS_BY_READING[2][byte]),
            ];
            if (entries[0] | entries[1] | entries[2]) >= MATCH {
                self.lanes_matched(key, padded, from, i, entries);
                entries = entries.map(|entry| entry & ROW);
            }
            [one_is_i, one_is_l, no_digits] = entries.map(|entry| entry as usize);
            i += 1;
        }
        i
    }

    /// Records what the lanes' `entries` matched at `key[pos]`, the rest of
    /// the label from `from` read in each reading.
    #[cold]
    #[inline(never)]
    fn lanes_matched(
        &mut self,
        key: &[u8],
        padded: &[u8; 256],
        from: usize,
        pos: usize,
        entries: [u32; 3],
    ) {
        let start = label_start(padded, from);
        let shared = key.get(start..from).unwrap_or_default();
        let rest = key.get(from..=pos).unwrap_or_default();
        let one = rest.contains(&b'1');
        let label = start as u8;
        if entries[0] & MATCH != 0 {
            let readings = if one { ONE_IS_I } else { ONE_IS_I | ONE_IS_L };
            self.matched_in(shared, rest, 0, readings, label);
        }
        if entries[1] & MATCH != 0 && one {
            self.matched_in(shared, rest, 1, ONE_IS_L, label);
        }
        if entries[2] & MATCH != 0 {
            self.matched_in(shared, rest, 2, NO_DIGITS, label);
        }
    }

    /// A name holding "--": each label read on its own, an international
    /// one decoded first.
    #[cold]
    fn label_by_label(&mut self, key: &[u8], padded: &[u8; 256]) {
        let mut start = 0;
        while start < key.len() {
            let end = label_end(padded, key.len(), start);
            if key
                .get(start..)
                .is_some_and(|rest| rest.starts_with(b"xn--"))
            {
                self.international(key, start, start as u8);
            } else {
                self.read_until(key, padded, start, end, 0);
            }
            start = end + 1;
        }
    }

    /// Drops what was kept from label `label` (the last one kept).
    fn forget(&mut self, label: u8) {
        while let Some(last) = self.found().last() {
            if last.label != label {
                break;
            }
            self.len -= 1;
        }
    }

    /// Starts remembering what label `label` holds, unless it is the label
    /// already being remembered.
    fn begin_label(&mut self, label: u8) {
        if self.label_owner != u16::from(label) {
            self.label_owner = u16::from(label);
            self.label_len = 0;
        }
    }

    /// Records the matches at the end of `rest` read in reading `reading`
    /// (an index into [`READINGS`]) after `shared`, which every reading
    /// reads alike.
    #[cold]
    #[inline(never)]
    fn matched_in(
        &mut self,
        shared: &[u8],
        rest: &[u8],
        reading: usize,
        readings: u8,
        label_id: u8,
    ) {
        let (at, pos) = self.table.replay(shared, &CLASS, 0, 0);
        let (at, pos) =
            self.table
                .replay(rest, &CLASS_BY_READING[reading % READINGS.len()], at, pos);
        self.record_row(at, readings, pos, label_id);
    }

    /// An international label starting at `from` in `key`: decoded, folded
    /// per reading (only one when it holds no digit), and read; one punycode
    /// cannot decode is read as it is. Returns where the label ends.
    #[cold]
    fn international(&mut self, key: &[u8], from: usize, label_id: u8) -> usize {
        let end = key[from..]
            .iter()
            .position(|&b| b == b'.')
            .map_or(key.len(), |p| from + p);
        let label = &key[from..end];
        let code = label.get(4..).unwrap_or_default();
        let unicode = std::str::from_utf8(code)
            .ok()
            .and_then(idna::punycode::decode_to_string);
        let Some(unicode) = unicode else {
            self.read_dfa(label, ALL, label_id);
            return end;
        };
        let digits = unicode.bytes().any(|b| b.is_ascii_digit());
        let mut folded = Vec::new();
        for (r, variant) in READINGS.into_iter().enumerate() {
            let readings = if digits { 1 << r } else { ALL };
            folded.clear();
            fold_label(&unicode, variant, &mut folded);
            self.read_dfa(&folded, readings, label_id);
            if !digits {
                break;
            }
        }
        end
    }

    /// Reads bytes already folded (or left as they are) on the automaton.
    fn read_dfa(&mut self, bytes: &[u8], readings: u8, label_id: u8) {
        let Ok(mut state) = self.dfa.start_state(Anchored::No) else {
            return;
        };
        let mut pos = 0u16;
        for &byte in bytes {
            pos = pos.saturating_add(1);
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_match(state) {
                self.record(state, readings, pos, label_id);
            }
        }
    }

    /// Records the matches of the automaton's `state` (the international
    /// path, which reads the automaton itself).
    #[cold]
    fn record(&mut self, state: StateID, readings: u8, pos: u16, label_id: u8) {
        for index in 0..self.dfa.match_len(state) {
            let id = self.dfa.match_pattern(state, index);
            let len = u16::try_from(self.dfa.pattern_len(id)).unwrap_or(u16::MAX);
            self.push(id.as_u32(), len, readings, pos, label_id);
        }
    }

    /// Records the matches of the table's row starting at `at`.
    #[cold]
    fn record_row(&mut self, at: usize, readings: u8, pos: u16, label_id: u8) {
        let table = self.table;
        for &(pattern, len) in table.matches_at(at) {
            self.push(pattern, len, readings, pos, label_id);
        }
    }

    /// A term or exception `len` letters long ending at `pos`: remembered
    /// for the label whatever the mask, and kept if the mask acts on it.
    fn push(&mut self, pattern: u32, len: u16, readings: u8, pos: u16, label_id: u8) {
        let found = Found {
            pattern,
            readings,
            start: pos.saturating_sub(len),
            end: pos,
        };
        self.begin_label(label_id);
        if let Some(slot) = self.label_found.get_mut(self.label_len) {
            *slot = found;
        }
        self.label_len = self.label_len.saturating_add(1);
        self.keep(found, label_id);
    }

    /// Keeps `found` in label `label_id` if its category is in the mask: an
    /// exception only covers its own category's terms, so a category the
    /// profile does not act on is not looked at.
    #[inline]
    fn keep(&mut self, found: Found, label_id: u8) {
        let Some(pattern) = self.rules.patterns.get(found.pattern as usize) else {
            return;
        };
        if self.mask & (1u64 << (pattern.category % 64)) == 0 {
            return;
        }
        if let Some(slot) = self.found.get_mut(self.len) {
            slot.write(Occurrence {
                found,
                label: label_id,
            });
            self.len += 1;
        }
    }

    /// The occurrences recorded so far.
    fn found(&self) -> &[Occurrence] {
        let len = self.len.min(MAX_MATCHES);
        // SAFETY: `keep` writes `found[len]` before counting it in `len`,
        // and nothing else changes `found` or `len`.
        unsafe { std::slice::from_raw_parts(self.found.as_ptr().cast::<Occurrence>(), len) }
    }

    fn first_hit(&self) -> Option<RuleHit> {
        let found = self.found();
        if found.is_empty() {
            return None;
        }
        let patterns = &self.rules.patterns;
        (0..READINGS.len()).find_map(|r| {
            let reading = 1u8 << r;
            found
                .iter()
                .filter(|term| term.found.readings & reading != 0)
                .find_map(|term| {
                    let pattern = patterns.get(term.found.pattern as usize)?;
                    if pattern.exception {
                        return None;
                    }
                    let excepted = found.iter().any(|e| {
                        e.found.readings & reading != 0
                            && e.label == term.label
                            && e.found.start <= term.found.start
                            && term.found.end <= e.found.end
                            && patterns
                                .get(e.found.pattern as usize)
                                .is_some_and(|p| p.exception && p.category == pattern.category)
                    });
                    (!excepted).then_some(RuleHit {
                        category: pattern.category,
                        term: term.found.pattern,
                    })
                })
        })
    }
}

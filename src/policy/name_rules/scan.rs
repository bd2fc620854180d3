//! Reading a name for the name rules: each label folded and run through the
//! rules' automaton in one pass, every reading of its digits in turn.
//!
//! A label is read three ways (1 as i, 1 as l, every digit dropped), but
//! until its first digit the three read the same, and most labels hold no
//! digit. A [`Table`] built from the automaton at reload reads the raw bytes
//! with the folding built in: one look-up a byte, no buffer, nothing
//! allocated for an ASCII name. Only from a digit the readings fold apart
//! (0, 1, 3, 4, 5, 7) is the rest of that label read once per reading that
//! differs, each from the state the shared part reached. A label the
//! thread read lately is not read again: what it holds is taken from the
//! thread's remembered labels (`labels`).

use std::collections::BTreeMap;
use std::mem::MaybeUninit;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;

use super::labels::{self, FOUND_MAX, Found, KnownLabels, LabelKey};
use super::{FOLD, NameRules, RuleHit, Variant, fold_label};

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
const MAX_MATCHES: usize = 32;

/// A byte's column in the [`Table`], the same for every reading: 0 when all
/// drop it, 1 for a dot or a digit the readings fold apart, else 2 + the
/// letter.
static CLASS: [u8; 256] = class_table();
/// Each reading's column for every byte (never 1: a reading folds each
/// digit one way).
static CLASS_BY_READING: [[u8; 256]; 3] =
    [reading_classes(0), reading_classes(1), reading_classes(2)];

const fn column(letter: u8) -> u8 {
    match letter {
        0 => 0,
        letter => letter - b'a' + 2,
    }
}

const fn class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let (a, b, c) = (FOLD[0][i], FOLD[1][i], FOLD[2][i]);
        table[i] = if i == b'.' as usize || a != b || b != c {
            1
        } else {
            column(a)
        };
        i += 1;
    }
    table
}

const fn reading_classes(reading: usize) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = column(FOLD[reading][i]);
        i += 1;
    }
    table
}

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

/// The automaton's states over raw name bytes, folding built in: a row per
/// state, a column per [`CLASS`]. An entry is where the next row starts,
/// with [`MATCH`] added when that state holds matches; [`STOP`] (no row)
/// for a dot or a digit the readings fold apart. A doubled letter leaves
/// the row as it is, so it is read once.
#[derive(Debug)]
struct Table {
    next: Vec<u32>,
    /// Each row's automaton state (while building: the rows to fill).
    states: Vec<StateID>,
    /// Each row's matches: a range of `patterns`, worked out once here so
    /// a match costs a slice read, not the automaton's look-ups.
    matches: Vec<(u32, u32)>,
    /// Every row's matching patterns, in the automaton's order, with their
    /// folded length.
    patterns: Vec<(u32, u16)>,
    /// The column of the letter read into each row (0 for the start): a
    /// replay counts a letter as read only where it is not this one.
    lasts: Vec<u8>,
}

const STRIDE: usize = 32;
const ROW: u32 = (1 << 30) - 1;
const MATCH: u32 = 1 << 30;
const STOP: u32 = 1 << 31;

impl Table {
    fn build(dfa: &DFA) -> Result<Table, String> {
        let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
        let mut table = Table {
            next: Vec::new(),
            states: vec![start],
            matches: Vec::new(),
            patterns: Vec::new(),
            lasts: vec![0],
        };
        let mut rows = BTreeMap::from([(start, 0u32)]);
        let mut row = 0;
        while let Some(&state) = table.states.get(row) {
            let here = (row * STRIDE) as u32;
            let last = table.lasts[row];
            let mut entries = [here; STRIDE];
            entries[1] = STOP;
            for letter in b'a'..=b'z' {
                let class = column(letter);
                if class == last {
                    continue;
                }
                let to = dfa.next_state(Anchored::No, state, letter);
                let to_row = match rows.get(&to) {
                    Some(&to_row) => to_row,
                    None => {
                        let to_row = u32::try_from(table.states.len() * STRIDE)
                            .ok()
                            .filter(|&r| r <= ROW)
                            .ok_or("the terms make too large an automaton")?;
                        rows.insert(to, to_row);
                        table.states.push(to);
                        table.lasts.push(class);
                        to_row
                    }
                };
                entries[usize::from(class)] = to_row | if dfa.is_match(to) { MATCH } else { 0 };
            }
            table.next.extend_from_slice(&entries);
            let first = table.patterns.len();
            let matches = if dfa.is_match(state) {
                dfa.match_len(state)
            } else {
                0
            };
            for index in 0..matches {
                let id = dfa.match_pattern(state, index);
                let len = u16::try_from(dfa.pattern_len(id)).unwrap_or(u16::MAX);
                table.patterns.push((id.as_u32(), len));
            }
            let range = u32::try_from(first)
                .ok()
                .zip(u32::try_from(table.patterns.len()).ok())
                .ok_or("the terms make too large an automaton")?;
            table.matches.push(range);
            row += 1;
        }
        Ok(table)
    }

    /// The entry for `class` in the row starting at `at`.
    #[inline(always)]
    fn entry(&self, at: usize, class: u8) -> u32 {
        let index = at + usize::from(class);
        debug_assert!(index < self.next.len());
        // SAFETY: `at` is 0 or a row start taken from an entry, and `build`
        // writes every row whole (STRIDE entries) before any entry points
        // at it; `class` is below STRIDE (a letter column is at most 27).
        // This is the one look-up made for every byte of every name.
        unsafe { *self.next.get_unchecked(index) }
    }

    /// The patterns matching in the row starting at `at`.
    fn matches_at(&self, at: usize) -> &[(u32, u16)] {
        self.matches
            .get(at / STRIDE)
            .and_then(|&(from, to)| self.patterns.get(from as usize..to as usize))
            .unwrap_or_default()
    }

    /// The row and the letters read after `bytes`, from row `at` with
    /// `pos` letters, each byte in column `classes[byte]`.
    fn replay(
        &self,
        bytes: &[u8],
        classes: &[u8; 256],
        mut at: usize,
        mut pos: u16,
    ) -> (usize, u16) {
        for &byte in bytes {
            let class = classes[usize::from(byte)];
            let read = class >= 2 && self.lasts.get(at / STRIDE) != Some(&class);
            pos = pos.saturating_add(u16::from(read));
            at = (self.entry(at, class) & ROW) as usize;
        }
        (at, pos)
    }
}

/// A term or exception found: in which readings of which label, where.
#[derive(Clone, Copy)]
struct Occurrence {
    found: Found,
    label: u8,
}

struct Scan<'a> {
    rules: &'a NameRules,
    dfa: &'a DFA,
    table: &'a Table,
    mask: u64,
    /// The first `len` are written: most names hold no term, and clearing
    /// this for each would cost more than reading the name.
    found: [MaybeUninit<Occurrence>; MAX_MATCHES],
    len: usize,
    /// Everything found in the label being read, whatever the mask, for
    /// the thread's remembered labels; `label_len` counts past the end.
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
) -> Option<RuleHit> {
    labels::with_known(|mut known| {
        let mut scan = Scan {
            rules,
            dfa: &automaton.dfa,
            table: &automaton.table,
            mask,
            found: [const { MaybeUninit::uninit() }; MAX_MATCHES],
            len: 0,
            label_found: [Found::default(); FOUND_MAX],
            label_len: 0,
        };
        let mut label_id = 0u8;
        let mut i = 0;
        while i < key.len() {
            i = scan.label(key, padded, i, label_id, automaton.id, known.as_deref_mut());
            // At a dot (or past the end): the next label.
            i += 1;
            label_id = label_id.saturating_add(1);
        }
        scan.first_hit()
    })
}

impl<'a> Scan<'a> {
    /// The label starting at `start` in `key` (`padded`: the same bytes,
    /// then zeros): remembered by the thread, or read and remembered.
    /// Returns where it ends (its dot, or the end of `key`).
    #[inline(always)]
    fn label(
        &mut self,
        key: &[u8],
        padded: &[u8; 256],
        start: usize,
        label_id: u8,
        rules_id: u64,
        known: Option<&mut KnownLabels>,
    ) -> usize {
        if padded.get(start) == Some(&b'x') && key[start..].starts_with(b"xn--") {
            return self.international(key, start, label_id);
        }
        let remembered = known.and_then(|known| {
            LabelKey::at(padded, key.len(), start).map(|(label_key, len)| (known, label_key, len))
        });
        let Some((known, label_key, len)) = remembered else {
            return self.read_label(key, start, label_id);
        };
        if let Some(found) = known.get(rules_id, &label_key) {
            for &found in found {
                self.keep(found, label_id);
            }
            return start + len;
        }
        self.label_len = 0;
        let end = self.read_label(key, start, label_id);
        if let Some(found) = self.label_found.get(..self.label_len) {
            known.put(rules_id, label_key, found);
        }
        end
    }

    /// Reads the ASCII label starting at `start` in `key`: the table reads
    /// it until its dot, a digit the readings fold apart, or a match; those
    /// few places read the label again. Returns where it ends.
    #[inline(always)]
    fn read_label(&mut self, key: &[u8], start: usize, label_id: u8) -> usize {
        let table = self.table;
        // Each label starts at the table's first row.
        let mut at = 0;
        let mut i = start;
        while let Some(&byte) = key.get(i) {
            let entry = table.entry(at, CLASS[usize::from(byte)]);
            if entry < MATCH {
                at = entry as usize;
                i += 1;
                continue;
            }
            if entry & STOP == 0 {
                at = (entry & ROW) as usize;
                self.matched(&key[start..=i], label_id);
                i += 1;
                continue;
            }
            if byte != b'.' {
                i = self.lanes(key, start, i, at, label_id);
            }
            break;
        }
        i
    }

    /// Records the matches the table found at the end of `label`, which
    /// every reading reads alike.
    #[cold]
    #[inline(never)]
    fn matched(&mut self, label: &[u8], label_id: u8) {
        let (at, pos) = self.table.replay(label, &CLASS, 0, 0);
        self.record_row(at, ALL, pos, label_id);
    }

    /// The rest of the label starting at `label` in `key`, from its first
    /// digit the readings fold apart at `from`, where the shared reading
    /// reached row `at`: every reading that differs read side by side.
    /// Returns where the label ends (its dot, or the end of `key`).
    #[inline(never)]
    fn lanes(&mut self, key: &[u8], label: usize, from: usize, at: usize, label_id: u8) -> usize {
        let shared = &key[label..from];
        // 1 as l reads as 1 as i does until the label's first 1.
        let (mut one_is_i, mut no_digits) = (at, at);
        let mut one_is_l = None;
        let mut i = from;
        while let Some(&byte) = key.get(i) {
            if byte == b'.' {
                break;
            }
            let byte = usize::from(byte);
            if byte == usize::from(b'1') && one_is_l.is_none() {
                one_is_l = Some(one_is_i);
            }
            let entry = self.table.entry(one_is_i, CLASS_BY_READING[0][byte]);
            one_is_i = (entry & ROW) as usize;
            if entry & MATCH != 0 {
                let readings = if one_is_l.is_some() {
                    ONE_IS_I
                } else {
                    ONE_IS_I | ONE_IS_L
                };
                self.matched_in(shared, &key[from..=i], 0, readings, label_id);
            }
            if let Some(at) = one_is_l.as_mut() {
                let entry = self.table.entry(*at, CLASS_BY_READING[1][byte]);
                *at = (entry & ROW) as usize;
                if entry & MATCH != 0 {
                    self.matched_in(shared, &key[from..=i], 1, ONE_IS_L, label_id);
                }
            }
            let entry = self.table.entry(no_digits, CLASS_BY_READING[2][byte]);
            no_digits = (entry & ROW) as usize;
            if entry & MATCH != 0 {
                self.matched_in(shared, &key[from..=i], 2, NO_DIGITS, label_id);
            }
            i += 1;
        }
        i
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
        let (at, pos) = self.table.replay(rest, &CLASS_BY_READING[reading], at, pos);
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

//! The rules' automaton as a table over raw name bytes, built once per
//! reload: the folding of every reading built into its columns, so a name
//! is read with one look-up a byte.

use std::collections::BTreeMap;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;

use super::super::FOLD;

/// A byte's column in the [`Table`], the same for every reading: 0 when all
/// drop it, 1 for a digit the readings fold apart, [`DOT`] for a dot, else
/// 2 + the letter.
pub(super) static CLASS: [u8; 256] = class_table();
/// A dot's column: back to the table's first row, as every label starts.
const DOT: u8 = 28;
/// Each reading's column for every byte (never 1: a reading folds each
/// digit one way).
pub(super) static CLASS_BY_READING: [[u8; 256]; 3] =
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
        table[i] = if i == b'.' as usize {
            DOT
        } else if a != b || b != c {
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

/// The automaton's states over raw name bytes, folding built in: a row per
/// state, a column per [`CLASS`]. An entry is where the next row starts,
/// with [`MATCH`] added when that state holds matches; [`STOP`] (no row)
/// for a digit the readings fold apart; the first row for a dot. A doubled
/// letter leaves the row as it is, so it is read once.
#[derive(Debug)]
pub(super) struct Table {
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
pub(super) const ROW: u32 = (1 << 30) - 1;
pub(super) const MATCH: u32 = 1 << 30;
pub(super) const STOP: u32 = 1 << 31;

impl Table {
    pub(super) fn build(dfa: &DFA) -> Result<Table, String> {
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
            entries[usize::from(DOT)] = 0;
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
    pub(super) fn entry(&self, at: usize, class: u8) -> u32 {
        let index = at + usize::from(class);
        debug_assert!(index < self.next.len());
        // SAFETY: `at` is 0 or a row start taken from an entry, and `build`
        // writes every row whole (STRIDE entries) before any entry points
        // at it; `class` is below STRIDE (a letter column is at most 27).
        // This is the one look-up made for every byte of every name.
        unsafe { *self.next.get_unchecked(index) }
    }

    /// The patterns matching in the row starting at `at`.
    pub(super) fn matches_at(&self, at: usize) -> &[(u32, u16)] {
        self.matches
            .get(at / STRIDE)
            .and_then(|&(from, to)| self.patterns.get(from as usize..to as usize))
            .unwrap_or_default()
    }

    /// The row and the letters read after `bytes`, from row `at` with
    /// `pos` letters, each byte in column `classes[byte]`.
    pub(super) fn replay(
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

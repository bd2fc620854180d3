//! Reading a name for the name rules: each label folded and run through the
//! rules' automaton in one pass, every reading of its digits at once.
//!
//! A label is read three ways (1 as i, 1 as l, every digit dropped), but
//! until its first digit the three read the same, and most labels hold no
//! digit: so one lane carries all three readings and splits only where a
//! byte reads differently, each lane keeping its own automaton state. No
//! buffer is filled and nothing is allocated for an ASCII name.
//!
//! Until a label's first such digit, a [`Table`] built from the automaton
//! reads its raw bytes with the folding built in: one look-up a byte.

use std::collections::BTreeMap;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;

use super::{FOLD, NameRules, RuleHit, Variant, fold_label};

/// The readings, as bits of [`Lane::readings`], in the order a hit is
/// chosen: a term found reading 1 as i is reported before one found
/// reading it as l, then one found dropping every digit.
const READINGS: [Variant; 3] = [Variant::OneIsI, Variant::OneIsL, Variant::NoDigits];
const ALL: u8 = 0b111;

/// Matches kept per name; a name with more is cut short (more than this
/// many terms and exceptions in one name is no ordinary name).
const MAX_MATCHES: usize = 32;

/// A byte every reading folds alike: the letter, or 0 when all drop it;
/// [`SPLITS`] for a digit the readings fold apart, [`DOT`] for the dot.
static SAME: [u8; 256] = same_table();
const SPLITS: u8 = 0xff;
const DOT: u8 = 0xfe;

const fn same_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let (a, b, c) = (FOLD[0][i], FOLD[1][i], FOLD[2][i]);
        table[i] = if i == b'.' as usize {
            DOT
        } else if a == b && b == c {
            a
        } else {
            SPLITS
        };
        i += 1;
    }
    table
}

/// One or more readings of a label that have read the same so far.
#[derive(Clone, Copy)]
struct Lane {
    readings: u8,
    /// Where its row of the [`Table`] starts.
    at: usize,
    /// Letters read so far in this label.
    pos: u16,
}

/// For a digit the readings fold apart, the readings that fold it alike.
static SPLIT_GROUPS: [[u8; 3]; 256] = split_groups();
/// Each reading's column for every byte.
static CLASS_BY_READING: [[u8; 256]; 3] =
    [reading_classes(0), reading_classes(1), reading_classes(2)];

const fn split_groups() -> [[u8; 3]; 256] {
    let mut table = [[0u8; 3]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut assigned = 0u8;
        let mut groups = 0;
        let mut r = 0;
        while r < 3 {
            if assigned & (1 << r) == 0 {
                let mut group = 0u8;
                let mut other = r;
                while other < 3 {
                    if FOLD[other][byte] == FOLD[r][byte] {
                        group |= 1 << other;
                    }
                    other += 1;
                }
                assigned |= group;
                table[byte][groups] = group;
                groups += 1;
            }
            r += 1;
        }
        byte += 1;
    }
    table
}

const fn reading_classes(reading: usize) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match FOLD[reading][i] {
            0 => 0,
            letter => letter - b'a' + 2,
        };
        i += 1;
    }
    table
}

/// A term or exception found: in which readings of which label, where.
#[derive(Clone, Copy, Default)]
struct Occurrence {
    pattern: u32,
    readings: u8,
    label: u8,
    start: u16,
    end: u16,
}

/// The rules' automaton, and the same as a [`Table`].
#[derive(Debug)]
pub(super) struct Automaton {
    dfa: DFA,
    table: Table,
}

impl Automaton {
    pub(super) fn new(dfa: DFA) -> Result<Automaton, String> {
        let table = Table::build(&dfa)?;
        Ok(Automaton { dfa, table })
    }
}

/// The automaton's states over raw name bytes, folding built in: a row per
/// state, a column per [`CLASS`]. An entry is where the next row starts,
/// with
/// [`READ`] when a letter was read (not dropped, not a doubled letter),
/// [`MATCH`] when the next state holds matches, or just [`STOP`] for a
/// dot or a digit the readings fold apart.
#[derive(Debug)]
struct Table {
    next: Vec<u32>,
    /// Each row's automaton state, for the matches it holds.
    states: Vec<StateID>,
}

const STRIDE: usize = 32;
const ROW: u32 = 0xff_ffff;
const MATCH: u32 = 1 << 24;
const STOP: u32 = 1 << 25;
const READ: u32 = 1 << 26;

/// A byte's column: 0 dropped by every reading, 1 a dot or a splitting
/// digit, then one per letter.
static CLASS: [u8; 256] = class_table();

const fn class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match SAME[i] {
            0 => 0,
            DOT | SPLITS => 1,
            letter => letter - b'a' + 2,
        };
        i += 1;
    }
    table
}

impl Table {
    fn build(dfa: &DFA) -> Result<Table, String> {
        let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
        let mut table = Table {
            next: Vec::new(),
            states: vec![start],
        };
        // The letter read into each row's state (0 for the start state,
        // where a doubled letter leaves the state as it is).
        let mut lasts = vec![0u8];
        let mut rows = BTreeMap::from([(start, 0u32)]);
        let mut row = 0;
        while let Some(&state) = table.states.get(row) {
            let here = (row * STRIDE) as u32;
            let last = lasts[row];
            let mut entries = [here; STRIDE];
            entries[1] = STOP;
            for letter in b'a'..=b'z' {
                let entry = &mut entries[usize::from(letter - b'a') + 2];
                // The state already ends in this letter: doubled, read once.
                if letter == last {
                    continue;
                }
                let to = dfa.next_state(Anchored::No, state, letter);
                let to_row = match rows.get(&to) {
                    Some(&to_row) => to_row,
                    None => {
                        let to_row = u32::try_from(table.states.len() * STRIDE)
                            .ok()
                            .filter(|&r| r < ROW)
                            .ok_or("the terms make too large an automaton")?;
                        rows.insert(to, to_row);
                        table.states.push(to);
                        lasts.push(letter);
                        to_row
                    }
                };
                *entry = to_row | READ | if dfa.is_match(to) { MATCH } else { 0 };
            }
            table.next.extend_from_slice(&entries);
            row += 1;
        }
        Ok(table)
    }
}

struct Scan<'a> {
    rules: &'a NameRules,
    dfa: &'a DFA,
    table: &'a Table,
    mask: u64,
    start: StateID,
    /// The label's text before the lanes split, and the letters the table
    /// read from it once a match needs them.
    label: &'a [u8],
    base: Option<u16>,
    /// Filled only once something matches: most names hold no term, and
    /// clearing this for each would cost more than reading the name.
    found: Option<[Occurrence; MAX_MATCHES]>,
    len: usize,
}

/// The first term of a category in `mask` that flags a label of the
/// reversed `key` and no exception of its category covers in the same
/// reading: first by reading, then by label, then by where it ends.
pub(super) fn find(
    rules: &NameRules,
    automaton: &Automaton,
    key: &[u8],
    mask: u64,
) -> Option<RuleHit> {
    let dfa = &automaton.dfa;
    let mut scan = Scan {
        rules,
        dfa,
        table: &automaton.table,
        mask,
        start: dfa.start_state(Anchored::No).ok()?,
        label: &[],
        base: None,
        found: None,
        len: 0,
    };
    let next = &automaton.table.next[..];
    let mut text = key;
    let mut label_id = 0u8;
    // The table reads each ASCII label until a dot, a digit the readings
    // fold apart, or a match; those few places read the label again.
    'labels: loop {
        let rest = if text.starts_with(b"xn--") {
            scan.international(text, label_id)
        } else {
            let mut at = 0;
            let mut i = 0;
            loop {
                let Some(&byte) = text.get(i) else {
                    break 'labels;
                };
                // Every entry starts a row of the table: in bounds.
                let entry = next[at + usize::from(CLASS[usize::from(byte)])];
                if entry & (STOP | MATCH) != 0 {
                    if entry & STOP != 0 {
                        break match byte {
                            b'.' => text.get(i + 1..),
                            _ => scan.lanes(text, i, at, label_id),
                        };
                    }
                    scan.matched(&text[..=i], label_id);
                }
                at = (entry & ROW) as usize;
                i += 1;
            }
        };
        let Some(rest) = rest else { break };
        text = rest;
        label_id = label_id.saturating_add(1);
    }
    scan.first_hit()
}

impl<'a> Scan<'a> {
    /// Records the matches the table found at the end of `text`.
    #[cold]
    #[inline(never)]
    fn matched(&mut self, text: &[u8], label_id: u8) {
        let lane = self.replay(text);
        let state = self.table.states[lane.at / STRIDE];
        self.record(state, ALL, lane.pos, label_id);
    }

    /// The lane the table reads `text` (no dot, no splitting digit) into.
    fn replay(&self, text: &[u8]) -> Lane {
        let next = &self.table.next;
        let (at, pos) = text.iter().fold((0, 0u16), |(at, pos), &byte| {
            let entry = next[at + usize::from(CLASS[usize::from(byte)])];
            let read = u16::from(entry & READ != 0);
            ((entry & ROW) as usize, pos.saturating_add(read))
        });
        Lane {
            readings: ALL,
            at,
            pos,
        }
    }

    /// The rest of the label `text` starts with, from its first digit the
    /// readings fold apart at `from`, each lane on the table. Returns what
    /// follows its dot.
    #[inline(never)]
    fn lanes(&mut self, text: &'a [u8], from: usize, at: usize, label_id: u8) -> Option<&'a [u8]> {
        // Positions count from `from` until a match needs them whole.
        let first = Lane {
            readings: ALL,
            at,
            pos: 0,
        };
        self.base = None;
        self.label = &text[..from];
        let mut lanes = [first; 3];
        let mut count = 1;
        for (i, &byte) in text.iter().enumerate().skip(from) {
            match SAME[usize::from(byte)] {
                DOT => return text.get(i + 1..),
                SPLITS => {
                    let mut next = lanes;
                    let mut used = 0;
                    for lane in &lanes[..count] {
                        if lane.readings.count_ones() == 1 {
                            let reading = lane.readings.trailing_zeros() as usize;
                            let mut lane = *lane;
                            let class = CLASS_BY_READING[reading][usize::from(byte)];
                            self.advance(&mut lane, class, label_id);
                            if let Some(slot) = next.get_mut(used) {
                                *slot = lane;
                                used += 1;
                            }
                            continue;
                        }
                        for group in SPLIT_GROUPS[usize::from(byte)] {
                            let readings = lane.readings & group;
                            if readings == 0 {
                                continue;
                            }
                            let reading = readings.trailing_zeros() as usize;
                            let class = CLASS_BY_READING[reading][usize::from(byte)];
                            let mut sub = Lane { readings, ..*lane };
                            self.advance(&mut sub, class, label_id);
                            // The groups partition three readings: never
                            // more than three lanes.
                            if let Some(slot) = next.get_mut(used) {
                                *slot = sub;
                                used += 1;
                            }
                        }
                    }
                    lanes = next;
                    count = used;
                }
                _ => {
                    let class = CLASS[usize::from(byte)];
                    for lane in &mut lanes[..count] {
                        self.advance(lane, class, label_id);
                    }
                }
            }
        }
        None
    }

    fn advance(&mut self, lane: &mut Lane, class: u8, label_id: u8) {
        let entry = self.table.next[lane.at + usize::from(class)];
        lane.at = (entry & ROW) as usize;
        lane.pos = lane.pos.saturating_add(u16::from(entry & READ != 0));
        if entry & MATCH != 0 {
            let state = self.table.states[lane.at / STRIDE];
            let base = match self.base {
                Some(base) => base,
                None => {
                    let base = self.replay(self.label).pos;
                    self.base = Some(base);
                    base
                }
            };
            self.record(
                state,
                lane.readings,
                base.saturating_add(lane.pos),
                label_id,
            );
        }
    }

    /// An international label: decoded, folded per reading (only one when
    /// it holds no digit), and read; one punycode cannot decode is read as
    /// it is.
    fn international<'t>(&mut self, text: &'t [u8], label_id: u8) -> Option<&'t [u8]> {
        let end = text.iter().position(|&b| b == b'.');
        let label = &text[..end.unwrap_or(text.len())];
        let rest = end.and_then(|end| text.get(end + 1..));
        let code = label.get(4..).unwrap_or_default();
        let unicode = std::str::from_utf8(code)
            .ok()
            .and_then(idna::punycode::decode_to_string);
        let Some(unicode) = unicode else {
            self.read_dfa(label, ALL, label_id);
            return rest;
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
        rest
    }

    /// Reads bytes already folded (or left as they are) on the automaton.
    fn read_dfa(&mut self, bytes: &[u8], readings: u8, label_id: u8) {
        let mut state = self.start;
        let mut pos = 0u16;
        for &byte in bytes {
            pos = pos.saturating_add(1);
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_match(state) {
                self.record(state, readings, pos, label_id);
            }
        }
    }

    #[cold]
    fn record(&mut self, state: StateID, readings: u8, pos: u16, label_id: u8) {
        for index in 0..self.dfa.match_len(state) {
            let id = self.dfa.match_pattern(state, index);
            let Some(pattern) = self.rules.patterns.get(id.as_usize()) else {
                continue;
            };
            // An exception only covers its own category's terms: a
            // category the profile does not act on is not looked at.
            if self.mask & (1u64 << (pattern.category % 64)) == 0 {
                continue;
            }
            let len = u16::try_from(self.dfa.pattern_len(id)).unwrap_or(u16::MAX);
            let found = self
                .found
                .get_or_insert_with(|| [Occurrence::default(); MAX_MATCHES]);
            if let Some(slot) = found.get_mut(self.len) {
                *slot = Occurrence {
                    pattern: id.as_u32(),
                    readings,
                    label: label_id,
                    start: pos.saturating_sub(len),
                    end: pos,
                };
                self.len += 1;
            }
        }
    }

    fn first_hit(&self) -> Option<RuleHit> {
        let found = &self.found.as_ref()?[..self.len];
        let patterns = &self.rules.patterns;
        (0..READINGS.len()).find_map(|r| {
            let reading = 1u8 << r;
            found
                .iter()
                .filter(|term| term.readings & reading != 0)
                .find_map(|term| {
                    let pattern = patterns.get(term.pattern as usize)?;
                    if pattern.exception {
                        return None;
                    }
                    let excepted = found.iter().any(|e| {
                        e.readings & reading != 0
                            && e.label == term.label
                            && e.start <= term.start
                            && term.end <= e.end
                            && patterns
                                .get(e.pattern as usize)
                                .is_some_and(|p| p.exception && p.category == pattern.category)
                    });
                    (!excepted).then_some(RuleHit {
                        category: pattern.category,
                        term: term.pattern,
                    })
                })
        })
    }
}

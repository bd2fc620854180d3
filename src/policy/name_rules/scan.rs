//! Reading a name for the name rules: each label folded and run through the
//! rules' automaton in one pass, every reading of its digits at once.
//!
//! A label is read three ways (1 as i, 1 as l, every digit dropped), but
//! until its first digit the three read the same, and most labels hold no
//! digit: so one lane carries all three readings and splits only where a
//! byte reads differently, each lane keeping its own automaton state. No
//! buffer is filled and nothing is allocated for an ASCII name.

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;

use super::{FOLD, NameRules, RuleHit, Variant, fold_label};

/// The readings, as bits of [`Lane::readings`], in the order a hit is
/// chosen: a term found reading 1 as i is reported before one found
/// reading it as l, then one found dropping every digit.
const READINGS: [Variant; 3] = [Variant::OneIsI, Variant::OneIsL, Variant::NoDigits];
const ALL: u8 = 0b111;

/// Matches kept per name; a name with more is cut short (more than this
/// many terms and exceptions in one name is no ordinary name).
const MAX_MATCHES: usize = 64;

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
    state: StateID,
    /// The last letter read: a doubled letter is read once.
    last: u8,
    /// Bytes read so far in this label.
    pos: u16,
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

struct Scan<'a> {
    rules: &'a NameRules,
    dfa: &'a DFA,
    mask: u64,
    start: StateID,
    /// Filled only once something matches: most names hold no term, and
    /// clearing this for each would cost more than reading the name.
    found: Option<[Occurrence; MAX_MATCHES]>,
    len: usize,
}

/// The first term of a category in `mask` that flags a label of the
/// reversed `key` and no exception of its category covers in the same
/// reading: first by reading, then by label, then by where it ends.
pub(super) fn find(rules: &NameRules, dfa: &DFA, key: &[u8], mask: u64) -> Option<RuleHit> {
    let mut scan = Scan {
        rules,
        dfa,
        mask,
        start: dfa.start_state(Anchored::No).ok()?,
        found: None,
        len: 0,
    };
    let mut rest = Some(key);
    let mut label_id = 0u8;
    while let Some(text) = rest {
        rest = if text.starts_with(b"xn--") {
            scan.international(text, label_id)
        } else {
            scan.ascii(text, label_id)
        };
        label_id = label_id.saturating_add(1);
    }
    scan.first_hit()
}

impl Scan<'_> {
    fn lane(&self, readings: u8) -> Lane {
        Lane {
            readings,
            state: self.start,
            last: 0,
            pos: 0,
        }
    }

    /// Reads the label `text` starts with; returns what follows its dot.
    /// Until a digit the readings fold apart, one lane reads for all three.
    fn ascii<'t>(&mut self, text: &'t [u8], label_id: u8) -> Option<&'t [u8]> {
        let mut lane = self.lane(ALL);
        for (i, &byte) in text.iter().enumerate() {
            match SAME[usize::from(byte)] {
                0 => {}
                DOT => return text.get(i + 1..),
                SPLITS => return self.lanes(&text[i..], lane, label_id),
                letter => {
                    if lane.last != letter {
                        lane.last = letter;
                        self.step(&mut lane, letter, label_id);
                    }
                }
            }
        }
        None
    }

    /// The rest of a label from its first digit the readings fold apart.
    fn lanes<'t>(&mut self, text: &'t [u8], first: Lane, label_id: u8) -> Option<&'t [u8]> {
        let mut lanes = [first; 3];
        let mut count = 1;
        for (i, &byte) in text.iter().enumerate() {
            match SAME[usize::from(byte)] {
                0 => {}
                DOT => return text.get(i + 1..),
                SPLITS => count = self.split(&mut lanes, count, byte, label_id),
                letter => {
                    for lane in &mut lanes[..count] {
                        if lane.last != letter {
                            lane.last = letter;
                            self.step(lane, letter, label_id);
                        }
                    }
                }
            }
        }
        None
    }

    /// Reads `byte` in each lane, splitting a lane whose readings fold it
    /// apart. Returns the lanes now in use (at most one per reading).
    fn split(&mut self, lanes: &mut [Lane; 3], count: usize, byte: u8, label_id: u8) -> usize {
        let folds = READINGS.map(|variant| FOLD[variant as usize][usize::from(byte)]);
        let mut next = *lanes;
        let mut used = 0;
        for lane in &lanes[..count] {
            let mut rest = lane.readings;
            while rest != 0 {
                let letter = folds[rest.trailing_zeros() as usize];
                let group = (0..READINGS.len())
                    .filter(|&r| rest & (1 << r) != 0 && folds[r] == letter)
                    .fold(0u8, |group, r| group | 1 << r);
                rest &= !group;
                let mut sub = Lane {
                    readings: group,
                    ..*lane
                };
                if letter != 0 && letter != sub.last {
                    sub.last = letter;
                    self.step(&mut sub, letter, label_id);
                }
                // The groups partition three readings: never more than three.
                if let Some(slot) = next.get_mut(used) {
                    *slot = sub;
                    used += 1;
                }
            }
        }
        *lanes = next;
        used
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
            let mut lane = self.lane(ALL);
            for &byte in label {
                self.step(&mut lane, byte, label_id);
            }
            return rest;
        };
        let digits = unicode.bytes().any(|b| b.is_ascii_digit());
        let mut folded = Vec::new();
        for (r, variant) in READINGS.into_iter().enumerate() {
            let readings = if digits { 1 << r } else { ALL };
            folded.clear();
            fold_label(&unicode, variant, &mut folded);
            let mut lane = self.lane(readings);
            for &byte in &folded {
                self.step(&mut lane, byte, label_id);
            }
            if !digits {
                break;
            }
        }
        rest
    }

    #[inline(always)]
    fn step(&mut self, lane: &mut Lane, byte: u8, label_id: u8) {
        lane.pos = lane.pos.saturating_add(1);
        lane.state = self.dfa.next_state(Anchored::No, lane.state, byte);
        if self.dfa.is_match(lane.state) {
            self.record(*lane, label_id);
        }
    }

    #[cold]
    fn record(&mut self, lane: Lane, label_id: u8) {
        for index in 0..self.dfa.match_len(lane.state) {
            let id = self.dfa.match_pattern(lane.state, index);
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
                    readings: lane.readings,
                    label: label_id,
                    start: lane.pos.saturating_sub(len),
                    end: lane.pos,
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

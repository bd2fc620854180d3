//! The name rules' first reading, kept as the reference the one-pass scan
//! must agree with: every reading of the name folded into one buffer (a dot
//! between labels and readings), then every overlapping match of the terms.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::super::{NameRules, RuleHit, Variant, fold_byte, fold_label};

const FOLDED_MAX: usize = 800;
const MAX_MATCHES: usize = 64;

/// The rules' terms in one automaton, as they were first compiled.
pub fn automaton(rules: &NameRules) -> AhoCorasick {
    let folded: Vec<Vec<u8>> = rules
        .patterns
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            fold_label(&p.text, Variant::OneIsI, &mut out);
            out
        })
        .collect();
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&folded)
        .expect("terms compile")
}

pub fn find(rules: &NameRules, automaton: &AhoCorasick, key: &[u8], mask: u64) -> Option<RuleHit> {
    let has_digit = key.iter().any(u8::is_ascii_digit);
    let has_one = has_digit && key.contains(&b'1');
    let mut text = [0u8; FOLDED_MAX];
    let mut len = fold_name(key, Variant::OneIsI, false, &mut text);
    for (variant, wanted) in [(Variant::OneIsL, has_one), (Variant::NoDigits, has_digit)] {
        if wanted && len < FOLDED_MAX {
            text[len] = b'.';
            len += 1;
            len += fold_name(key, variant, true, &mut text[len..]);
        }
    }
    let mut found = Vec::new();
    for m in automaton
        .find_overlapping_iter(&text[..len])
        .take(MAX_MATCHES)
    {
        found.push((m.pattern().as_u32(), m.start(), m.end()));
    }
    found.iter().find_map(|&(id, start, end)| {
        let pattern = rules.patterns.get(id as usize)?;
        if pattern.exception || mask & (1u64 << (pattern.category % 64)) == 0 {
            return None;
        }
        let excepted = found.iter().any(|&(other, s, e)| {
            rules.patterns.get(other as usize).is_some_and(|p| {
                p.exception && p.category == pattern.category && s <= start && end <= e
            })
        });
        (!excepted).then_some(RuleHit {
            category: pattern.category,
            term: id,
        })
    })
}

fn fold_name(key: &[u8], variant: Variant, digits_only: bool, out: &mut [u8]) -> usize {
    let mut len = 0;
    for label in key.split(|b| *b == b'.') {
        if digits_only && !label.iter().any(u8::is_ascii_digit) {
            continue;
        }
        if len > 0 && len < out.len() {
            out[len] = b'.';
            len += 1;
        }
        let Some(code) = label.strip_prefix(b"xn--") else {
            len += fold_ascii(label, variant, &mut out[len..]);
            continue;
        };
        let mut decoded = Vec::new();
        let text: &[u8] = match std::str::from_utf8(code)
            .ok()
            .and_then(idna::punycode::decode_to_string)
        {
            Some(unicode) => {
                fold_label(&unicode, variant, &mut decoded);
                &decoded
            }
            None => label,
        };
        let take = text.len().min(out.len() - len);
        out[len..len + take].copy_from_slice(&text[..take]);
        len += take;
    }
    len
}

/// Folds one ASCII label into `out`, which it never overruns.
pub fn fold_ascii(label: &[u8], variant: Variant, out: &mut [u8]) -> usize {
    let mut len = 0;
    let mut last = 0u8;
    for &byte in label {
        let Some(letter) = fold_byte(byte, variant) else {
            continue;
        };
        if letter == last || len == out.len() {
            continue;
        }
        out[len] = letter;
        len += 1;
        last = letter;
    }
    len
}

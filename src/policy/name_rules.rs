//! Name rules: flag a name by the words in its labels, for the categories
//! no public list covers (self-harm, extremism) and for names no list has
//! yet. The rules in `lists/rules/names.toml` are folded (leetspeak undone,
//! hyphens and doubled letters dropped) and compiled once per reload into
//! one Aho-Corasick automaton; each look-up folds the name's labels the same
//! way as it runs the automaton over them (`scan`), an exception covering
//! the term it contains (the Scunthorpe problem).

use std::collections::BTreeMap;

use aho_corasick::dfa::DFA;
use aho_corasick::{MatchKind, StartKind};
use serde::Deserialize;

use crate::config::ProfileMode;
use crate::name::ReversedName;

use super::decision::{Decision, Hit, HitSource};

/// The shipped rules, embedded so a reload never waits on a file.
pub const EMBEDDED: &str = include_str!("../../lists/rules/names.toml");

/// The languages the shipped rules hold terms in, by config code.
pub use crate::config::NAME_RULE_LANGUAGES as LANGUAGES;

/// The fewest letters a folded term or exception may keep: shorter ones
/// match inside too many ordinary words.
const MIN_LETTERS: usize = 3;
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    categories: BTreeMap<String, CategoryRules>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryRules {
    /// Terms by language code.
    terms: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    exceptions: Vec<String>,
}

/// Why the name rules could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name rules ({origin}): {message}")]
pub struct NameRulesError {
    pub origin: String,
    pub message: String,
}

#[derive(Debug)]
struct Pattern {
    category: u16,
    exception: bool,
    /// As written in the rules file, for the block log and the alert.
    text: String,
}

/// The compiled rules: one automaton over every term and exception.
#[derive(Debug, Default)]
pub struct NameRules {
    categories: Vec<String>,
    patterns: Vec<Pattern>,
    automaton: Option<scan::Automaton>,
}

/// A term that flagged a name: its category (index into the rules'
/// categories) and pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleHit {
    pub category: u16,
    pub term: u32,
}

impl NameRules {
    /// The shipped rules, English plus `languages`.
    pub fn embedded(languages: &[String]) -> Result<NameRules, NameRulesError> {
        NameRules::compile(EMBEDDED, "lists/rules/names.toml", languages)
    }

    /// Compiles `text` (the rules file's shape), keeping English terms and
    /// those of `languages`. `origin` names the file in errors.
    pub fn compile(
        text: &str,
        origin: &str,
        languages: &[String],
    ) -> Result<NameRules, NameRulesError> {
        let problem = |message: String| NameRulesError {
            origin: origin.to_string(),
            message,
        };
        let file: RulesFile = toml::from_str(text).map_err(|e| problem(e.to_string()))?;
        let mut rules = NameRules::default();
        let mut folded = Vec::new();
        for (index, (category, entry)) in file.categories.into_iter().enumerate() {
            let category_id = u16::try_from(index)
                .map_err(|_| problem("more categories than Lollipop can hold".into()))?;
            for (language, terms) in &entry.terms {
                if !LANGUAGES.iter().any(|(code, _)| code == language) {
                    return Err(problem(format!(
                        "categories.{category}.terms.{language}: unknown language; use one of {}",
                        language_codes()
                    )));
                }
                if language != "en" && !languages.iter().any(|l| l == language) {
                    continue;
                }
                for term in terms {
                    folded.push(fold_rule(term, &category, &problem)?);
                    rules.patterns.push(Pattern {
                        category: category_id,
                        exception: false,
                        text: term.clone(),
                    });
                }
            }
            for exception in &entry.exceptions {
                folded.push(fold_rule(exception, &category, &problem)?);
                rules.patterns.push(Pattern {
                    category: category_id,
                    exception: true,
                    text: exception.clone(),
                });
            }
            rules.categories.push(category);
        }
        if !folded.is_empty() {
            // Standard semantics: every overlapping match is reported, so an
            // exception and the term inside it are both seen.
            let automaton = DFA::builder()
                .match_kind(MatchKind::Standard)
                .start_kind(StartKind::Unanchored)
                // Names are short and full of the terms' first letters: a
                // prefilter would stop and start the automaton at every one.
                .prefilter(false)
                .build(&folded)
                .map_err(|e| problem(format!("cannot compile the terms: {e}")))?;
            let automaton = scan::Automaton::new(automaton)
                .map_err(|e| problem(format!("cannot compile the terms: {e}")))?;
            rules.automaton = Some(automaton);
        }
        Ok(rules)
    }

    /// The rules' categories, in the order [`RuleHit::category`] counts.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    pub fn category_name(&self, category: u16) -> &str {
        self.categories
            .get(usize::from(category))
            .map_or("", String::as_str)
    }

    /// The term as written in the rules file.
    pub fn term(&self, term: u32) -> &str {
        self.patterns
            .get(term as usize)
            .map_or("", |p| p.text.as_str())
    }

    /// The bits (by [`NameRules::categories`] index) of the named categories.
    pub fn mask_of<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> u64 {
        names
            .into_iter()
            .filter_map(|name| self.categories.iter().position(|c| c == name))
            .filter(|&i| i < 64)
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// The first term of a category in `mask` that flags a label of `name`
    /// and no exception of its category covers.
    pub fn find(&self, name: &ReversedName, mask: u64) -> Option<RuleHit> {
        let automaton = self.automaton.as_ref()?;
        if mask == 0 {
            return None;
        }
        let key = name.as_bytes();
        memo::remembered(automaton.id(), key, mask, || {
            scan::find(self, automaton, key, name.as_padded_bytes(), mask)
        })
    }
}

/// Applies the rules to a decision no list or allow entry made. `mask` is
/// the profile's rule categories: those it blocks in a blocklist profile
/// (a hit blocks), every one in a walled garden (a hit is only recorded,
/// for the alert: the garden blocks the name anyway).
pub fn apply(
    rules: &NameRules,
    mask: u64,
    mode: ProfileMode,
    name: &ReversedName,
    decision: Decision,
) -> Decision {
    let hit = |rule: RuleHit| Hit {
        key_len: name.as_bytes().len(),
        source: HitSource::NameRule {
            category: rule.category,
            term: rule.term,
        },
    };
    match (decision, mode) {
        (Decision::Allowed { by: None }, ProfileMode::Blocklist) => match rules.find(name, mask) {
            Some(rule) => Decision::Blocked { by: hit(rule) },
            None => decision,
        },
        (Decision::NotInWalledGarden { rule: None }, _) => Decision::NotInWalledGarden {
            rule: rules.find(name, mask).map(hit),
        },
        _ => decision,
    }
}

fn language_codes() -> String {
    LANGUAGES
        .iter()
        .map(|(code, _)| *code)
        .collect::<Vec<_>>()
        .join(", ")
}

fn fold_rule(
    text: &str,
    category: &str,
    problem: &dyn Fn(String) -> NameRulesError,
) -> Result<Vec<u8>, NameRulesError> {
    let mut out = Vec::with_capacity(text.len());
    fold_label(text, Variant::OneIsI, &mut out);
    let letters = std::str::from_utf8(&out).map_or(0, |s| s.chars().count());
    if letters < MIN_LETTERS {
        return Err(problem(format!(
            "categories.{category}: {text:?} keeps fewer than {MIN_LETTERS} letters once folded; \
             write a longer, more specific term"
        )));
    }
    Ok(out)
}

/// How a label's digits are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Leetspeak undone, 1 read as i.
    OneIsI,
    /// Leetspeak undone, 1 read as l.
    OneIsL,
    /// Every digit dropped.
    NoDigits,
}

/// Folds any text (a rule, or a decoded international label) into `out`.
fn fold_label(text: &str, variant: Variant, out: &mut Vec<u8>) {
    let mut last: Option<char> = None;
    for c in text.chars() {
        let letter = if c.is_ascii() {
            fold_byte(c as u8, variant).map(char::from)
        } else if c.is_alphabetic() {
            c.to_lowercase().next()
        } else {
            None
        };
        let Some(letter) = letter else { continue };
        if Some(letter) == last {
            continue;
        }
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(letter.encode_utf8(&mut utf8).as_bytes());
        last = Some(letter);
    }
}

/// One ASCII byte, folded: a letter, or None when it is dropped.
fn fold_byte(byte: u8, variant: Variant) -> Option<u8> {
    let letter = FOLD[variant as usize][usize::from(byte)];
    (letter != 0).then_some(letter)
}

/// Each variant's folding of every byte (0: dropped), built at compile time
/// so a look-up folds a name with one table read a byte.
static FOLD: [[u8; 256]; 3] = [
    fold_table(Variant::OneIsI),
    fold_table(Variant::OneIsL),
    fold_table(Variant::NoDigits),
];

const fn fold_table(variant: Variant) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let byte = (i as u8).to_ascii_lowercase();
        let digits = !matches!(variant, Variant::NoDigits);
        table[i] = match byte {
            b'a'..=b'z' => byte,
            b'0' if digits => b'o',
            b'1' if matches!(variant, Variant::OneIsL) => b'l',
            b'1' if digits => b'i',
            b'3' if digits => b'e',
            b'4' if digits => b'a',
            b'5' if digits => b's',
            b'7' if digits => b't',
            b'@' => b'a',
            b'$' => b's',
            _ => 0,
        };
        i += 1;
    }
    table
}

pub mod labels;
pub mod memo;
mod scan;
#[cfg(test)]
mod tests;

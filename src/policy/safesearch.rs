//! The safe-search rewrite map: which query names are answered with a CNAME to a provider's filtered front end, and under which policy.
//!
//! The map is data (`lists/safesearch.toml`), built once at start-up into
//! hash tables. A lookup borrows from the map and never allocates. Names are
//! matched exactly: listing `www.google.com` says nothing about its subdomains.

use std::collections::HashMap;

use serde::Deserialize;

/// Where the embedded map lives, relative to this source file. This is the
/// only place the path is written: `include_str!` takes a literal (or a macro
/// that expands to one), not a `const`, so the path is kept in this macro.
macro_rules! embedded_map_path {
    () => {
        "../../lists/safesearch.toml"
    };
}

/// Path of the embedded map, relative to this source file.
pub const EMBEDDED_PATH: &str = embedded_map_path!();

/// Origin named in errors about the embedded map.
const EMBEDDED_ORIGIN: &str = concat!("built-in safe-search map (", embedded_map_path!(), ")");

/// Text of the embedded map.
const EMBEDDED_TEXT: &str = include_str!(embedded_map_path!());

/// YouTube Restricted Mode level a profile asks for (a config value).
pub use crate::config::YouTubeMode;

/// What a profile enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeSearchPolicy {
    /// Force safe results on search engines (the `search` rewrites).
    pub search: bool,
    /// YouTube Restricted Mode level (the `youtube` rewrites).
    pub youtube: YouTubeMode,
}

/// The answer for one rewritten name: CNAME the query name to `target`.
/// Both fields borrow from the [`SafeSearchMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite<'a> {
    /// Provider id from the map, e.g. `google`.
    pub provider: &'a str,
    /// Host to CNAME to, e.g. `forcesafesearch.google.com`.
    pub target: &'a str,
}

/// The safe-search rewrite map, built once at start-up.
#[derive(Debug, Clone)]
pub struct SafeSearchMap {
    /// One entry per `[[rewrite]]`, in file order.
    rewrites: Vec<Entry>,
    /// Name to index into `rewrites`, per table.
    search: HashMap<Box<str>, usize>,
    youtube_strict: HashMap<Box<str>, usize>,
    youtube_moderate: HashMap<Box<str>, usize>,
    /// A bit for every listed name's [`sketch`], in any table: a name
    /// whose bit is clear is listed nowhere, which spares nearly every
    /// query the hash lookups (a set bit proves nothing).
    sketches: [u64; SKETCH_WORDS],
}

/// Words of the sketch bitmap: 4,096 bits, for a few hundred names.
const SKETCH_WORDS: usize = 64;

/// A cheap fingerprint of a name (its length and three of its bytes) as a
/// bit number in the sketch bitmap.
fn sketch(name: &str) -> usize {
    let bytes = name.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return 0;
    };
    let middle = bytes[bytes.len() / 2];
    let mixed = (bytes.len() as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(u32::from(first).wrapping_mul(0x85EB_CA77))
        .wrapping_add(u32::from(middle).wrapping_mul(0xC2B2_AE3D))
        .wrapping_add(u32::from(last).wrapping_mul(0x27D4_EB2F));
    (mixed >> 20) as usize % (SKETCH_WORDS * 64)
}

#[derive(Debug, Clone)]
struct Entry {
    provider: Box<str>,
    target: Box<str>,
}

/// Why a map could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SafeSearchError {
    /// The text is not TOML of the expected shape.
    #[error("{origin}: not a valid safe-search map: {error}")]
    Syntax {
        origin: String,
        error: toml::de::Error,
    },
    /// One `[[rewrite]]` table is wrong.
    #[error("{origin}: [[rewrite]] number {number} (provider {provider:?}): {problem}")]
    Rewrite {
        origin: String,
        /// 1-based position of the `[[rewrite]]` table in the file.
        number: usize,
        provider: String,
        /// Boxed to keep the error small on the happy path.
        problem: Box<RewriteProblem>,
    },
}

/// What is wrong with one `[[rewrite]]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteProblem {
    #[error("provider is empty")]
    EmptyProvider,
    #[error("service {0:?} is unknown (expected \"search\" or \"youtube\")")]
    UnknownService(String),
    #[error("level {level:?} is not allowed for service {service:?} (allowed: {allowed})")]
    BadLevel {
        service: &'static str,
        level: String,
        allowed: &'static str,
    },
    #[error("target {target:?} is not a lower-case host name: {why}")]
    BadTarget { target: String, why: &'static str },
    #[error("names is empty")]
    EmptyNames,
    #[error("name {name:?} is not a lower-case host name: {why}")]
    BadName { name: String, why: &'static str },
    #[error(
        "name {name:?} is also listed under [[rewrite]] number {other_number} \
         with target {other_target:?}, not {target:?}"
    )]
    ConflictingTarget {
        name: String,
        target: String,
        other_number: usize,
        other_target: String,
    },
    #[error(
        "target {target:?} is itself listed under names (in [[rewrite]] number {listed_in}), \
         so the rewrite would loop"
    )]
    TargetInNames { target: String, listed_in: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    #[serde(default)]
    rewrite: Vec<RawRewrite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRewrite {
    provider: String,
    service: String,
    level: String,
    target: String,
    names: Vec<String>,
}

/// The lookup tables. Search and YouTube tables can be in force together, so
/// they must agree on shared names; the two YouTube levels never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Search,
    YouTubeStrict,
    YouTubeModerate,
}

impl Table {
    fn from_raw(service: &str, level: &str) -> Result<Self, RewriteProblem> {
        match (service, level) {
            ("search", "strict") => Ok(Self::Search),
            ("search", _) => Err(RewriteProblem::BadLevel {
                service: "search",
                level: level.to_owned(),
                allowed: "\"strict\"",
            }),
            ("youtube", "strict") => Ok(Self::YouTubeStrict),
            ("youtube", "moderate") => Ok(Self::YouTubeModerate),
            ("youtube", _) => Err(RewriteProblem::BadLevel {
                service: "youtube",
                level: level.to_owned(),
                allowed: "\"strict\" or \"moderate\"",
            }),
            _ => Err(RewriteProblem::UnknownService(service.to_owned())),
        }
    }

    /// Tables that can be in force at the same time as `self` (itself included).
    fn concurrent(self) -> &'static [Table] {
        match self {
            Self::Search => &[Self::Search, Self::YouTubeStrict, Self::YouTubeModerate],
            Self::YouTubeStrict => &[Self::Search, Self::YouTubeStrict],
            Self::YouTubeModerate => &[Self::Search, Self::YouTubeModerate],
        }
    }
}

impl SafeSearchMap {
    /// The map shipped with Lollipop.
    pub fn embedded() -> Result<Self, SafeSearchError> {
        Self::parse(EMBEDDED_TEXT, EMBEDDED_ORIGIN)
    }

    /// Builds a map from TOML text. `origin` (a path or label) is named in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SafeSearchError> {
        let raw: RawMap = toml::from_str(text).map_err(|error| SafeSearchError::Syntax {
            origin: origin.to_owned(),
            error,
        })?;
        let mut map = Self {
            rewrites: Vec::with_capacity(raw.rewrite.len()),
            search: HashMap::new(),
            youtube_strict: HashMap::new(),
            youtube_moderate: HashMap::new(),
            sketches: [0; SKETCH_WORDS],
        };
        for (index, rewrite) in raw.rewrite.iter().enumerate() {
            map.add(rewrite)
                .map_err(|problem| rewrite_error(origin, index, &rewrite.provider, problem))?;
        }
        for (index, entry) in map.rewrites.iter().enumerate() {
            if let Some(listed) = map.listed_anywhere(&entry.target) {
                let problem = RewriteProblem::TargetInNames {
                    target: entry.target.to_string(),
                    listed_in: listed + 1,
                };
                return Err(rewrite_error(origin, index, &entry.provider, problem));
            }
        }
        Ok(map)
    }

    /// The rewrite for `name` (lower case, no trailing dot) under `policy`, or
    /// `None` when the policy does not enforce that service or the name is not
    /// listed. Does not allocate.
    pub fn rewrite(&self, name: &str, policy: SafeSearchPolicy) -> Option<Rewrite<'_>> {
        let bit = sketch(name);
        if self.sketches[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        if policy.search
            && let Some(&index) = self.search.get(name)
        {
            return Some(self.answer(index));
        }
        let table = match policy.youtube {
            YouTubeMode::Strict => &self.youtube_strict,
            YouTubeMode::Moderate => &self.youtube_moderate,
            YouTubeMode::Off => return None,
        };
        table.get(name).map(|&index| self.answer(index))
    }

    /// Number of listed names, counted once per table (search, YouTube strict,
    /// YouTube moderate).
    pub fn len(&self) -> usize {
        self.search.len() + self.youtube_strict.len() + self.youtube_moderate.len()
    }

    /// True when no name is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn answer(&self, index: usize) -> Rewrite<'_> {
        let entry = &self.rewrites[index];
        Rewrite {
            provider: &entry.provider,
            target: &entry.target,
        }
    }

    fn table(&self, table: Table) -> &HashMap<Box<str>, usize> {
        match table {
            Table::Search => &self.search,
            Table::YouTubeStrict => &self.youtube_strict,
            Table::YouTubeModerate => &self.youtube_moderate,
        }
    }

    fn table_mut(&mut self, table: Table) -> &mut HashMap<Box<str>, usize> {
        match table {
            Table::Search => &mut self.search,
            Table::YouTubeStrict => &mut self.youtube_strict,
            Table::YouTubeModerate => &mut self.youtube_moderate,
        }
    }

    /// Index of a rewrite listing `name` in any table.
    fn listed_anywhere(&self, name: &str) -> Option<usize> {
        [Table::Search, Table::YouTubeStrict, Table::YouTubeModerate]
            .into_iter()
            .find_map(|table| self.table(table).get(name).copied())
    }

    /// Validates one rewrite and adds its names; nothing is added on error.
    fn add(&mut self, raw: &RawRewrite) -> Result<(), RewriteProblem> {
        if raw.provider.trim().is_empty() {
            return Err(RewriteProblem::EmptyProvider);
        }
        let table = Table::from_raw(&raw.service, &raw.level)?;
        check_host(&raw.target).map_err(|why| RewriteProblem::BadTarget {
            target: raw.target.clone(),
            why,
        })?;
        if raw.names.is_empty() {
            return Err(RewriteProblem::EmptyNames);
        }
        for name in &raw.names {
            check_host(name).map_err(|why| RewriteProblem::BadName {
                name: name.clone(),
                why,
            })?;
            for &other in table.concurrent() {
                if let Some(&other_index) = self.table(other).get(name.as_str()) {
                    let other_target = &self.rewrites[other_index].target;
                    if **other_target != *raw.target {
                        return Err(RewriteProblem::ConflictingTarget {
                            name: name.clone(),
                            target: raw.target.clone(),
                            other_number: other_index + 1,
                            other_target: other_target.to_string(),
                        });
                    }
                }
            }
        }
        let entry_index = self.rewrites.len();
        self.rewrites.push(Entry {
            provider: raw.provider.as_str().into(),
            target: raw.target.as_str().into(),
        });
        for name in &raw.names {
            let bit = sketch(name);
            self.sketches[bit / 64] |= 1 << (bit % 64);
        }
        let entries = self.table_mut(table);
        for name in &raw.names {
            // A repeat with the same target keeps its first entry.
            entries.entry(name.as_str().into()).or_insert(entry_index);
        }
        Ok(())
    }
}

fn rewrite_error(
    origin: &str,
    index: usize,
    provider: &str,
    problem: RewriteProblem,
) -> SafeSearchError {
    SafeSearchError::Rewrite {
        origin: origin.to_owned(),
        number: index + 1,
        provider: provider.to_owned(),
        problem: Box::new(problem),
    }
}

/// Checks that `name` is a lower-case DNS host name with at least two labels
/// and no trailing dot.
fn check_host(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.ends_with('.') {
        return Err("it has a trailing dot");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    if !name.contains('.') {
        return Err("it has a single label");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(if c.is_ascii_uppercase() {
                "it has upper-case letters"
            } else {
                "it has a character other than a-z, 0-9, '-' and '.'"
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

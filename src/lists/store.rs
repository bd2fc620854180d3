//! Answering, per query, which list entries cover a name: the memory-mapped
//! compiled lists and small in-memory per-profile sets, walked in one pass.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use fst::raw::{Fst, Output};
use memmap2::{Advice, Mmap, UncheckedAdvice};
use thiserror::Error;

use super::parse::EntryKinds;
use super::{
    Combination, FORMAT_VERSION, HeaderError, Manifest, SourceInfo, decode_header,
    describe_fst_error,
};
use crate::config::ListFormat;
use crate::name::{ReversedName, reverse_domain_owned};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open compiled lists {path}: {error}. Run the list compile again.")]
    Open { path: PathBuf, error: io::Error },
    #[error(
        "{path} is not a Lollipop compiled lists file. Check the path, or run the list compile again."
    )]
    NotListsFile { path: PathBuf },
    #[error("{path} is damaged ({detail}). Run the list compile again.")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path} is in format version {found} but this Lollipop reads version {expected}. Recompile the lists (run the list compile again) with this version of Lollipop."
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("building an allow/deny set failed: {0}")]
    BuildSet(String),
}

/// One place a query name is covered: the first `key_len` bytes of its
/// reversed form are a list entry, found in the lists of `combination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuffixMatch {
    pub key_len: usize,
    pub combination: u32,
}

/// The fst half of the mapped file. Slicing on each access (rather than
/// storing a slice) avoids a self-referential struct; it costs one bounds
/// check.
struct FstBytes {
    mmap: Mmap,
    offset: usize,
}

impl AsRef<[u8]> for FstBytes {
    fn as_ref(&self) -> &[u8] {
        self.mmap.get(self.offset..).unwrap_or(&[])
    }
}

/// After the whole index was read once to verify it, keeps resident only
/// what look-ups touch: a 2,000,000-domain index is 21 MB, most of a small
/// appliance's memory target, while a school's look-ups touch a fraction.
/// Advice only; a kernel that refuses it costs memory, nothing else.
fn release_verified_pages(mmap: &Mmap) {
    // SAFETY: a read-only shared mapping of a file that is never written in
    // place (see `open`): MADV_DONTNEED only unmaps its pages from this
    // process, and the next touch maps them again from the page cache or
    // the unchanged file.
    let _ = unsafe { mmap.unchecked_advise(UncheckedAdvice::DontNeed) };
    // Look-ups jump about the index: each fault maps its own page, not its
    // neighbours as well.
    let _ = mmap.advise(Advice::Random);
}

/// A compiled lists file, mapped read-only. Cheap to share behind an `Arc`
/// and swap whole on reload.
pub struct CompiledLists {
    manifest: Manifest,
    /// `None` before the first compile.
    map: Option<fst::Map<FstBytes>>,
    /// Returned for an index from another generation of lists (e.g. held
    /// across a reload), so a stale index gives "unknown", not a panic.
    unknown_source: SourceInfo,
}

impl CompiledLists {
    /// No lists at all: every walk finds nothing.
    pub fn empty() -> Self {
        CompiledLists {
            manifest: Manifest::empty(),
            map: None,
            unknown_source: unknown_source(),
        }
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let corrupt = |detail: &str| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.to_owned(),
        };
        let file = File::open(path).map_err(|error| StoreError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        // SAFETY: the compiler only ever renames a finished file into place
        // and never writes to one that exists, so the mapped bytes cannot
        // change under us. (Someone truncating it by hand would SIGBUS; no
        // safe API can prevent that for a mapping.)
        let mmap = unsafe { Mmap::map(&file) }.map_err(|error| StoreError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        let (manifest, offset) = decode_header(&mmap).map_err(|e| match e {
            HeaderError::NotListsFile => StoreError::NotListsFile {
                path: path.to_path_buf(),
            },
            HeaderError::Corrupt(detail) => corrupt(&detail),
            HeaderError::Version(found) => StoreError::Version {
                path: path.to_path_buf(),
                found,
                expected: FORMAT_VERSION,
            },
        })?;
        let map = fst::Map::new(FstBytes { mmap, offset })
            .map_err(|e| corrupt(&format!("index unreadable: {}", describe_fst_error(&e))))?;
        // fst trusts its bytes and can panic on damaged ones; reading the
        // whole index once here is the price of never panicking later.
        map.as_fst()
            .verify()
            .map_err(|e| corrupt(&format!("index checksum: {}", describe_fst_error(&e))))?;
        if map.len() as u64 != manifest.domain_count {
            return Err(corrupt("index and manifest disagree on the domain count"));
        }
        release_verified_pages(&map.as_fst().as_inner().mmap);
        Ok(CompiledLists {
            manifest,
            map: Some(map),
            unknown_source: unknown_source(),
        })
    }

    /// Reports every list entry that is a suffix of `name` on a label
    /// boundary, least specific first (`uk` before `bbc.co.uk`).
    #[inline]
    pub fn walk(&self, name: &ReversedName, mut on_match: impl FnMut(SuffixMatch)) {
        if let Some(map) = &self.map {
            walk_fst(map.as_fst(), name.as_bytes(), |key_len, value| {
                on_match(SuffixMatch {
                    key_len,
                    // Out of range maps to an id no table holds, which the
                    // accessors below answer with "nothing".
                    combination: u32::try_from(value).unwrap_or(u32::MAX),
                });
            });
        }
    }

    /// Categories with a block (plain or important) at exactly this
    /// combination's key; 0 for an unknown id.
    #[inline]
    pub fn combination_categories(&self, id: u32) -> u64 {
        self.combination(id).map_or(0, |c| c.categories)
    }

    /// Categories with an exception (allow) at exactly this combination's
    /// key; 0 for an unknown id.
    #[inline]
    pub fn combination_exceptions(&self, id: u32) -> u64 {
        self.combination(id).map_or(0, |c| c.exceptions)
    }

    /// Categories with an important block at exactly this combination's key;
    /// 0 for an unknown id.
    #[inline]
    pub fn combination_important(&self, id: u32) -> u64 {
        self.combination(id).map_or(0, |c| c.important)
    }

    #[inline]
    fn combination(&self, id: u32) -> Option<&Combination> {
        self.manifest.combinations.get(usize::try_from(id).ok()?)
    }

    /// Source indices for a combination id, whatever kind of entry each
    /// has; empty for an unknown id.
    pub fn combination_sources(&self, id: u32) -> &[u16] {
        self.combination(id).map_or(&[], |c| &c.sources)
    }

    /// Each source of a combination with the kinds of entry it has there,
    /// to say which list blocked and which made the exception; empty for an
    /// unknown id.
    pub fn combination_entries(&self, id: u32) -> impl Iterator<Item = (u16, EntryKinds)> + '_ {
        self.combination(id)
            .into_iter()
            .flat_map(|c| c.sources.iter().copied().zip(c.kinds.iter().copied()))
    }

    /// The source at `idx`, or a placeholder named `unknown` if `idx` didn't
    /// come from this store.
    pub fn source(&self, idx: u16) -> &SourceInfo {
        self.manifest
            .sources
            .get(usize::from(idx))
            .unwrap_or(&self.unknown_source)
    }

    pub fn categories(&self) -> &[String] {
        &self.manifest.categories
    }

    /// Every source, by the index [`CompiledLists::source`] takes.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.manifest.sources
    }

    pub fn category_bit(&self, name: &str) -> Option<u32> {
        let pos = self.manifest.categories.iter().position(|c| c == name)?;
        u32::try_from(pos).ok()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn domain_count(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }
}

impl fmt::Debug for CompiledLists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledLists")
            .field("domains", &self.domain_count())
            .field("sources", &self.manifest.sources.len())
            .field("categories", &self.manifest.categories)
            .field("compiled_at", &self.manifest.compiled_at)
            .finish()
    }
}

fn unknown_source() -> SourceInfo {
    SourceInfo {
        name: "unknown".into(),
        path: PathBuf::new(),
        category: String::new(),
        format: ListFormat::Domains,
        entries: 0,
        bad_lines: 0,
        unsupported: 0,
        url_level: 0,
        hidden: false,
    }
}

/// A small set of domains (a profile's own allow or deny list), matched the
/// same way as the compiled lists.
#[derive(Debug, Default)]
pub struct SuffixSet {
    set: fst::Set<Vec<u8>>,
}

impl SuffixSet {
    /// `domains` must already be normalised (see
    /// [`normalise_domain`](crate::name::normalise_domain)); empty strings are
    /// ignored rather than matching everything.
    pub fn new(domains: Vec<String>) -> Result<Self, StoreError> {
        let mut keys: Vec<String> = domains
            .into_iter()
            .filter(|d| !d.is_empty())
            .map(reverse_domain_owned)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let set =
            fst::Set::from_iter(keys).map_err(|e| StoreError::BuildSet(describe_fst_error(&e)))?;
        Ok(SuffixSet { set })
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Calls `on_match(key_len)` for each entry covering `name`, least
    /// specific first; see [`CompiledLists::walk`].
    #[inline]
    pub fn walk(&self, name: &ReversedName, mut on_match: impl FnMut(usize)) {
        walk_fst(self.set.as_fst(), name.as_bytes(), |key_len, _| {
            on_match(key_len)
        });
    }
}

/// The one-pass suffix walk shared by both stores. Following `key` byte by
/// byte from the root visits every key that is a prefix of it; a prefix is
/// a match only where the node is final *and* the prefix ends a label,
/// otherwise `uk.co.bbc` would match entry `uk.co.bb`.
#[inline]
fn walk_fst<D: AsRef<[u8]>>(fst: &Fst<D>, key: &[u8], mut on_match: impl FnMut(usize, u64)) {
    let mut node = fst.root();
    let mut out = Output::zero();
    for (i, &b) in key.iter().enumerate() {
        if b == b'.' && node.is_final() {
            on_match(i, out.cat(node.final_output()).value());
        }
        let Some(t) = node.find_input(b) else {
            return;
        };
        let t = node.transition(t);
        out = out.cat(t.out);
        node = fst.node(t.addr);
    }
    // The root name (no labels) is not a suffix of anything a list means,
    // even if an empty key were ever stored.
    if !key.is_empty() && node.is_final() {
        on_match(key.len(), out.cat(node.final_output()).value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::tests::{build, hits};

    fn lens(set: &SuffixSet, query: &str) -> Vec<usize> {
        let mut v = Vec::new();
        set.walk(&ReversedName::from_domain(query).unwrap(), |l| v.push(l));
        v
    }

    fn set(domains: &[&str]) -> SuffixSet {
        SuffixSet::new(domains.iter().map(|d| d.to_string()).collect()).unwrap()
    }

    #[test]
    fn only_label_boundaries_match() {
        let set = set(&["bbc.co.uk", "bbcx.co.uk", "b.co.uk"]);
        assert_eq!(lens(&set, "bbc.co.uk"), [9]);
        assert_eq!(lens(&set, "www.bbcx.co.uk"), [10]);
        for miss in [
            "bb.co.uk",
            "bbcxx.co.uk",
            "co.uk",
            "xbbc.co.uk",
            "bbc.co.ukx",
        ] {
            assert!(lens(&set, miss).is_empty(), "{miss}");
        }
    }

    #[test]
    fn reports_least_specific_first() {
        let set = set(&["news.bbc.co.uk", "uk", "bbc.co.uk", "co.uk"]);
        assert_eq!(lens(&set, "a.news.bbc.co.uk"), [2, 5, 9, 14]);
        assert_eq!(lens(&set, "news.bbc.co.uk"), [2, 5, 9, 14]);
    }

    #[test]
    fn empty_lists_match_nothing() {
        let name = ReversedName::from_domain("www.example.com").unwrap();
        let empty = CompiledLists::empty();
        empty.walk(&name, |m| panic!("unexpected match {m:?}"));
        assert_eq!(empty.domain_count(), 0);
        assert!(empty.categories().is_empty());
        // Ids and indices from another generation of lists degrade to "nothing".
        assert_eq!(empty.combination_categories(7), 0);
        assert_eq!(empty.combination_exceptions(7), 0);
        assert_eq!(empty.combination_important(u32::MAX), 0);
        assert!(empty.combination_sources(7).is_empty());
        assert_eq!(empty.combination_entries(7).count(), 0);
        assert_eq!(empty.source(3).name, "unknown");
        let set = SuffixSet::default();
        set.walk(&name, |_| panic!("empty set matched"));
        assert!(set.is_empty());
    }

    #[test]
    fn suffix_set_dedups_and_ignores_blanks() {
        let set = set(&["bbc.co.uk", "", "school.sch.uk", "bbc.co.uk"]);
        assert_eq!(set.len(), 2);
        assert!(lens(&set, "sch.uk").is_empty());
        assert!(lens(&set, ".").is_empty());
        assert_eq!(lens(&set, "x.school.sch.uk"), [13]);
    }

    #[test]
    fn compiled_lists_match_on_label_boundaries_in_order() {
        let body = "bbc.co.uk\nbbcx.co.uk\nuk\nnews.bbc.co.uk\n";
        let (_dir, _, lists) = build(&[("l", "c", ListFormat::Domains, body)]);
        let found = |q: &str| hits(&lists, q).into_iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(
            found("a.news.bbc.co.uk"),
            ["uk", "bbc.co.uk", "news.bbc.co.uk"]
        );
        assert_eq!(found("www.bbcx.co.uk"), ["uk", "bbcx.co.uk"]);
        assert_eq!(found("bbcxx.co.uk"), ["uk"]);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let (dir, out, _) = build(&[("l", "c", ListFormat::Domains, "a.example\nb.example\n")]);
        let good = std::fs::read(&out).unwrap();
        let bad = dir.path().join("bad.bin");
        let open = |bytes: &[u8]| {
            std::fs::write(&bad, bytes).unwrap();
            CompiledLists::open(&bad)
        };
        for cut in [
            0,
            4,
            12,
            20,
            good.len() / 2,
            good.len() - 30,
            good.len() - 1,
        ] {
            assert!(open(&good[..cut]).is_err(), "truncated to {cut}");
        }
        assert!(matches!(
            open(b"LOLIPOP0........"),
            Err(StoreError::NotListsFile { .. })
        ));
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 10] ^= 0xff;
        let err = open(&flipped).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("bad.bin"), "{err}");
        let missing = CompiledLists::open(&dir.path().join("nope.bin"));
        assert!(matches!(missing, Err(StoreError::Open { .. })));
    }

    #[test]
    fn other_format_versions_are_refused_with_a_recompile_message() {
        let (dir, out, _) = build(&[("l", "c", ListFormat::Domains, "a.example\n")]);
        let good = std::fs::read(&out).unwrap();
        let at = good
            .windows(17)
            .position(|w| w == b"format_version\":2")
            .unwrap();
        let path = dir.path().join("other.bin");
        for (digit, found) in [(b'1', 1), (b'9', 9)] {
            let mut other = good.clone();
            other[at + 16] = digit;
            std::fs::write(&path, &other).unwrap();
            let err = CompiledLists::open(&path).unwrap_err();
            assert!(
                matches!(err, StoreError::Version { found: f, expected: 2, .. } if f == found),
                "{err}"
            );
            let msg = err.to_string();
            assert!(msg.contains("Recompile the lists"), "{msg}");
            assert!(msg.contains("other.bin"), "{msg}");
        }
    }
}

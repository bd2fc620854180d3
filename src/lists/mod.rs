//! The compiled lists file: its layout, its manifest, and replacing it
//! atomically. `compile` writes it and `store` reads it only through here.
//!
//! Lists are compiled off the hot path into one file:
//!
//! ```text
//! "LOLIPOP1" | manifest length (u64 LE) | manifest JSON | zero pad to 8 | fst::Map
//! ```
//!
//! Keeping the manifest and the fst in one file means a single rename swaps
//! both consistently; a reader can never see a new fst with an old manifest.
//! The fst maps reversed names (`uk.co.bbc`) to a *combination id*: an index
//! into the manifest's table of distinct source sets, so the many domains
//! shared by the same lists share one small value.

pub mod compile;
pub mod name;
pub mod parse;
pub mod store;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compile::{CompileError, CompileReport, SourceSpec, compile};
pub use name::{NameError, ReversedName, normalise_domain, reverse_domain};
pub use parse::{LineResult, ListFormat, parse_line};
pub use store::{CompiledLists, StoreError, SuffixMatch, SuffixSet};

/// First bytes of every compiled lists file.
pub const MAGIC: &[u8; 8] = b"LOLIPOP1";
/// Bumped whenever the manifest or key layout changes incompatibly, so an
/// old appliance refuses a file it would misread.
pub const FORMAT_VERSION: u32 = 1;
/// A category mask is a u64, one bit per category.
pub const MAX_CATEGORIES: usize = 64;

/// Bytes before the manifest: magic plus its length.
const HEADER_LEN: usize = 16;

/// Everything before the fst: magic, manifest length, manifest, and zero
/// padding so the fst starts on an 8-byte boundary.
pub(crate) fn encode_header(manifest: &Manifest) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(manifest)?;
    let mut out = Vec::with_capacity(HEADER_LEN + json.len() + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(out.len().next_multiple_of(8), 0);
    Ok(out)
}

/// Writes header and fst to `path.tmp`, fsyncs it and renames it over
/// `path`, so a reader mapping the file sees the old file or the new one,
/// whole. `write_fst` streams the fst straight to disk; returns its size.
pub(crate) fn write_lists_file(
    path: &Path,
    manifest: &Manifest,
    write_fst: impl FnOnce(&mut BufWriter<File>) -> Result<(), CompileError>,
) -> Result<u64, CompileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io_err = |error| CompileError::Write {
        path: tmp.clone(),
        error,
    };
    let write = || {
        let header = encode_header(manifest).map_err(|e| io_err(e.into()))?;
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&tmp).map_err(io_err)?);
        out.write_all(&header).map_err(io_err)?;
        write_fst(&mut out)?;
        let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        let total = file.metadata().map_err(io_err)?.len();
        std::fs::rename(&tmp, path).map_err(io_err)?;
        Ok(total.saturating_sub(header.len() as u64))
    };
    let fst_bytes = write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    // Makes the rename itself durable. Some filesystems refuse to fsync a
    // directory; the data is already synced, so that isn't worth failing for.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(fst_bytes)
}

/// Why a header could not be read; the store adds the path.
#[derive(Debug, PartialEq)]
pub(crate) enum HeaderError {
    NotListsFile,
    Corrupt(String),
    Version(u32),
}

/// Reads the manifest from a whole file and says where the fst starts.
pub(crate) fn decode_header(file: &[u8]) -> Result<(Manifest, usize), HeaderError> {
    let corrupt = |d: &str| HeaderError::Corrupt(d.to_owned());
    if file.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(HeaderError::NotListsFile);
    }
    let len_bytes: [u8; 8] = file
        .get(8..HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("file ends inside the header"))?;
    let json_len = usize::try_from(u64::from_le_bytes(len_bytes)).unwrap_or(usize::MAX);
    let json_end = HEADER_LEN.checked_add(json_len);
    let offset = json_end.and_then(|e| e.checked_next_multiple_of(8));
    let (Some(json_end), Some(offset)) = (json_end, offset) else {
        return Err(corrupt("manifest length is impossible"));
    };
    let json = file
        .get(HEADER_LEN..json_end)
        .filter(|_| offset <= file.len())
        .ok_or_else(|| corrupt("file ends inside the manifest"))?;
    // Version first, so a file from a newer release says so instead of
    // failing to parse as if damaged.
    #[derive(Deserialize)]
    struct VersionOnly {
        format_version: u32,
    }
    let unreadable =
        |e: serde_json::Error| HeaderError::Corrupt(format!("manifest unreadable: {e}"));
    let v: VersionOnly = serde_json::from_slice(json).map_err(unreadable)?;
    if v.format_version != FORMAT_VERSION {
        return Err(HeaderError::Version(v.format_version));
    }
    let manifest: Manifest = serde_json::from_slice(json).map_err(unreadable)?;
    manifest.check().map_err(HeaderError::Corrupt)?;
    Ok((manifest, offset))
}

/// `fst::Error`'s own Display says only "FST error" or "I/O error"; the
/// wrapped error is what a technician needs to see.
pub(crate) fn describe_fst_error(e: &fst::Error) -> String {
    match e {
        fst::Error::Fst(inner) => inner.to_string(),
        fst::Error::Io(inner) => inner.to_string(),
    }
}

/// Everything about a compiled file except the domains themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Unix seconds.
    pub compiled_at: u64,
    pub sources: Vec<SourceInfo>,
    /// Bit `i` of a category mask means `categories[i]`.
    pub categories: Vec<String>,
    /// Indexed by combination id (the fst value).
    pub combinations: Vec<Combination>,
    pub domain_count: u64,
}

/// One list as it was compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub path: PathBuf,
    pub category: String,
    pub format: ListFormat,
    /// Distinct domains this source contributed.
    pub entries: u64,
    pub bad_lines: u64,
}

/// A distinct set of sources that share some domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combination {
    /// Sorted indices into [`Manifest::sources`].
    pub sources: Vec<u16>,
    /// Precomputed so the hot path needs one load, not a loop over sources.
    pub categories: u64,
}

impl Manifest {
    pub(crate) fn empty() -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            compiled_at: 0,
            sources: Vec::new(),
            categories: Vec::new(),
            combinations: Vec::new(),
            domain_count: 0,
        }
    }

    /// Checks every cross-reference the store follows, so a damaged or
    /// hand-edited manifest is refused at open instead of misreporting which
    /// list blocked a query.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.categories.len() > MAX_CATEGORIES {
            return Err(format!("{} categories (max 64)", self.categories.len()));
        }
        if self.sources.len() > usize::from(u16::MAX) + 1 {
            return Err(format!("{} sources (max 65536)", self.sources.len()));
        }
        if let Some(s) = self
            .sources
            .iter()
            .find(|s| !self.categories.contains(&s.category))
        {
            return Err(format!(
                "source '{}' has unknown category '{}'",
                s.name, s.category
            ));
        }
        for (id, c) in self.combinations.iter().enumerate() {
            if self.mask_for(&c.sources) != Some(c.categories) {
                return Err(format!("combination {id} does not match its sources"));
            }
        }
        Ok(())
    }

    /// The category mask implied by a set of sources, or `None` if a source
    /// index or category name doesn't resolve.
    pub(crate) fn mask_for(&self, sources: &[u16]) -> Option<u64> {
        let mut mask = 0u64;
        for &s in sources {
            let category = &self.sources.get(usize::from(s))?.category;
            let bit = self.categories.iter().position(|c| c == category)?;
            mask |= 1u64.checked_shl(u32::try_from(bit).ok()?)?;
        }
        Some(mask)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tempfile::TempDir;

    /// Compiles `(name, category, format, body)` lists and opens the result.
    pub(crate) fn build(
        lists: &[(&str, &str, ListFormat, &str)],
    ) -> (TempDir, PathBuf, CompiledLists) {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<SourceSpec> = lists
            .iter()
            .map(|&(name, category, format, body)| {
                let path = dir.path().join(name);
                std::fs::write(&path, body).unwrap();
                SourceSpec {
                    name: name.into(),
                    path,
                    format,
                    category: category.into(),
                }
            })
            .collect();
        let out = dir.path().join("lists.bin");
        compile(&specs, &out).unwrap();
        let lists = CompiledLists::open(&out).unwrap();
        (dir, out, lists)
    }

    /// Matched rule domains, each with the names of the lists holding it.
    pub(crate) fn hits(lists: &CompiledLists, query: &str) -> Vec<(String, Vec<String>)> {
        let name = ReversedName::from_domain(query).unwrap();
        let mut out = Vec::new();
        lists.walk(&name, |m| {
            let srcs = lists.combination_sources(m.combination);
            let names = srcs.iter().map(|&s| lists.source(s).name.clone()).collect();
            out.push((name.suffix_domain(m.key_len), names));
        });
        out
    }

    fn hit(domain: &str, lists: &[&str]) -> (String, Vec<String>) {
        (domain.into(), lists.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn overlapping_sources_share_one_combination() {
        let (_dir, _, lists) = build(&[
            (
                "adult",
                "pornography",
                ListFormat::Domains,
                "example.com\nshared.net\n",
            ),
            (
                "proxies",
                "bypass",
                ListFormat::Hosts,
                "0.0.0.0 shared.net vpn.example.com\n",
            ),
        ]);
        assert_eq!(lists.domain_count(), 3);
        assert_eq!(lists.categories(), ["pornography", "bypass"]);
        assert_eq!(lists.category_bit("bypass"), Some(1));
        assert_eq!(lists.category_bit("gambling"), None);
        assert_eq!(
            hits(&lists, "www.VPN.example.com."),
            [
                hit("example.com", &["adult"]),
                hit("vpn.example.com", &["proxies"])
            ]
        );
        assert_eq!(
            hits(&lists, "cdn.shared.net"),
            [hit("shared.net", &["adult", "proxies"])]
        );
        let mut combination = None;
        lists.walk(&ReversedName::from_domain("shared.net").unwrap(), |m| {
            combination = Some(m.combination)
        });
        assert_eq!(lists.combination_categories(combination.unwrap()), 0b11);
        assert_eq!(lists.manifest().combinations.len(), 3);
        assert!(hits(&lists, "example.org").is_empty());
        assert!(hits(&lists, "com").is_empty());
        assert!(hits(&lists, ".").is_empty());
    }

    #[test]
    fn recompiling_swaps_the_file_under_an_open_reader() {
        let (dir, out, old) = build(&[("a", "ads", ListFormat::Domains, "x.example\n")]);
        let spec = SourceSpec {
            name: "a".into(),
            path: dir.path().join("a"),
            format: ListFormat::Domains,
            category: "ads".into(),
        };
        std::fs::write(&spec.path, "y.example\nz.example\n").unwrap();
        let report = compile(&[spec], &out).unwrap();
        // The rename leaves the old mapping intact for queries in flight.
        assert_eq!(hits(&old, "x.example").len(), 1);
        let new = CompiledLists::open(&out).unwrap();
        assert_eq!((new.domain_count(), report.unique_domains), (2, 2));
        assert!(hits(&new, "x.example").is_empty());
        let bytes = std::fs::read(&out).unwrap();
        let (_, offset) = decode_header(&bytes).unwrap();
        assert_eq!((bytes.len() - offset) as u64, report.fst_bytes);
        assert!(!dir.path().join("lists.bin.tmp").exists());
    }

    #[test]
    fn header_pads_to_eight_and_round_trips() {
        let mut manifest = Manifest::empty();
        for n in 0..9 {
            manifest.categories = vec!["x".repeat(n)];
            let header = encode_header(&manifest).unwrap();
            assert_eq!(header.len() % 8, 0);
            assert_eq!(decode_header(&header), Ok((manifest.clone(), header.len())));
        }
    }

    #[test]
    fn manifest_check_catches_bad_references() {
        let mut manifest = Manifest::empty();
        manifest.categories = vec!["a".into(), "b".into()];
        manifest.sources = vec![SourceInfo {
            name: "s".into(),
            path: PathBuf::new(),
            category: "b".into(),
            format: ListFormat::Domains,
            entries: 1,
            bad_lines: 0,
        }];
        manifest.combinations = vec![Combination {
            sources: vec![0],
            categories: 0b10,
        }];
        assert_eq!(manifest.check(), Ok(()));
        manifest.combinations[0].categories = 0b01;
        assert!(manifest.check().is_err());
        manifest.combinations[0] = Combination {
            sources: vec![1],
            categories: 0,
        };
        assert!(manifest.check().is_err());
        manifest.sources[0].category = "zzz".into();
        assert!(manifest.check().is_err());
    }
}

//! The compiled lists file: its layout, its manifest, and replacing it
//! atomically. `compile` writes it and `store` reads it only through here;
//! `acquire` (downloads and their state) sits above and feeds the compiler.
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
//! into the manifest's table of distinct source sets (with the kind of entry
//! each source has there), so the many domains shared by the same lists
//! share one small value.

pub mod acquire;
pub mod compile;
pub mod parse;
pub mod safeguards;
pub mod store;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ListFormat;

pub use compile::{
    CompileError, CompileReport, MAX_LINE_BYTES, SampleLine, SourceReport, SourceSpec, compile,
};
pub use parse::{EntryKind, EntryKinds, LineParser, LineResult, parse_line};
pub use store::{CompiledLists, StoreError, SuffixMatch, SuffixSet};

/// First bytes of every compiled lists file.
pub const MAGIC: &[u8; 8] = b"LOLIPOP1";
/// Bumped whenever the manifest or key layout changes incompatibly, so an
/// old appliance refuses a file it would misread. Version 2 added entry
/// kinds (exceptions, important blocks) to the combination table.
pub const FORMAT_VERSION: u32 = 2;
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
    let write = || -> Result<u64, CompileError> {
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
    /// Distinct domains this source contributed, of any kind.
    pub entries: u64,
    pub bad_lines: u64,
    /// Lines holding rules of a kind Lollipop cannot apply.
    pub unsupported: u64,
    /// Lines holding rules about web addresses, which DNS cannot enforce.
    pub url_level: u64,
    /// A licensed feed whose entries must never be shown.
    pub hidden: bool,
}

/// A distinct set of sources, and what each says, that share some domains.
/// The masks are precomputed so the hot path needs one load, not a loop
/// over sources; all three concern entries at exactly this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combination {
    /// Sorted, distinct indices into [`Manifest::sources`]: every source
    /// with an entry of any kind here.
    pub sources: Vec<u16>,
    /// The kinds of entry each of `sources` has here, in the same order.
    pub kinds: Vec<EntryKinds>,
    /// Categories with a block (plain or important) here.
    pub categories: u64,
    /// Categories with an exception (allow) here.
    pub exceptions: u64,
    /// Categories with an important block here.
    pub important: u64,
}

/// The three category masks a combination carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Masks {
    pub categories: u64,
    pub exceptions: u64,
    pub important: u64,
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
            let stored = Masks {
                categories: c.categories,
                exceptions: c.exceptions,
                important: c.important,
            };
            let sorted = c.sources.is_sorted_by(|a, b| a < b);
            if !sorted || self.masks_for(&c.sources, &c.kinds) != Some(stored) {
                return Err(format!("combination {id} does not match its sources"));
            }
        }
        Ok(())
    }

    /// The masks implied by sources and their kinds of entry, or `None` if
    /// the two lists differ in length, a kind is empty or unknown, or a
    /// source index or category name doesn't resolve.
    pub(crate) fn masks_for(&self, sources: &[u16], kinds: &[EntryKinds]) -> Option<Masks> {
        if sources.len() != kinds.len() {
            return None;
        }
        let mut masks = Masks::default();
        for (&s, &k) in sources.iter().zip(kinds) {
            if !k.is_valid() {
                return None;
            }
            let category = &self.sources.get(usize::from(s))?.category;
            let bit = self.categories.iter().position(|c| c == category)?;
            let bit = 1u64.checked_shl(u32::try_from(bit).ok()?)?;
            let when = |yes: bool| if yes { bit } else { 0 };
            masks.categories |= when(k.blocks());
            masks.exceptions |= when(k.contains(EntryKind::Allow));
            masks.important |= when(k.contains(EntryKind::Important));
        }
        Some(masks)
    }
}

#[cfg(test)]
pub(crate) mod tests;

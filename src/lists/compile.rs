//! Compiling list files into the single memory-mappable lists file, off the
//! query path.

mod keys;
mod report;
mod runs;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;

use super::parse::{EntryKind, EntryKinds, LineParser, LineResult};
use super::{
    Combination, FORMAT_VERSION, MAX_CATEGORIES, Manifest, SourceInfo, describe_fst_error,
    write_lists_file,
};
use crate::config::ListFormat;
use crate::name::reverse_domain_owned;
use keys::{Combinations, KeyArena, SpillError};
pub use report::{CompileReport, SampleLine, SourceReport};

/// Bad and unsupported lines quoted per source; the counts cover the rest.
const SAMPLES: usize = 5;
/// Quoted lines are cut to this many characters so a binary file mistaken
/// for a list can't flood the report.
const SAMPLE_CHARS: usize = 120;
/// Longest line read. No list format needs more; anything longer is junk,
/// and is skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 4096;

/// One list to compile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub name: String,
    pub path: PathBuf,
    pub format: ListFormat,
    pub category: String,
    /// A licensed feed whose entries must never be shown: the report gives
    /// only counts for it, never quoted lines.
    pub hidden: bool,
}

/// Every message names what failed and what a technician should do.
#[derive(Debug, Error)]
pub enum CompileError {
    #[error("cannot read list '{source_name}' ({path}): {error}. Check the path and permissions.")]
    SourceRead {
        source_name: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("list '{source_name}' has no category. Give it one in the configuration.")]
    EmptyCategory { source_name: String },
    #[error("{count} categories configured; at most 64 are supported. Merge or remove some.")]
    TooManyCategories { count: usize },
    #[error("{count} lists configured; at most 65536 are supported. Remove some.")]
    TooManySources { count: usize },
    #[error("the lists hold over 4 GiB of domain names, too many to compile. Remove some lists.")]
    TooLarge,
    #[error("cannot write {path}: {error}. Check the directory is writable and the disk not full.")]
    Write { path: PathBuf, error: io::Error },
    #[error("building the index in {path} failed: {detail}. Check the disk is not full.")]
    Index { path: PathBuf, detail: String },
    #[error(
        "cannot use {path} while sorting the lists: {error}. Check the directory is writable \
         and the disk not full."
    )]
    Sorting { path: PathBuf, error: io::Error },
}

impl From<SpillError> for CompileError {
    fn from(e: SpillError) -> CompileError {
        CompileError::Sorting {
            path: e.path,
            error: e.error,
        }
    }
}

/// Bytes of domain names sorted in memory at once; longer lists are sorted
/// in runs of this size on disk and merged. About 650,000 names: with the
/// rest of a compile this keeps 2,000,000 names well under 64 MB.
pub const SORT_BUDGET: usize = 16 << 20;

/// Compiles `sources` into `out_file`, replacing it atomically. Bad and
/// unsupported lines are counted and sampled in the report; unreadable
/// sources are errors.
pub fn compile(sources: &[SourceSpec], out_file: &Path) -> Result<CompileReport, CompileError> {
    compile_within(sources, out_file, SORT_BUDGET)
}

/// [`compile`], sorting at most `budget` bytes of names in memory at once.
pub fn compile_within(
    sources: &[SourceSpec],
    out_file: &Path,
    budget: usize,
) -> Result<CompileReport, CompileError> {
    let started = Instant::now();
    let categories = collect_categories(sources)?;

    let mut arena = KeyArena::spilling(out_file, budget);
    let mut reports = Vec::with_capacity(sources.len());
    for (idx, spec) in sources.iter().enumerate() {
        let idx = u16::try_from(idx).map_err(|_| CompileError::TooManySources {
            count: sources.len(),
        })?;
        reports.push(read_source(spec, idx, &mut arena)?);
    }
    if arena.overflowed {
        return Err(CompileError::TooLarge);
    }
    arena.sort();
    if let Some(error) = arena.spill_error.take() {
        return Err(error.into());
    }

    // Pass 1 finds the combination table and counts, which the manifest (and
    // so the file header) needs before the fst can be streamed out in pass 2.
    let mut combos = Combinations::default();
    let mut unique: u64 = 0;
    arena.for_each_group(|_, entries| {
        unique += 1;
        for &(s, kinds) in entries {
            if let Some(r) = reports.get_mut(usize::from(s)) {
                r.info.entries += 1;
                r.exceptions += u64::from(kinds.contains(EntryKind::Allow));
                r.important += u64::from(kinds.contains(EntryKind::Important));
            }
        }
        combos.id(entries);
        Ok::<(), CompileError>(())
    })?;

    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        compiled_at: crate::clock::now_unix_secs(),
        sources: reports.iter().map(|r| r.info.clone()).collect(),
        categories,
        combinations: Vec::new(),
        domain_count: unique,
    };
    let combinations: Vec<Combination> = combos
        .table
        .iter()
        .map(|entries| {
            let sources: Vec<u16> = entries.iter().map(|e| e.0).collect();
            let kinds: Vec<EntryKinds> = entries.iter().map(|e| e.1).collect();
            // Every source and category was collected above, so this only
            // falls back for a table that can't happen.
            let masks = manifest.masks_for(&sources, &kinds).unwrap_or_default();
            Combination {
                sources,
                kinds,
                categories: masks.categories,
                exceptions: masks.exceptions,
                important: masks.important,
            }
        })
        .collect();
    manifest.combinations = combinations;

    let fst_bytes = write_lists_file(out_file, &manifest, |out| {
        let index_err = |e: fst::Error| CompileError::Index {
            path: out_file.to_path_buf(),
            detail: describe_fst_error(&e),
        };
        let mut builder = fst::MapBuilder::new(out).map_err(index_err)?;
        arena.for_each_group::<CompileError>(|key, entries| {
            builder
                .insert(key, u64::from(combos.id(entries)))
                .map_err(index_err)
        })?;
        builder.finish().map_err(index_err)
    })?;
    Ok(CompileReport {
        output: out_file.to_path_buf(),
        sources: reports,
        unique_domains: unique,
        combinations: combos.table.len(),
        fst_bytes,
        bytes_per_domain: fst_bytes as f64 / unique.max(1) as f64,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn collect_categories(sources: &[SourceSpec]) -> Result<Vec<String>, CompileError> {
    let mut categories: Vec<String> = Vec::new();
    for spec in sources {
        if spec.category.trim().is_empty() {
            return Err(CompileError::EmptyCategory {
                source_name: spec.name.clone(),
            });
        }
        if !categories.contains(&spec.category) {
            categories.push(spec.category.clone());
        }
    }
    if categories.len() > MAX_CATEGORIES {
        return Err(CompileError::TooManyCategories {
            count: categories.len(),
        });
    }
    Ok(categories)
}

/// Reads the next line into `buf`, without its line ending. Holds at most
/// `MAX_LINE_BYTES` and a CRLF; the rest of a longer line is skipped.
/// Returns `None` at the end of the file, else whether the line was too long.
fn read_line_capped(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    const LIMIT: u64 = MAX_LINE_BYTES as u64 + 2;
    buf.clear();
    if reader.by_ref().take(LIMIT).read_until(b'\n', buf)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() as u64 == LIMIT {
        reader.skip_until(b'\n')?;
    }
    Ok(Some(buf.len() > MAX_LINE_BYTES))
}

/// What one line produced, gathered so each line lands in one count.
#[derive(Default)]
struct LineOutcome {
    bad: Vec<String>,
    unsupported: Vec<String>,
    url_level: bool,
    entries: bool,
}

impl LineOutcome {
    fn clear(&mut self) {
        self.bad.clear();
        self.unsupported.clear();
        (self.url_level, self.entries) = (false, false);
    }

    /// Adds line `raw` to one of the report's line counts, the worst that
    /// applies, and quotes it if it's among the first bad or unsupported.
    fn tally(&self, report: &mut SourceReport, raw: &[u8]) {
        let info = &mut report.info;
        let (samples, reasons) = if !self.bad.is_empty() {
            info.bad_lines += 1;
            (&mut report.bad_samples, &self.bad)
        } else if !self.unsupported.is_empty() {
            info.unsupported += 1;
            (&mut report.unsupported_samples, &self.unsupported)
        } else {
            info.url_level += u64::from(self.url_level);
            report.skipped_lines += u64::from(!self.url_level && !self.entries);
            return;
        };
        // Quoting a hidden list's lines would show its entries.
        if !info.hidden && samples.len() < SAMPLES {
            let text = String::from_utf8_lossy(raw);
            samples.push(SampleLine {
                line: report.lines,
                text: text.trim().chars().take(SAMPLE_CHARS).collect(),
                reason: reasons.join("; "),
            });
        }
    }
}

fn read_source(
    spec: &SourceSpec,
    idx: u16,
    arena: &mut KeyArena,
) -> Result<SourceReport, CompileError> {
    let read_err = |error| CompileError::SourceRead {
        source_name: spec.name.clone(),
        path: spec.path.clone(),
        error,
    };
    let file = File::open(&spec.path).map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut report = SourceReport {
        info: SourceInfo {
            name: spec.name.clone(),
            path: spec.path.clone(),
            category: spec.category.clone(),
            format: spec.format,
            entries: 0,
            bad_lines: 0,
            unsupported: 0,
            url_level: 0,
            hidden: spec.hidden,
        },
        lines: 0,
        skipped_lines: 0,
        exceptions: 0,
        important: 0,
        bad_samples: Vec::new(),
        unsupported_samples: Vec::new(),
    };
    let mut parser = LineParser::new(spec.format);
    let mut raw = Vec::new();
    let mut out = LineOutcome::default();
    // Bytes, not `read_line`: one stray Latin-1 comment must cost a bad
    // line, not the whole list.
    while let Some(too_long) = read_line_capped(&mut reader, &mut raw).map_err(read_err)? {
        report.lines += 1;
        out.clear();
        if too_long {
            out.bad.push(format!(
                "the line is longer than {MAX_LINE_BYTES} bytes; no list entry is"
            ));
        } else if let Ok(line) = std::str::from_utf8(&raw) {
            parser.parse_line(line, |r| match r {
                LineResult::Entry { domain, kind } => {
                    out.entries = true;
                    arena.push(reverse_domain_owned(domain).as_bytes(), idx, kind);
                }
                LineResult::Bad(reason) => out.bad.push(reason),
                LineResult::Unsupported(reason) => out.unsupported.push(reason),
                LineResult::UrlLevel => out.url_level = true,
                LineResult::Skip => {}
            });
        } else {
            out.bad.push("the line is not valid UTF-8 text".into());
        }
        out.tally(&mut report, &raw);
    }
    Ok(report)
}

#[cfg(test)]
mod tests;

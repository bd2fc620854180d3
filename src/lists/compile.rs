//! Compiling list files into the single memory-mappable lists file, off the
//! query path.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use super::name::reverse_domain_owned;
use super::parse::{LineResult, ListFormat, parse_line};
use super::{
    Combination, FORMAT_VERSION, MAX_CATEGORIES, Manifest, SourceInfo, describe_fst_error,
    write_lists_file,
};

/// Bad lines quoted per source; the count covers the rest.
const BAD_SAMPLES: usize = 5;
/// Quoted bad lines are cut to this many characters so a binary file
/// mistaken for a list can't flood the report.
const SAMPLE_CHARS: usize = 120;

/// One list to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub name: String,
    pub path: PathBuf,
    pub format: ListFormat,
    pub category: String,
}

/// What a compile did, for logs and the admin UI.
#[derive(Debug, Clone, Serialize)]
pub struct CompileReport {
    pub output: PathBuf,
    pub sources: Vec<SourceReport>,
    pub unique_domains: u64,
    pub combinations: usize,
    pub fst_bytes: u64,
    pub bytes_per_domain: f64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// As recorded in the manifest; `entries` counts distinct domains.
    #[serde(flatten)]
    pub info: SourceInfo,
    pub lines: u64,
    pub bad_samples: Vec<BadLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based.
    pub line: u64,
    pub text: String,
    pub reason: String,
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
}

/// All keys in one buffer with small fixed-size records pointing into it:
/// about 8 bytes of overhead per domain instead of the ~40 a `String` costs,
/// which keeps a 5M-domain compile well inside a small appliance's memory.
#[derive(Default)]
struct KeyArena {
    bytes: Vec<u8>,
    entries: Vec<KeyRef>,
    /// Set instead of failing each push, so parsing stays a plain loop.
    overflowed: bool,
}

#[derive(Clone, Copy)]
struct KeyRef {
    start: u32,
    len: u8,
    source: u16,
}

fn key_of<'a>(bytes: &'a [u8], e: &KeyRef) -> &'a [u8] {
    &bytes[e.start as usize..e.start as usize + usize::from(e.len)]
}

impl KeyArena {
    fn push(&mut self, key: &[u8], source: u16) {
        // Normalised names are at most 253 bytes, so only the total can
        // overflow in practice.
        let (Ok(start), Ok(len)) = (u32::try_from(self.bytes.len()), u8::try_from(key.len()))
        else {
            self.overflowed = true;
            return;
        };
        self.bytes.extend_from_slice(key);
        self.entries.push(KeyRef { start, len, source });
    }

    fn sort(&mut self) {
        let bytes = &self.bytes;
        self.entries.sort_unstable_by(|a, b| {
            key_of(bytes, a)
                .cmp(key_of(bytes, b))
                .then(a.source.cmp(&b.source))
        });
    }

    /// Calls `f` once per distinct key, in order, with its sorted, deduplicated
    /// sources. Requires `sort` first.
    fn for_each_group<E>(
        &self,
        mut f: impl FnMut(&[u8], &[u16]) -> Result<(), E>,
    ) -> Result<(), E> {
        let same_key = |a: &KeyRef, b: &KeyRef| key_of(&self.bytes, a) == key_of(&self.bytes, b);
        let mut sources = Vec::new();
        for group in self.entries.chunk_by(same_key) {
            sources.clear();
            // Sorted by (key, source), so equal sources are adjacent.
            sources.extend(group.iter().map(|e| e.source));
            sources.dedup();
            // `chunk_by` never yields an empty group.
            f(key_of(&self.bytes, &group[0]), &sources)?;
        }
        Ok(())
    }
}

/// Assigns ids to distinct source sets, in order of first appearance.
#[derive(Default)]
struct Combinations {
    ids: HashMap<Vec<u16>, u32>,
    table: Vec<Vec<u16>>,
}

impl Combinations {
    fn id(&mut self, sources: &[u16]) -> u32 {
        if let Some(&id) = self.ids.get(sources) {
            return id;
        }
        // Distinct sets can't outnumber keys, and a u32 count of keys is far
        // beyond anything `KeyArena` accepts.
        let id = self.table.len() as u32;
        self.ids.insert(sources.to_vec(), id);
        self.table.push(sources.to_vec());
        id
    }
}

/// Compiles `sources` into `out_file`, replacing it atomically. Bad lines are
/// counted and sampled in the report; unreadable sources are errors.
pub fn compile(sources: &[SourceSpec], out_file: &Path) -> Result<CompileReport, CompileError> {
    let started = Instant::now();
    let categories = collect_categories(sources)?;

    let mut arena = KeyArena::default();
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

    // Pass 1 finds the combination table and counts, which the manifest (and
    // so the file header) needs before the fst can be streamed out in pass 2.
    let mut combos = Combinations::default();
    let mut unique: u64 = 0;
    arena.for_each_group(|_, srcs| {
        unique += 1;
        for &s in srcs {
            if let Some(r) = reports.get_mut(usize::from(s)) {
                r.info.entries += 1;
            }
        }
        combos.id(srcs);
        Ok::<(), CompileError>(())
    })?;

    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        compiled_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        sources: reports.iter().map(|r| r.info.clone()).collect(),
        categories,
        combinations: Vec::new(),
        domain_count: unique,
    };
    let combinations = combos.table.iter().map(|srcs| Combination {
        sources: srcs.clone(),
        categories: manifest.mask_for(srcs).unwrap_or(0),
    });
    manifest.combinations = combinations.collect();

    let fst_bytes = write_lists_file(out_file, &manifest, |out| {
        let index_err = |e: fst::Error| CompileError::Index {
            path: out_file.to_path_buf(),
            detail: describe_fst_error(&e),
        };
        let mut builder = fst::MapBuilder::new(out).map_err(index_err)?;
        arena
            .for_each_group(|key, srcs| builder.insert(key, u64::from(combos.id(srcs))))
            .map_err(index_err)?;
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
        },
        lines: 0,
        bad_samples: Vec::new(),
    };
    let mut raw = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    loop {
        raw.clear();
        // Bytes, not `read_line`: one stray Latin-1 comment must cost a bad
        // line, not the whole list.
        if reader.read_until(b'\n', &mut raw).map_err(read_err)? == 0 {
            break;
        }
        report.lines += 1;
        reasons.clear();
        match std::str::from_utf8(&raw) {
            Ok(line) => parse_line(spec.format, line, |r| match r {
                LineResult::Entry(d) => arena.push(reverse_domain_owned(d).as_bytes(), idx),
                LineResult::Bad(reason) => reasons.push(reason),
                LineResult::Skip => {}
            }),
            Err(_) => reasons.push("the line is not valid UTF-8 text".into()),
        }
        if !reasons.is_empty() {
            report.info.bad_lines += 1;
            if report.bad_samples.len() < BAD_SAMPLES {
                let text = String::from_utf8_lossy(&raw);
                report.bad_samples.push(BadLine {
                    line: report.lines,
                    text: text.trim_end().chars().take(SAMPLE_CHARS).collect(),
                    reason: reasons.join("; "),
                });
            }
        }
    }
    Ok(report)
}

impl fmt::Display for CompileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Compiled {} unique domains from {} lists into {} ({:.1} MB, {:.1} bytes per domain) in {:.2} s.",
            self.unique_domains,
            self.sources.len(),
            self.output.display(),
            self.fst_bytes as f64 / 1_000_000.0,
            self.bytes_per_domain,
            self.elapsed_ms as f64 / 1000.0,
        )?;
        for s in &self.sources {
            let i = &s.info;
            write!(f, "  {} [{}]: {} domains", i.name, i.category, i.entries)?;
            if i.bad_lines > 0 {
                write!(f, ", {} unusable lines (skipped)", i.bad_lines)?;
            }
            writeln!(f)?;
            for bad in &s.bad_samples {
                writeln!(f, "    line {}: {:?} - {}", bad.line, bad.text, bad.reason)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, format: ListFormat, body: &[u8]) -> SourceSpec {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let (name, category) = (name.into(), "ads".into());
        SourceSpec {
            name,
            path,
            format,
            category,
        }
    }

    #[test]
    fn counts_merges_and_samples_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = b"\xEF\xBB\xBFone.example\r\nONE.example.\r\n# c\r\n".to_vec();
        for i in 0..7 {
            body.extend_from_slice(format!("bad{i}..example\n").as_bytes());
        }
        body.extend_from_slice(b"caf\xE9.example\ntwo.example\n");
        let a = spec(dir.path(), "a", ListFormat::Domains, &body);
        let hosts = b"0.0.0.0 two.example three.example\n";
        let b = spec(dir.path(), "b", ListFormat::Hosts, hosts);
        let report = compile(&[a, b], &dir.path().join("lists.bin")).unwrap();

        let ra = &report.sources[0];
        assert_eq!((ra.lines, ra.info.entries, ra.info.bad_lines), (12, 2, 8));
        assert_eq!(ra.bad_samples.len(), BAD_SAMPLES);
        let first = &ra.bad_samples[0];
        assert_eq!((first.line, first.text.as_str()), (4, "bad0..example"));
        assert!(first.reason.contains("empty label"));
        assert_eq!(report.sources[1].info.entries, 2);
        assert_eq!(report.unique_domains, 3);
        // {a}, {a,b}, {b}: two.example is in both.
        assert_eq!(report.combinations, 3);
        let text = report.to_string();
        assert!(text.contains("3 unique domains"), "{text}");
        assert!(text.contains("8 unusable lines"), "{text}");
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"bad_samples\""));
    }

    #[test]
    fn missing_source_names_path_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut missing = spec(dir.path(), "ut1-adult", ListFormat::Domains, b"");
        missing.path = dir.path().join("nope.txt");
        let out = dir.path().join("lists.bin");
        let msg = compile(&[missing], &out).unwrap_err().to_string();
        assert!(msg.contains("ut1-adult"), "{msg}");
        assert!(msg.contains("nope.txt"), "{msg}");
        assert!(!out.exists());
    }

    #[test]
    fn rejects_too_many_or_empty_categories() {
        let dir = tempfile::tempdir().unwrap();
        let base = spec(dir.path(), "l", ListFormat::Domains, b"");
        let mut specs: Vec<SourceSpec> = (0..65)
            .map(|i| SourceSpec {
                category: format!("c{i}"),
                ..base.clone()
            })
            .collect();
        let out = dir.path().join("lists.bin");
        let err = compile(&specs, &out).unwrap_err();
        assert!(matches!(err, CompileError::TooManyCategories { count: 65 }));
        specs.truncate(64);
        assert_eq!(compile(&specs, &out).unwrap().unique_domains, 0);
        specs[0].category = " ".into();
        let err = compile(&specs, &out).unwrap_err();
        assert!(matches!(err, CompileError::EmptyCategory { .. }));
    }
}

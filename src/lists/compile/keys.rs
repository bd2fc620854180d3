//! Holding every parsed entry compactly until it is sorted into the fst,
//! and numbering the distinct (source, kind) sets that keys share.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::runs::{RunEntry, RunReader, SpillDir, smallest, write_run};
use crate::lists::parse::{EntryKind, EntryKinds};

/// All keys in one buffer with small fixed-size records pointing into it:
/// 8 bytes of overhead per entry instead of the ~40 a `String` costs. Past
/// `budget` bytes of keys the buffer is sorted and written out as a run
/// and the merge of the runs gives the groups, so a compile's memory stays
/// bounded however long the lists (a Pi Zero 2 has 512 MB in all).
pub(super) struct KeyArena {
    bytes: Vec<u8>,
    entries: Vec<KeyRef>,
    /// Set instead of failing each push, so parsing stays a plain loop.
    pub(super) overflowed: bool,
    budget: usize,
    spill: Option<SpillDir>,
    runs: Vec<PathBuf>,
    /// The first run that could not be written; nothing more is kept.
    pub(super) spill_error: Option<SpillError>,
}

impl Default for KeyArena {
    /// Everything in memory, however much.
    fn default() -> KeyArena {
        KeyArena {
            bytes: Vec::new(),
            entries: Vec::new(),
            overflowed: false,
            budget: usize::MAX,
            spill: None,
            runs: Vec::new(),
            spill_error: None,
        }
    }
}

/// A run of sorted keys that could not be written or read back.
#[derive(Debug)]
pub(super) struct SpillError {
    pub(super) path: PathBuf,
    pub(super) error: io::Error,
}

/// `kind` fits in what would otherwise be padding.
#[derive(Clone, Copy)]
struct KeyRef {
    start: u32,
    source: u16,
    len: u8,
    kind: u8,
}

const _: () = assert!(size_of::<KeyRef>() == 8);

fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Block => 0,
        EntryKind::Allow => 1,
        EntryKind::Important => 2,
    }
}

fn kind_of(code: u8) -> EntryKind {
    match code {
        1 => EntryKind::Allow,
        2 => EntryKind::Important,
        _ => EntryKind::Block,
    }
}

fn key_of<'a>(bytes: &'a [u8], e: &KeyRef) -> &'a [u8] {
    &bytes[e.start as usize..e.start as usize + usize::from(e.len)]
}

/// One source's entries at one key.
pub(super) type SourceKinds = (u16, EntryKinds);

impl KeyArena {
    /// Keeps at most `budget` bytes of keys in memory, writing sorted runs
    /// beside `out_file` past that.
    pub(super) fn spilling(out_file: &Path, budget: usize) -> KeyArena {
        KeyArena {
            budget,
            spill: Some(SpillDir::beside(out_file)),
            ..KeyArena::default()
        }
    }

    pub(super) fn push(&mut self, key: &[u8], source: u16, kind: EntryKind) {
        if self.spill_error.is_some() {
            return;
        }
        if self.bytes.len() + key.len() > self.budget && !self.entries.is_empty() {
            self.write_run();
        }
        // Normalised names are at most 253 bytes, so only the total can
        // overflow in practice.
        let (Ok(start), Ok(len)) = (u32::try_from(self.bytes.len()), u8::try_from(key.len()))
        else {
            self.overflowed = true;
            return;
        };
        self.bytes.extend_from_slice(key);
        self.entries.push(KeyRef {
            start,
            source,
            len,
            kind: kind_code(kind),
        });
    }

    fn sort_in_memory(&mut self) {
        let bytes = &self.bytes;
        self.entries.sort_unstable_by(|a, b| {
            key_of(bytes, a)
                .cmp(key_of(bytes, b))
                .then(a.source.cmp(&b.source))
        });
    }

    /// Sorts what is in memory into a new run on disk and empties memory
    /// for the next.
    fn write_run(&mut self) {
        if self.spill.is_none() {
            return;
        }
        self.sort_in_memory();
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        let path = spill.run_path(self.runs.len());
        let bytes = &self.bytes;
        let entries = self.entries.iter().map(|e| RunEntry {
            key: key_of(bytes, e),
            source: e.source,
            kind: e.kind,
        });
        match spill.make().and_then(|()| write_run(&path, entries)) {
            Ok(()) => self.runs.push(path),
            Err(error) => self.spill_error = Some(SpillError { path, error }),
        }
        self.bytes.clear();
        self.entries.clear();
    }

    /// Ends the reading: sorts in memory, or writes the last run and frees
    /// the memory before the merge.
    pub(super) fn sort(&mut self) {
        if self.runs.is_empty() {
            self.sort_in_memory();
            return;
        }
        if !self.entries.is_empty() {
            self.write_run();
        }
        self.bytes = Vec::new();
        self.entries = Vec::new();
    }

    /// Calls `f` once per distinct key, in order, with each source holding
    /// it and the kinds of entry that source has there, sorted by source.
    /// Requires `sort` first.
    pub(super) fn for_each_group<E: From<SpillError>>(
        &self,
        mut f: impl FnMut(&[u8], &[SourceKinds]) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.runs.is_empty() {
            return self.merge_runs(f);
        }
        let same_key = |a: &KeyRef, b: &KeyRef| key_of(&self.bytes, a) == key_of(&self.bytes, b);
        let mut merged: Vec<SourceKinds> = Vec::new();
        for group in self.entries.chunk_by(same_key) {
            merged.clear();
            // Sorted by (key, source), so one source's entries are adjacent.
            for e in group {
                let kind = kind_of(e.kind);
                match merged.last_mut() {
                    Some((s, kinds)) if *s == e.source => *kinds = kinds.with(kind),
                    _ => merged.push((e.source, EntryKinds::only(kind))),
                }
            }
            // `chunk_by` never yields an empty group.
            f(key_of(&self.bytes, &group[0]), &merged)?;
        }
        Ok(())
    }

    /// [`KeyArena::for_each_group`] over the runs on disk, read together
    /// in order.
    fn merge_runs<E: From<SpillError>>(
        &self,
        mut f: impl FnMut(&[u8], &[SourceKinds]) -> Result<(), E>,
    ) -> Result<(), E> {
        let failed = |path: &PathBuf| {
            let path = path.clone();
            move |error| SpillError { path, error }
        };
        let mut runs = Vec::with_capacity(self.runs.len());
        for path in &self.runs {
            runs.push(RunReader::open(path).map_err(failed(path))?);
        }
        let mut key: Vec<u8> = Vec::with_capacity(256);
        let mut merged: Vec<SourceKinds> = Vec::new();
        while let Some(i) = smallest(&runs) {
            let run = &mut runs[i];
            if run.key != key && !merged.is_empty() {
                f(&key, &merged)?;
                merged.clear();
            }
            if merged.is_empty() {
                key.clone_from(&run.key);
            }
            // Sorted by (key, source) across the runs too.
            let kind = kind_of(run.kind);
            match merged.last_mut() {
                Some((s, kinds)) if *s == run.source => *kinds = kinds.with(kind),
                _ => merged.push((run.source, EntryKinds::only(kind))),
            }
            run.advance().map_err(failed(&self.runs[i]))?;
        }
        if !merged.is_empty() {
            f(&key, &merged)?;
        }
        Ok(())
    }
}

/// Assigns ids to distinct (source, kinds) sets, in order of first
/// appearance.
#[derive(Default)]
pub(super) struct Combinations {
    ids: HashMap<Vec<SourceKinds>, u32>,
    pub(super) table: Vec<Vec<SourceKinds>>,
}

impl Combinations {
    pub(super) fn id(&mut self, entries: &[SourceKinds]) -> u32 {
        if let Some(&id) = self.ids.get(entries) {
            return id;
        }
        // Distinct sets can't outnumber keys, and a u32 count of keys is far
        // beyond anything `KeyArena` accepts.
        let id = self.table.len() as u32;
        self.ids.insert(entries.to_vec(), id);
        self.table.push(entries.to_vec());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_merge_kinds_per_source() {
        let mut arena = KeyArena::default();
        arena.push(b"com.b", 1, EntryKind::Allow);
        arena.push(b"com.a", 0, EntryKind::Block);
        arena.push(b"com.b", 0, EntryKind::Block);
        arena.push(b"com.b", 1, EntryKind::Important);
        arena.push(b"com.b", 0, EntryKind::Block);
        arena.sort();
        let mut seen = Vec::new();
        arena
            .for_each_group(|key, entries| {
                seen.push((key.to_vec(), entries.to_vec()));
                Ok::<(), SpillError>(())
            })
            .unwrap();
        let kinds = |k: &[EntryKind]| k.iter().fold(EntryKinds::default(), |a, &k| a.with(k));
        assert_eq!(
            seen,
            [
                (b"com.a".to_vec(), vec![(0, kinds(&[EntryKind::Block]))]),
                (
                    b"com.b".to_vec(),
                    vec![
                        (0, kinds(&[EntryKind::Block])),
                        (1, kinds(&[EntryKind::Allow, EntryKind::Important]))
                    ]
                ),
            ]
        );
        let mut combos = Combinations::default();
        let a = combos.id(&seen[0].1);
        let b = combos.id(&seen[1].1);
        assert_eq!((a, b, combos.id(&seen[0].1)), (0, 1, 0));
    }
}

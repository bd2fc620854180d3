//! Holding every parsed entry compactly until it is sorted into the fst,
//! and numbering the distinct (source, kind) sets that keys share.

use std::collections::HashMap;

use crate::lists::parse::{EntryKind, EntryKinds};

/// All keys in one buffer with small fixed-size records pointing into it:
/// 8 bytes of overhead per entry instead of the ~40 a `String` costs, which
/// keeps a 5M-domain compile well inside a small appliance's memory.
#[derive(Default)]
pub(super) struct KeyArena {
    bytes: Vec<u8>,
    entries: Vec<KeyRef>,
    /// Set instead of failing each push, so parsing stays a plain loop.
    pub(super) overflowed: bool,
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
    pub(super) fn push(&mut self, key: &[u8], source: u16, kind: EntryKind) {
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

    pub(super) fn sort(&mut self) {
        let bytes = &self.bytes;
        self.entries.sort_unstable_by(|a, b| {
            key_of(bytes, a)
                .cmp(key_of(bytes, b))
                .then(a.source.cmp(&b.source))
        });
    }

    /// Calls `f` once per distinct key, in order, with each source holding
    /// it and the kinds of entry that source has there, sorted by source.
    /// Requires `sort` first.
    pub(super) fn for_each_group<E>(
        &self,
        mut f: impl FnMut(&[u8], &[SourceKinds]) -> Result<(), E>,
    ) -> Result<(), E> {
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
                Ok::<(), ()>(())
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

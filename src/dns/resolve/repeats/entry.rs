//! One answer as the repeated-question stage keeps it: the response's bytes
//! after its ID, the bytes of the query the response does not repeat, where
//! its TTLs are and what the block log needs that the question does not
//! already say, in one allocation beside a few lengths.
//!
//! What is not stored because it can be had otherwise:
//! - the query's question: the response carries it, byte for byte (checked
//!   when the answer is kept);
//! - a blocked name's text and type: read from the question, unless the
//!   name is not plain (then its text is stored);
//! - a list hit's rule: the end of the name, from the label it starts at;
//! - the explanation of a block: one, without the rule, shared by the
//!   answers of every name it blocks.

use std::sync::Arc;
use std::time::Instant;

use hickory_resolver::proto::rr::RecordType;

use crate::journal::Folds;
use crate::policy::Explanation;
use crate::policy::clients::ProfileId;

use super::super::cache::KeptLease;
use super::{BlockedLookup, BlockedRepeat, MAX_RESPONSE, RepeatKey};

/// A query's bytes after its ID up to its question: flags and counts.
const QUERY_HEAD: usize = 10;
/// The `listener` of a question that came on none (a test's).
const NO_LISTENER: u16 = u16::MAX;

/// Where a blocked answer's rule (the log's rule column) comes from, in
/// two bytes: none; the name's text from a byte on (a list hit on the name
/// or one of its parents); or stored after the name's text, so long.
#[derive(Clone, Copy)]
struct Rule(u16);

impl Rule {
    const NONE: Rule = Rule(0);
    const STORED: u16 = 0x8000;

    fn name_from(at: usize) -> Option<Rule> {
        u16::try_from(at + 1)
            .ok()
            .filter(|&v| v < Rule::STORED)
            .map(Rule)
    }

    fn stored(len: usize) -> Option<Rule> {
        u16::try_from(len)
            .ok()
            .filter(|&v| v < Rule::STORED)
            .map(|v| Rule(v | Rule::STORED))
    }

    /// Where the name's text the rule is starts, if it is one.
    fn in_name(self) -> Option<usize> {
        (self.0 != 0 && self.0 & Rule::STORED == 0).then(|| usize::from(self.0 - 1))
    }

    /// How long the stored rule is, if it is stored.
    fn stored_len(self) -> Option<usize> {
        (self.0 & Rule::STORED != 0).then(|| usize::from(self.0 & !Rule::STORED))
    }
}

pub(super) struct Entry {
    pub hash: u64,
    /// The response after its ID; the query's head; the query after its
    /// question; the TTLs' places (2 bytes each); the name's text, if
    /// stored; the rule, if stored.
    bytes: Box<[u8]>,
    pub generation: u64,
    pub lease: Option<KeptLease>,
    /// For a blocked answer, its explanation without the rule.
    pub blocked: Option<Arc<Explanation>>,
    /// For a blocked answer, each client's repeats of it, counted for the
    /// block log.
    folds: Option<Folds>,
    /// Passes of the store's hand it outlasts: one for a new answer, one
    /// more for each time it is asked again, up to [`MAX_CREDIT`].
    pub credit: u8,
    listener: u16,
    profile: u8,
    ttl_count: u8,
    response_len: u16,
    question_len: u16,
    tail_len: u16,
    /// The name's text, when it is stored (0: read from the question).
    name_len: u16,
    rule: Rule,
}

/// The most hits an entry saves up against the store's hand.
pub(super) const MAX_CREDIT: u8 = 3;

/// What an entry takes from the allocator besides its slot: its bytes'
/// allocation, rounded up to the allocator's size class (mimalloc's: 8
/// bytes apart up to 64, then four classes to each doubling).
pub(super) fn allocation_size(len: usize) -> usize {
    if len <= 64 {
        return len.next_multiple_of(8);
    }
    let step = 1usize << (usize::BITS - 1 - len.leading_zeros() - 2);
    len.next_multiple_of(step)
}

/// The length of the question at the start of `bytes` (its name and the
/// type and class); None if it is not a plain uncompressed name.
fn question_length(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let length = usize::from(*bytes.get(at)?);
        if length == 0 {
            break;
        }
        if length & 0xC0 != 0 {
            return None;
        }
        at += 1 + length;
    }
    let end = at + 1 + 4;
    (end <= bytes.len()).then_some(end)
}

/// The name at the start of `question` as the block log writes it, when
/// every label is plain (letters, digits, `_`, `-` not first): the labels
/// as they are, joined by dots. None otherwise (and for the root).
fn plain_name(question: &[u8]) -> Option<String> {
    let mut text = Vec::with_capacity(question.len());
    let mut at = 0;
    loop {
        let length = usize::from(*question.get(at)?);
        if length == 0 {
            break;
        }
        let label = question.get(at + 1..at + 1 + length)?;
        let plain = label.iter().enumerate().all(|(i, &byte)| {
            byte.is_ascii_alphanumeric() || byte == b'_' || (byte == b'-' && i > 0)
        });
        if !plain {
            return None;
        }
        if at > 0 {
            text.push(b'.');
        }
        text.extend_from_slice(label);
        at += 1 + length;
    }
    if text.is_empty() {
        return None;
    }
    String::from_utf8(text).ok()
}

/// The name at the start of `question`, whose labels [`plain_name`]
/// found plain when the answer was kept: its bytes, each label's length
/// made a dot.
#[inline]
fn checked_plain_name(question: &[u8]) -> Option<String> {
    let name_len = question.len().checked_sub(5)?;
    let mut text = question.get(1..name_len)?.to_vec();
    let mut at = usize::from(*question.first()?);
    while at < text.len() {
        let length = usize::from(text[at]);
        text[at] = b'.';
        at += 1 + length;
    }
    String::from_utf8(text).ok()
}

/// The type asked in `question` (a whole question: name, type, class).
#[inline]
fn question_type(question: &[u8]) -> Option<RecordType> {
    let end = question.len().checked_sub(4)?;
    let bytes = question.get(end..end + 2)?;
    Some(RecordType::from(u16::from_be_bytes([bytes[0], bytes[1]])))
}

impl Entry {
    /// The entry for `response`, the answer to `key`, with its records'
    /// TTLs at `ttl_offsets` (empty when they never count down), held on
    /// `lease`; `blocked`, for a blocked answer, what each repeat records
    /// (the store then puts in its explanation without the rule, shared
    /// with other answers). None when the
    /// answer cannot be kept this way (the response does not repeat the
    /// question, a count or length does not fit its field, the question's
    /// type is not the one recorded); it is then not kept at all.
    pub fn new(
        key: &RepeatKey,
        response: &[u8],
        ttl_offsets: &[u16],
        lease: Option<KeptLease>,
        blocked: Option<&BlockedLookup>,
    ) -> Option<Entry> {
        if response.len() < 12 || response.len() > MAX_RESPONSE {
            return None;
        }
        let question_len = question_length(key.query.get(QUERY_HEAD..)?)?;
        let question = key.query.get(QUERY_HEAD..QUERY_HEAD + question_len)?;
        if response.get(12..12 + question_len)? != question {
            return None;
        }
        let tail = key.query.get(QUERY_HEAD + question_len..)?;
        let listener = match key.listener {
            None => NO_LISTENER,
            Some(listener) => u16::try_from(listener).ok().filter(|&l| l != NO_LISTENER)?,
        };
        let mut name_text = None;
        let mut rule = Rule::NONE;
        if let Some(lookup) = blocked {
            if question_type(question)? != lookup.record_type {
                return None;
            }
            let derived = plain_name(question);
            if derived.as_deref() != Some(lookup.name.as_str()) {
                name_text = Some(lookup.name.as_str());
            }
            rule = match &lookup.explanation.rule {
                None => Rule::NONE,
                Some(text) => match lookup.name.strip_suffix(text.as_str()) {
                    Some(before) if before.is_empty() || before.ends_with('.') => {
                        Rule::name_from(before.len())?
                    }
                    _ => Rule::stored(text.len())?,
                },
            };
        }
        let rule_text = match (rule.stored_len(), blocked) {
            (Some(_), Some(lookup)) => lookup.explanation.rule.as_deref(),
            _ => None,
        };
        let stored = &response[2..];
        let mut bytes = Vec::with_capacity(
            stored.len()
                + QUERY_HEAD
                + tail.len()
                + 2 * ttl_offsets.len()
                + name_text.map_or(0, str::len)
                + rule_text.map_or(0, str::len),
        );
        bytes.extend_from_slice(stored);
        bytes.extend_from_slice(key.query.get(..QUERY_HEAD)?);
        bytes.extend_from_slice(tail);
        for offset in ttl_offsets {
            bytes.extend_from_slice(&offset.to_ne_bytes());
        }
        bytes.extend_from_slice(name_text.unwrap_or_default().as_bytes());
        bytes.extend_from_slice(rule_text.unwrap_or_default().as_bytes());
        Some(Entry {
            hash: key.hash,
            bytes: bytes.into_boxed_slice(),
            generation: key.generation,
            lease,
            blocked: None,
            folds: blocked.map(|_| Folds::default()),
            credit: 1,
            listener,
            profile: u8::try_from(key.profile).ok()?,
            ttl_count: u8::try_from(ttl_offsets.len()).ok()?,
            response_len: u16::try_from(stored.len()).ok()?,
            question_len: u16::try_from(question_len).ok()?,
            tail_len: u16::try_from(tail.len()).ok()?,
            name_len: u16::try_from(name_text.map_or(0, str::len)).ok()?,
            rule,
        })
    }

    /// What the entry's bytes take from the allocator.
    pub fn cost(&self) -> usize {
        allocation_size(self.bytes.len())
    }

    #[inline]
    pub fn profile(&self) -> ProfileId {
        ProfileId::from(self.profile)
    }

    #[inline]
    fn listener(&self) -> Option<usize> {
        (self.listener != NO_LISTENER).then_some(usize::from(self.listener))
    }

    /// The response after its ID.
    #[inline]
    fn response(&self) -> &[u8] {
        &self.bytes[..usize::from(self.response_len)]
    }

    #[inline]
    fn question(&self) -> &[u8] {
        &self.bytes[10..10 + usize::from(self.question_len)]
    }

    /// Whether this is the answer to `key`: the same query after its ID,
    /// listener, profile and generation.
    #[inline]
    pub fn is_for(&self, key: &RepeatKey) -> bool {
        let response = usize::from(self.response_len);
        let question = usize::from(self.question_len);
        let tail = usize::from(self.tail_len);
        let head = |bytes: &[u8]| <[u8; QUERY_HEAD]>::try_from(bytes.get(..QUERY_HEAD)?).ok();
        self.generation == key.generation
            && self.profile() == key.profile
            && self.listener() == key.listener
            && key.query.len() == QUERY_HEAD + question + tail
            && head(key.query).is_some_and(|h| head(&self.bytes[response..]) == Some(h))
            && key.query[QUERY_HEAD..QUERY_HEAD + question] == *self.question()
            && (tail == 0
                || key.query[QUERY_HEAD + question..]
                    == self.bytes[response + QUERY_HEAD..response + QUERY_HEAD + tail])
    }

    /// Writes the response into `out` after `id`, its TTLs counted down by
    /// `age` seconds; its length.
    #[inline]
    pub fn write(&self, id: [u8; 2], age: u32, out: &mut [u8; MAX_RESPONSE]) -> Option<usize> {
        let response = self.response();
        let len = response.len() + 2;
        out[..2].copy_from_slice(&id);
        out.get_mut(2..len)?.copy_from_slice(response);
        if age > 0 {
            let at = response.len() + QUERY_HEAD + usize::from(self.tail_len);
            let places = self.bytes.get(at..at + 2 * usize::from(self.ttl_count))?;
            for place in places.chunks_exact(2) {
                let offset = usize::from(u16::from_ne_bytes([place[0], place[1]]));
                let ttl = out.get_mut(offset..offset + 4)?;
                let left = u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]]).saturating_sub(age);
                ttl.copy_from_slice(&left.to_be_bytes());
            }
        }
        Some(len)
    }

    /// What a repeat of this blocked answer records; None for an allowed
    /// answer.
    pub fn blocked_repeat(&self) -> Option<BlockedRepeat> {
        let explanation = self.blocked.clone()?;
        let texts = usize::from(self.response_len)
            + QUERY_HEAD
            + usize::from(self.tail_len)
            + 2 * usize::from(self.ttl_count);
        let name_len = usize::from(self.name_len);
        let name = if name_len == 0 {
            checked_plain_name(self.question())?
        } else {
            String::from_utf8_lossy(self.bytes.get(texts..texts + name_len)?).into_owned()
        };
        let rule = match (self.rule.in_name(), self.rule.stored_len()) {
            (Some(at), _) => Some(name.get(at..)?.to_owned()),
            (None, Some(len)) => {
                let at = texts + name_len;
                let text = self.bytes.get(at..at + len)?;
                Some(String::from_utf8_lossy(text).into_owned())
            }
            (None, None) => None,
        };
        Some(BlockedRepeat {
            explanation,
            name,
            rule,
            record_type: question_type(self.question())?,
            folds: self.folds.clone()?,
        })
    }

    /// Never to be given again after `now` to a question of `generation`
    /// or later: its lease (timed from the store's `epoch`) is over, or its
    /// settings are no longer in force.
    pub fn is_spent(&self, generation: u64, epoch: Instant, now: Instant) -> bool {
        self.generation < generation || self.lease.as_ref().is_some_and(|l| l.is_over(epoch, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entrys_slot_stays_within_88_bytes() {
        // 30,000 answers (the bench's mix) take 2.6 MB of slots.
        assert!(size_of::<Entry>() <= 88, "{}", size_of::<Entry>());
    }

    #[test]
    fn allocation_sizes_are_the_allocators_classes() {
        let sizes: Vec<usize> = [1, 8, 9, 64, 65, 80, 81, 128, 129, 200, 257, 1232]
            .into_iter()
            .map(allocation_size)
            .collect();
        assert_eq!(sizes, [8, 8, 16, 64, 80, 80, 96, 128, 160, 224, 320, 1280]);
    }

    #[test]
    fn a_plain_name_reads_as_its_labels_and_any_other_does_not() {
        let wire = |labels: &[&[u8]]| {
            let mut bytes = Vec::new();
            for label in labels {
                bytes.push(label.len() as u8);
                bytes.extend_from_slice(label);
            }
            bytes.extend([0, 0, 1, 0, 1]);
            bytes
        };
        assert_eq!(
            plain_name(&wire(&[b"WwW", b"my_site-1", b"uk"])).as_deref(),
            Some("WwW.my_site-1.uk")
        );
        for labels in [&[&b"-lead"[..], b"uk"][..], &[b"sp ace"], &[b"do.t"], &[]] {
            assert_eq!(plain_name(&wire(labels)), None, "{labels:?}");
        }
        let plain = wire(&[b"WwW", b"my_site-1", b"uk"]);
        assert_eq!(checked_plain_name(&plain), plain_name(&plain));
        assert_eq!(question_type(&wire(&[b"a"])), Some(RecordType::A));
        assert_eq!(question_length(&wire(&[b"ab", b"c"])), Some(10));
        assert_eq!(question_length(&[0xC0, 12, 0, 1, 0, 1]), None);
    }
}

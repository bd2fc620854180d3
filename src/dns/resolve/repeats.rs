//! The first stage on UDP, after the access check and the rate limit: a
//! question asked again is answered from the bytes of the answer given to
//! it last time, with the ID put in and the TTLs counted down, and recorded
//! and counted as the whole pipeline would have. The rest of the pipeline
//! runs only when the question is new.
//!
//! Why it cannot answer what the whole pipeline would not:
//! - The key is the query's every byte after its ID (flags, counts, the
//!   question in its case, the OPT record: RD, CD, DO and the payload
//!   size), the listener, the client's profile, and the generation of the
//!   settings and staff overrides in force, which every reload, rule of
//!   time and unlock granted or ended changes ([`super::pipeline::InForce`]).
//! - Only an answer that was ready at once is kept, and never one a staff
//!   unlock released (its expiry is judged per query), a safe-search
//!   rewrite, one the rebinding guard cut (it counts each), a SERVFAIL, a
//!   truncated answer, or a blocked answer while any unlock is in force
//!   (one might release it for the next client).
//! - An answer from the response cache is kept on that entry's [`Lease`]:
//!   never past its expiry, its removal or replacement, or the start of its
//!   early refresh; its TTLs are counted down as the entry's would be.
//!
//! Memory is bounded in the bytes the allocator gives the answers kept (a
//! quarter of the response cache's budget: 8 MiB by default, room for
//! about 40,000 answers, [`budget_for`]; a reload that changes the cache's
//! size changes it too), spread over shards each with its own lock; an
//! answer costs its response, the bytes of its query the response does not
//! repeat, and a slot of 88 bytes (`repeats/entry.rs`). A full shard keeps
//! the answers that are asked again and turns the others away (`repeats/store.rs`):
//! the answers of a generation no longer in force, or whose lease is over,
//! leave first.

mod entry;
mod store;
#[cfg(test)]
mod tests;

pub use store::Repeats;

use std::sync::Arc;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::journal::Folds;
use crate::policy::Explanation;
use crate::policy::clients::ProfileId;
use crate::policy::overrides::OverrideSet;

use super::answer::Answer;
use super::cache::Lease;
use super::pipeline::{InForce, Pipeline};
use super::recorder::domain_text;
use super::settings::Client;
use super::verdict::Verdict;

/// What the kept answers may take together beside a response cache of
/// `cache_bytes`: a quarter as much (a Pi that sets `cache_mb` lower
/// shrinks both). The bench's mix of 30,000 names (two thirds allowed or
/// missing, one third blocked) takes about 5.5 MB.
pub fn budget_for(cache_bytes: usize) -> usize {
    cache_bytes / 4
}

/// The longest response kept: the largest a UDP answer is sent.
pub const MAX_RESPONSE: usize = 1232;

/// A question as this stage knows it: borrowed from the datagram.
pub struct RepeatKey<'q> {
    hash: u64,
    /// The query after its ID.
    query: &'q [u8],
    listener: Option<usize>,
    profile: ProfileId,
    generation: u64,
}

/// What a blocked lookup's record needs besides the client and the time.
#[derive(Debug)]
pub struct BlockedLookup {
    /// The name as the block log writes it.
    pub name: String,
    pub record_type: RecordType,
    pub explanation: Explanation,
}

/// What the pipeline's run says about keeping the answer it gave.
pub struct Keep {
    pub profile: ProfileId,
    /// The response cache's lease on the answer, if it came from there.
    pub lease: Option<Lease>,
    /// Every record is the upstream's: its TTLs count down on the lease.
    pub counts_down: bool,
    /// For a blocked answer, what each repeat records.
    pub blocked: Option<Arc<BlockedLookup>>,
}

impl Keep {
    /// Whether, and how, the answer the pipeline gave at once to `name`
    /// and `record_type`, on `verdict`, with `overrides` in force, may be
    /// given again from its bytes; None when it may not.
    pub fn of(
        verdict: &Verdict,
        answer: &Answer,
        overrides: &OverrideSet,
        (name, record_type): (&Name, RecordType),
    ) -> Option<Keep> {
        // Released by a staff unlock (judged by the clock per query), or
        // rewritten for safe search (two TTLs of different ages).
        if verdict.unlock.is_some() || verdict.rewrite.is_some() {
            return None;
        }
        if answer.code == ResponseCode::ServFail {
            return None;
        }
        // The rebinding guard took addresses out (and counts each answer
        // it does that to): its note is not the upstream's.
        if let Some(upstream) = &answer.upstream
            && answer.explanation.is_none()
            && answer.extended_error != upstream.extended_error
        {
            return None;
        }
        let blocked = match &answer.explanation {
            // An unlock in force might release it for the next client.
            Some(_) if !overrides.is_empty() => return None,
            Some(explanation) => Some(Arc::new(BlockedLookup {
                name: domain_text(name),
                record_type,
                explanation: explanation.clone(),
            })),
            None => None,
        };
        let counts_down =
            answer.upstream.is_some() && answer.answers.is_empty() && answer.authorities.is_empty();
        // An upstream's answer (or a block it gave away) is kept only on
        // its cache entry's lease.
        let from_upstream = answer.upstream.is_some() || verdict.alias.is_some();
        if from_upstream && verdict.cached.is_none() {
            return None;
        }
        Some(Keep {
            profile: verdict.profile,
            lease: verdict.cached.clone(),
            counts_down,
            blocked,
        })
    }
}

/// What a repeat found: the record it makes.
pub struct Repeated {
    pub profile: ProfileId,
    pub blocked: Option<BlockedRepeat>,
    /// It stands for a response cache hit.
    pub leased: bool,
}

/// What the block log records of a blocked answer given again.
pub struct BlockedRepeat {
    /// The block's explanation, without the rule: shared by the answers
    /// of every name it blocks.
    pub explanation: Arc<Explanation>,
    /// The name as the block log writes it.
    pub name: String,
    /// The rule that blocked it (the explanation's own is left out).
    pub rule: Option<String>,
    pub record_type: RecordType,
    /// Each client's repeats of the kept answer, counted for the block log.
    pub folds: Folds,
}

/// The stage's part of the pipeline: the key, the answer given again,
/// and what is kept.
impl Pipeline {
    /// The key under which `query` (a UDP query's bytes after its ID, as
    /// the codec accepts for this stage) from `client` is kept, on
    /// `in_force`; None when this stage is off, or the full query log is
    /// on (it writes every name, which this stage does not keep).
    pub fn repeat_key<'q>(
        &self,
        in_force: &InForce,
        query: &'q [u8],
        client: Client,
    ) -> Option<RepeatKey<'q>> {
        let repeats = self.repeats()?;
        let settings = &in_force.settings;
        if settings.full_query_log {
            return None;
        }
        let profile = settings.policy.profile_for(client.address, client.listener);
        Some(repeats.key(query, client.listener, profile, in_force.generation))
    }

    /// Stage 0 on UDP: the answer given last time to the same question
    /// (`key`), if it still holds, with `id` and its TTLs counted down,
    /// handed to `send` and recorded as the whole pipeline records it;
    /// false when there is none and the pipeline must run.
    pub fn answer_repeat(
        &self,
        in_force: &InForce,
        key: &RepeatKey,
        id: [u8; 2],
        client: Client,
        send: impl FnOnce(&[u8]),
    ) -> bool {
        let Some(repeats) = self.repeats() else {
            return false;
        };
        let Some(repeated) = repeats.answer(key, id, super::cache::now(), send) else {
            return false;
        };
        let settings = &in_force.settings;
        if repeated.leased {
            settings.upstream.count_repeated_hit();
        }
        self.recorder()
            .record_repeat(settings, repeated.profile, repeated.blocked, client);
        true
    }

    /// Keeps `response`, the answer to `key` written as `keep` says may be
    /// given again; `ttl_offsets`, where its records' TTLs are (None when
    /// it was truncated or could not be walked: then it is not kept).
    pub fn remember(
        &self,
        key: &RepeatKey,
        keep: Keep,
        response: &[u8],
        ttl_offsets: Option<Vec<u16>>,
    ) {
        if let Some(repeats) = self.repeats() {
            repeats.remember(key, keep, response, ttl_offsets, super::cache::now());
        }
    }
}

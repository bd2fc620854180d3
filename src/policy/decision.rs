//! The filtering decision for one name under one profile: one walk of the
//! compiled lists and of the profile's own allow/deny domains; the most
//! specific match decides, an allow beats a block at the same or a less
//! specific level, and locked categories always block.

use crate::config::ProfileMode;
use crate::lists::name::ReversedName;
use crate::lists::store::{CompiledLists, SuffixSet};

use super::safesearch::SafeSearchPolicy;

/// One profile, compiled against the category table of the loaded lists.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub mode: ProfileMode,
    /// Category bits this profile blocks.
    pub block_mask: u64,
    /// Category bits this profile allows (beating blocks at the same or a
    /// less specific level; the walled garden in allowlist mode).
    pub allow_mask: u64,
    pub allow_domains: SuffixSet,
    pub deny_domains: SuffixSet,
    pub safe_search: SafeSearchPolicy,
}

/// What matched: where the rule came from and how much of the name it covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Bytes of the reversed name the rule covers (`uk.co.bbc` = 9).
    pub key_len: usize,
    pub source: HitSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitSource {
    /// A compiled list entry; `category` is the deciding category bit.
    List {
        combination: u32,
        category: u32,
    },
    ProfileAllow,
    ProfileDeny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer from upstream. `by` is the allow rule, if one decided.
    Allowed { by: Option<Hit> },
    /// A locked category: nobody can release it.
    Locked { by: Hit },
    /// Blocked by a category list or the profile's deny domains.
    Blocked { by: Hit },
    /// Allowlist mode and nothing allowed the name.
    NotInWalledGarden,
}

impl Decision {
    pub fn is_blocked(&self) -> bool {
        !matches!(self, Decision::Allowed { .. })
    }
}

/// The decision for `name` under `profile`.
pub fn decide(
    lists: &CompiledLists,
    locked_mask: u64,
    profile: &Profile,
    name: &ReversedName,
) -> Decision {
    let relevant = profile.block_mask | profile.allow_mask;
    let mut locked: Option<Hit> = None;
    // The most specific list entry in a category this profile cares about,
    // and whether it allows.
    let mut list_hit: Option<(Hit, bool)> = None;
    lists.walk(name, |found| {
        let categories = lists.combination_categories(found.combination);
        if categories & locked_mask != 0 {
            locked = Some(Hit {
                key_len: found.key_len,
                source: HitSource::List {
                    combination: found.combination,
                    category: lowest_bit(categories & locked_mask),
                },
            });
        }
        if categories & relevant != 0 {
            let allows = categories & profile.allow_mask != 0;
            let deciding = if allows {
                categories & profile.allow_mask
            } else {
                categories & profile.block_mask
            };
            let hit = Hit {
                key_len: found.key_len,
                source: HitSource::List {
                    combination: found.combination,
                    category: lowest_bit(deciding),
                },
            };
            list_hit = Some((hit, allows));
        }
    });
    if let Some(by) = locked {
        return Decision::Locked { by };
    }

    let mut profile_allow: Option<usize> = None;
    profile
        .allow_domains
        .walk(name, |key_len| profile_allow = Some(key_len));
    let mut profile_deny: Option<usize> = None;
    profile
        .deny_domains
        .walk(name, |key_len| profile_deny = Some(key_len));

    let candidates = [
        list_hit,
        profile_allow.map(|key_len| {
            let hit = Hit {
                key_len,
                source: HitSource::ProfileAllow,
            };
            (hit, true)
        }),
        profile_deny.map(|key_len| {
            let hit = Hit {
                key_len,
                source: HitSource::ProfileDeny,
            };
            (hit, false)
        }),
    ];
    // Longest match wins; at equal length an allow wins.
    let deciding = candidates
        .into_iter()
        .flatten()
        .max_by_key(|(hit, allows)| (hit.key_len, *allows));

    match (deciding, profile.mode) {
        (Some((by, true)), _) => Decision::Allowed { by: Some(by) },
        (Some((by, false)), _) => Decision::Blocked { by },
        (None, ProfileMode::Blocklist) => Decision::Allowed { by: None },
        (None, ProfileMode::Allowlist) => Decision::NotInWalledGarden,
    }
}

fn lowest_bit(mask: u64) -> u32 {
    mask.trailing_zeros()
}

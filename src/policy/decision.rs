//! The filtering decision for one name under one profile: one walk of the
//! compiled lists and of the profile's own allow/deny domains; the most
//! specific match decides, an allow beats a block at the same or a less
//! specific level, and locked categories always block.

use crate::config::{Audience, ProfileMode};
use crate::lists::store::{CompiledLists, SuffixSet};
use crate::name::ReversedName;

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
    pub audience: Audience,
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
    /// A name rule (`lists/rules/names.toml`): `category` indexes the
    /// rules' categories, `term` their patterns. It covers the whole name.
    NameRule {
        category: u16,
        term: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer from upstream. `by` is the allow rule, if one decided.
    Allowed { by: Option<Hit> },
    /// A locked category: nobody can release it.
    Locked { by: Hit },
    /// Blocked by a category list or the profile's deny domains.
    Blocked { by: Hit },
    /// Allowlist mode and nothing allowed the name. `rule` is a name rule
    /// the name also hit: it does not decide, but it alerts.
    NotInWalledGarden { rule: Option<Hit> },
}

impl Decision {
    pub fn is_blocked(&self) -> bool {
        !matches!(self, Decision::Allowed { .. })
    }
}

/// The decision for `name` under `profile`.
///
/// Per category, the most specific list entry decides: a list's exception
/// (`@@||d^`, RPZ passthru) lifts that category's block at its level and
/// below, a more specific block puts it back, and an important block
/// (`$important`) stands whatever the exceptions say. Then the most specific
/// of the standing block, the list allow categories and the profile's own
/// allow/deny domains wins, an allow winning a tie. Locked categories block
/// before any of that.
pub fn decide(
    lists: &CompiledLists,
    locked_mask: u64,
    profile: &Profile,
    name: &ReversedName,
) -> Decision {
    let mut locked: Option<Hit> = None;
    // Blocked categories still standing, and where each was last blocked.
    let mut standing: u64 = 0;
    let mut important: u64 = 0;
    let mut block_at = [(0usize, 0u32); 64];
    let mut list_allow: Option<Hit> = None;
    lists.walk(name, |found| {
        let id = found.combination;
        let categories = lists.combination_categories(id);
        if categories & locked_mask != 0 {
            locked = Some(Hit {
                key_len: found.key_len,
                source: HitSource::List {
                    combination: id,
                    category: lowest_bit(categories & locked_mask),
                },
            });
        }
        let blocks = categories & profile.block_mask;
        let exceptions = lists.combination_exceptions(id) & profile.block_mask;
        important |= lists.combination_important(id) & profile.block_mask;
        let mut bits = blocks;
        while bits != 0 {
            let bit = lowest_bit(bits);
            block_at[bit as usize] = (found.key_len, id);
            bits &= bits - 1;
        }
        // At one level an exception beats a block of its category.
        standing = (standing | blocks) & !exceptions;
        let allows = categories & profile.allow_mask;
        if allows != 0 {
            list_allow = Some(Hit {
                key_len: found.key_len,
                source: HitSource::List {
                    combination: id,
                    category: lowest_bit(allows),
                },
            });
        }
    });
    if let Some(by) = locked {
        return Decision::Locked { by };
    }

    // The most specific standing block (important ones stand regardless).
    let mut list_block: Option<Hit> = None;
    let mut bits = standing | important;
    while bits != 0 {
        let bit = lowest_bit(bits);
        let (key_len, combination) = block_at[bit as usize];
        if list_block.is_none_or(|hit| key_len > hit.key_len) {
            list_block = Some(Hit {
                key_len,
                source: HitSource::List {
                    combination,
                    category: bit,
                },
            });
        }
        bits &= bits - 1;
    }

    let mut profile_allow: Option<usize> = None;
    profile
        .allow_domains
        .walk(name, |key_len| profile_allow = Some(key_len));
    let mut profile_deny: Option<usize> = None;
    profile
        .deny_domains
        .walk(name, |key_len| profile_deny = Some(key_len));

    let profile_hit = |key_len: usize, source: HitSource| Hit { key_len, source };
    let candidates = [
        list_block.map(|hit| (hit, false)),
        list_allow.map(|hit| (hit, true)),
        profile_allow.map(|key_len| (profile_hit(key_len, HitSource::ProfileAllow), true)),
        profile_deny.map(|key_len| (profile_hit(key_len, HitSource::ProfileDeny), false)),
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
        (None, ProfileMode::Allowlist) => Decision::NotInWalledGarden { rule: None },
    }
}

fn lowest_bit(mask: u64) -> u32 {
    mask.trailing_zeros()
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListFormat;
    use crate::config::YouTubeMode;
    use crate::lists::compile::{SourceSpec, compile};
    use crate::policy::safesearch::SafeSearchPolicy;

    struct Fixture {
        lists: CompiledLists,
        _dir: tempfile::TempDir,
    }

    /// Compiles `(category, format, text)` lists into a real file.
    fn lists(sources: &[(&str, ListFormat, &str)]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let specs: Vec<SourceSpec> = sources
            .iter()
            .enumerate()
            .map(|(i, (category, format, text))| {
                let path = dir.path().join(format!("list{i}.txt"));
                std::fs::write(&path, text).expect("write");
                SourceSpec {
                    name: format!("list{i}"),
                    path,
                    format: *format,
                    category: category.to_string(),
                    hidden: false,
                }
            })
            .collect();
        let out = dir.path().join("lists.lollipop");
        compile(&specs, &out).expect("compile");
        Fixture {
            lists: CompiledLists::open(&out).expect("open"),
            _dir: dir,
        }
    }

    fn profile(
        lists: &CompiledLists,
        mode: ProfileMode,
        block: &[&str],
        allow: &[&str],
    ) -> Profile {
        let mask = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| lists.category_bit(n))
                .fold(0u64, |m, b| m | 1 << b)
        };
        Profile {
            name: "test".into(),
            description: String::new(),
            mode,
            block_mask: mask(block),
            allow_mask: mask(allow),
            allow_domains: SuffixSet::new(vec!["allowed.gamble.example".into()]).expect("set"),
            deny_domains: SuffixSet::new(vec!["denied.example.org".into()]).expect("set"),
            safe_search: SafeSearchPolicy {
                search: true,
                youtube: YouTubeMode::Strict,
            },
            audience: crate::config::Audience::Children,
        }
    }

    fn verdict(fixture: &Fixture, locked: &[&str], profile: &Profile, name: &str) -> Decision {
        let locked_mask = locked
            .iter()
            .filter_map(|n| fixture.lists.category_bit(n))
            .fold(0u64, |m, b| m | 1 << b);
        let name = ReversedName::from_domain(name).expect("name");
        decide(&fixture.lists, locked_mask, profile, &name)
    }

    #[test]
    fn exceptions_lift_their_own_category_at_their_level_and_below() {
        let f = lists(&[
            (
                "gambling",
                ListFormat::Adblock,
                "||gamble.example^\n@@||ok.gamble.example^\n||bad.ok.gamble.example^\n",
            ),
            (
                "pornography",
                ListFormat::Domains,
                "both.ok.gamble.example\n",
            ),
        ]);
        let p = profile(
            &f.lists,
            ProfileMode::Blocklist,
            &["gambling", "pornography"],
            &[],
        );
        assert!(verdict(&f, &[], &p, "www.gamble.example").is_blocked());
        assert!(!verdict(&f, &[], &p, "ok.gamble.example").is_blocked());
        assert!(!verdict(&f, &[], &p, "x.ok.gamble.example").is_blocked());
        assert!(
            verdict(&f, &[], &p, "bad.ok.gamble.example").is_blocked(),
            "a more specific block puts it back"
        );
        assert!(
            verdict(&f, &[], &p, "both.ok.gamble.example").is_blocked(),
            "a gambling exception does not lift a pornography block"
        );
    }

    #[test]
    fn important_blocks_stand_against_exceptions() {
        let f = lists(&[(
            "malware",
            ListFormat::Adblock,
            "||evil.example^$important\n@@||cdn.evil.example^\n",
        )]);
        let p = profile(&f.lists, ProfileMode::Blocklist, &["malware"], &[]);
        assert!(verdict(&f, &[], &p, "cdn.evil.example").is_blocked());
    }

    #[test]
    fn profile_domains_and_allow_categories_follow_specificity() {
        let f = lists(&[
            (
                "gambling",
                ListFormat::Domains,
                "gamble.example\nexample.org\n",
            ),
            ("child-safe", ListFormat::Domains, "kids.gamble.example\n"),
            (
                "gambling",
                ListFormat::Domains,
                "games.kids.gamble.example\n",
            ),
        ]);
        let p = profile(
            &f.lists,
            ProfileMode::Blocklist,
            &["gambling"],
            &["child-safe"],
        );
        assert!(!verdict(&f, &[], &p, "allowed.gamble.example").is_blocked());
        assert!(!verdict(&f, &[], &p, "kids.gamble.example").is_blocked());
        assert!(verdict(&f, &[], &p, "games.kids.gamble.example").is_blocked());
        assert!(matches!(
            verdict(&f, &[], &p, "denied.example.org"),
            Decision::Blocked {
                by: Hit {
                    source: HitSource::ProfileDeny,
                    ..
                }
            }
        ));
        assert!(matches!(
            verdict(&f, &[], &p, "unlisted.example.net"),
            Decision::Allowed { by: None }
        ));
    }

    #[test]
    fn locked_categories_beat_every_allow_and_the_walled_garden_allows_only_its_own() {
        let f = lists(&[
            ("iwf", ListFormat::Hosts, "0.0.0.0 allowed.gamble.example\n"),
            (
                "under5-allow",
                ListFormat::Domains,
                "cbeebies.com\nallowed.gamble.example\n",
            ),
        ]);
        let garden = profile(&f.lists, ProfileMode::Allowlist, &[], &["under5-allow"]);
        assert!(matches!(
            verdict(&f, &["iwf"], &garden, "allowed.gamble.example"),
            Decision::Locked { .. }
        ));
        assert!(!verdict(&f, &["iwf"], &garden, "www.cbeebies.com").is_blocked());
        assert_eq!(
            verdict(&f, &["iwf"], &garden, "www.example.com"),
            Decision::NotInWalledGarden { rule: None }
        );
    }
}

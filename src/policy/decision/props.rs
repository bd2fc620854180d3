//! Properties of the decision over generated lists and names: locked
//! categories always block, the more specific rule wins, an important block
//! stands, the two modes' defaults, and no rule about another name changes
//! the decision. Each case compiles real list files, so the case counts are
//! kept small.

use proptest::prelude::*;

use super::*;
use crate::config::{ListFormat, YouTubeMode};
use crate::lists::compile::{SourceSpec, compile};
use crate::policy::safesearch::SafeSearchPolicy;

const CATEGORIES: [&str; 3] = ["gambling", "social", "games"];
const LOCKED: &str = "iwf";

/// A name from a few labels, so generated names share suffixes often.
fn name() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("www"), Just("cdn"), Just("x-y")],
        0..3,
    )
    .prop_flat_map(|labels| {
        prop_oneof![Just("example"), Just("school"), Just("test")].prop_map(move |sld| {
            let mut name = labels.clone();
            name.push(sld);
            name.push("uk");
            name
        })
    })
}

fn text(labels: &[&str]) -> String {
    labels.join(".")
}

/// Whether `entry` covers `name` (is it or one of its parents).
fn covers(entry: &str, name: &str) -> bool {
    name == entry || name.ends_with(&format!(".{entry}"))
}

/// One list line: a category, and a block, an exception or an important
/// block, written in adblock syntax.
#[derive(Debug, Clone)]
struct Entry {
    category: usize,
    domain: String,
    kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Block,
    Allow,
    Important,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        0..CATEGORIES.len(),
        name(),
        prop_oneof![
            Just(EntryKind::Block),
            Just(EntryKind::Allow),
            Just(EntryKind::Important)
        ],
    )
        .prop_map(|(category, labels, kind)| Entry {
            category,
            domain: text(&labels),
            kind,
        })
}

struct Fixture {
    lists: CompiledLists,
    _dir: tempfile::TempDir,
}

/// Compiles `entries` (one adblock list per category) and `locked` (a
/// domains list in the locked category) into a real file.
fn compile_lists(entries: &[Entry], locked: &[String]) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut specs = Vec::new();
    let mut write = |category: &str, format: ListFormat, body: String| {
        let path = dir.path().join(format!("{category}.txt"));
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("write: {e}"));
        specs.push(SourceSpec {
            name: category.to_string(),
            path,
            format,
            category: category.to_string(),
            hidden: false,
        });
    };
    for (i, category) in CATEGORIES.iter().enumerate() {
        let body: String = entries
            .iter()
            .filter(|e| e.category == i)
            .map(|e| match e.kind {
                EntryKind::Block => format!("||{}^\n", e.domain),
                EntryKind::Allow => format!("@@||{}^\n", e.domain),
                EntryKind::Important => format!("||{}^$important\n", e.domain),
            })
            .collect();
        write(category, ListFormat::Adblock, body);
    }
    write(LOCKED, ListFormat::Domains, locked.join("\n"));
    let out = dir.path().join("lists.lollipop");
    compile(&specs, &out).unwrap_or_else(|e| panic!("compile: {e}"));
    Fixture {
        lists: CompiledLists::open(&out).unwrap_or_else(|e| panic!("open: {e}")),
        _dir: dir,
    }
}

fn mask(lists: &CompiledLists, names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| lists.category_bit(n))
        .fold(0, |m, b| m | 1 << b)
}

fn profile(
    lists: &CompiledLists,
    mode: ProfileMode,
    allow_categories: &[&str],
    allow: Vec<String>,
    deny: Vec<String>,
) -> Profile {
    let set = |domains| SuffixSet::new(domains).unwrap_or_else(|e| panic!("set: {e}"));
    Profile {
        name: "test".into(),
        description: String::new(),
        mode,
        block_mask: mask(lists, &CATEGORIES),
        allow_mask: mask(lists, allow_categories),
        allow_domains: set(allow),
        deny_domains: set(deny),
        safe_search: SafeSearchPolicy {
            search: true,
            youtube: YouTubeMode::Strict,
        },
        audience: crate::config::Audience::Children,
    }
}

fn decide_for(fixture: &Fixture, profile: &Profile, name: &str) -> Decision {
    let reversed = ReversedName::from_domain(name).unwrap_or_else(|| panic!("name {name}"));
    decide(
        &fixture.lists,
        mask(&fixture.lists, &[LOCKED]),
        profile,
        &reversed,
    )
}

/// The decision without the list-internal numbers that differ between
/// two compilations of different files.
fn shape(decision: Decision) -> (u8, Option<(usize, u8)>) {
    let hit = |hit: Hit| {
        let source = match hit.source {
            HitSource::List { .. } => 0,
            HitSource::ProfileAllow => 1,
            HitSource::ProfileDeny => 2,
            HitSource::NameRule { .. } => 3,
        };
        (hit.key_len, source)
    };
    match decision {
        Decision::Allowed { by } => (0, by.map(hit)),
        Decision::Locked { by } => (1, Some(hit(by))),
        Decision::Blocked { by } => (2, Some(hit(by))),
        Decision::NotInWalledGarden { .. } => (3, None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_locked_category_blocks_whatever_allows_exist(
        labels in name(),
        cut in 0usize..5,
        entries in proptest::collection::vec(entry(), 0..8),
        garden in any::<bool>(),
    ) {
        let target = text(&labels);
        let locked = text(&labels[cut.min(labels.len() - 2)..]);
        // Every kind of allow, at the name itself.
        let mut entries = entries;
        entries.push(Entry { category: 0, domain: target.clone(), kind: EntryKind::Allow });
        let fixture = compile_lists(&entries, &[locked]);
        let mode = if garden { ProfileMode::Allowlist } else { ProfileMode::Blocklist };
        let p = profile(&fixture.lists, mode, &["gambling", "social"], vec![target.clone()], vec![]);
        let decision = decide_for(&fixture, &p, &target);
        prop_assert!(matches!(decision, Decision::Locked { .. }), "{:?}", decision);
    }

    #[test]
    fn a_more_specific_allow_beats_a_less_specific_block(
        labels in name(),
        block_cut in 1usize..5,
        allow_cut in 0usize..5,
        by_profile in any::<bool>(),
    ) {
        let block_at = block_cut.min(labels.len() - 2);
        let allow_at = allow_cut.min(block_at.saturating_sub(1));
        prop_assume!(allow_at < block_at);
        let target = text(&labels);
        let blocked = text(&labels[block_at..]);
        let allowed = text(&labels[allow_at..]);
        let block = Entry { category: 0, domain: blocked.clone(), kind: EntryKind::Block };
        let (entries, allow_domains) = if by_profile {
            (vec![block], vec![allowed])
        } else {
            (vec![block, Entry { category: 0, domain: allowed, kind: EntryKind::Allow }], vec![])
        };
        let fixture = compile_lists(&entries, &[]);
        let p = profile(&fixture.lists, ProfileMode::Blocklist, &[], allow_domains, vec![]);
        prop_assert!(!decide_for(&fixture, &p, &target).is_blocked());
        // And the block still holds for a sibling the allow does not cover.
        let sibling = format!("other.{blocked}");
        prop_assert!(decide_for(&fixture, &p, &sibling).is_blocked());
    }

    #[test]
    fn an_important_block_stands_against_its_lists_exceptions(
        labels in name(),
        block_cut in 0usize..5,
        allow_cut in 0usize..5,
    ) {
        let target = text(&labels);
        let important = text(&labels[block_cut.min(labels.len() - 2)..]);
        let exception = text(&labels[allow_cut.min(labels.len() - 2)..]);
        let entries = [
            Entry { category: 1, domain: important, kind: EntryKind::Important },
            Entry { category: 1, domain: exception, kind: EntryKind::Allow },
        ];
        let fixture = compile_lists(&entries, &[]);
        let p = profile(&fixture.lists, ProfileMode::Blocklist, &[], vec![], vec![]);
        let decision = decide_for(&fixture, &p, &target);
        prop_assert!(matches!(decision, Decision::Blocked { .. }), "{:?}", decision);
    }

    #[test]
    fn with_no_match_blocklist_mode_allows_and_allowlist_mode_refuses(
        labels in name(),
        entries in proptest::collection::vec(entry(), 0..10),
    ) {
        let target = text(&labels);
        let entries: Vec<Entry> =
            entries.into_iter().filter(|e| !covers(&e.domain, &target)).collect();
        let fixture = compile_lists(&entries, &[]);
        let open = profile(&fixture.lists, ProfileMode::Blocklist, &["games"], vec![], vec![]);
        prop_assert_eq!(decide_for(&fixture, &open, &target), Decision::Allowed { by: None });
        let garden = profile(&fixture.lists, ProfileMode::Allowlist, &["games"], vec![], vec![]);
        prop_assert_eq!(decide_for(&fixture, &garden, &target), Decision::NotInWalledGarden { rule: None });
    }

    #[test]
    fn the_decision_never_depends_on_rules_for_other_names(
        labels in name(),
        related in proptest::collection::vec(entry(), 0..6),
        unrelated in proptest::collection::vec(entry(), 1..10),
        garden in any::<bool>(),
    ) {
        let target = text(&labels);
        let unrelated: Vec<Entry> =
            unrelated.into_iter().filter(|e| !covers(&e.domain, &target)).collect();
        let mut all = related.clone();
        all.extend(unrelated.iter().cloned());
        let mode = if garden { ProfileMode::Allowlist } else { ProfileMode::Blocklist };
        let without = compile_lists(&related, &[]);
        let with = compile_lists(&all, &[]);
        let others: Vec<String> = unrelated.iter().map(|e| e.domain.clone()).collect();
        let p_without = profile(&without.lists, mode, &["games"], vec![], vec![]);
        // The unrelated names as the profile's own allow and deny entries too.
        let p_with = profile(&with.lists, mode, &["games"], others.clone(), others);
        prop_assert_eq!(
            shape(decide_for(&without, &p_without, &target)),
            shape(decide_for(&with, &p_with, &target))
        );
    }
}

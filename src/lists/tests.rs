//! Tests of the lists module as a whole: compiling lists, opening the
//! file, and walking names through it; plus helpers other tests share.

use super::*;
use crate::name::ReversedName;
use tempfile::TempDir;

/// Compiles `(name, category, format, body)` lists and opens the result.
pub(crate) fn build(lists: &[(&str, &str, ListFormat, &str)]) -> (TempDir, PathBuf, CompiledLists) {
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<SourceSpec> = lists
        .iter()
        .map(|&(name, category, format, body)| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            SourceSpec {
                name: name.into(),
                path,
                format,
                category: category.into(),
                hidden: false,
            }
        })
        .collect();
    let out = dir.path().join("lists.bin");
    compile(&specs, &out).unwrap();
    let lists = CompiledLists::open(&out).unwrap();
    (dir, out, lists)
}

/// Matched rule domains, each with the names of the lists holding it.
pub(crate) fn hits(lists: &CompiledLists, query: &str) -> Vec<(String, Vec<String>)> {
    let name = ReversedName::from_domain(query).unwrap();
    let mut out = Vec::new();
    lists.walk(&name, |m| {
        let srcs = lists.combination_sources(m.combination);
        let names = srcs.iter().map(|&s| lists.source(s).name.clone()).collect();
        out.push((name.suffix_domain(m.key_len), names));
    });
    out
}

fn hit(domain: &str, lists: &[&str]) -> (String, Vec<String>) {
    (domain.into(), lists.iter().map(|s| s.to_string()).collect())
}

#[test]
fn overlapping_sources_share_one_combination() {
    let (_dir, _, lists) = build(&[
        (
            "adult",
            "pornography",
            ListFormat::Domains,
            "example.com\nshared.net\n",
        ),
        (
            "proxies",
            "bypass",
            ListFormat::Hosts,
            "0.0.0.0 shared.net vpn.example.com\n",
        ),
    ]);
    assert_eq!(lists.domain_count(), 3);
    assert_eq!(lists.categories(), ["pornography", "bypass"]);
    assert_eq!(lists.category_bit("bypass"), Some(1));
    assert_eq!(lists.category_bit("gambling"), None);
    assert_eq!(
        hits(&lists, "www.VPN.example.com."),
        [
            hit("example.com", &["adult"]),
            hit("vpn.example.com", &["proxies"])
        ]
    );
    assert_eq!(
        hits(&lists, "cdn.shared.net"),
        [hit("shared.net", &["adult", "proxies"])]
    );
    let mut combination = None;
    lists.walk(&ReversedName::from_domain("shared.net").unwrap(), |m| {
        combination = Some(m.combination)
    });
    assert_eq!(lists.combination_categories(combination.unwrap()), 0b11);
    assert_eq!(lists.manifest().combinations.len(), 3);
    assert!(hits(&lists, "example.org").is_empty());
    assert!(hits(&lists, "com").is_empty());
    assert!(hits(&lists, ".").is_empty());
}

#[test]
fn recompiling_swaps_the_file_under_an_open_reader() {
    let (dir, out, old) = build(&[("a", "ads", ListFormat::Domains, "x.example\n")]);
    let spec = SourceSpec {
        name: "a".into(),
        path: dir.path().join("a"),
        format: ListFormat::Domains,
        category: "ads".into(),
        hidden: false,
    };
    std::fs::write(&spec.path, "y.example\nz.example\n").unwrap();
    let report = compile(&[spec], &out).unwrap();
    // The rename leaves the old mapping intact for queries in flight.
    assert_eq!(hits(&old, "x.example").len(), 1);
    let new = CompiledLists::open(&out).unwrap();
    assert_eq!((new.domain_count(), report.unique_domains), (2, 2));
    assert!(hits(&new, "x.example").is_empty());
    let bytes = std::fs::read(&out).unwrap();
    let (_, offset) = decode_header(&bytes).unwrap();
    assert_eq!((bytes.len() - offset) as u64, report.fst_bytes);
    assert!(!dir.path().join("lists.bin.tmp").exists());
}

#[test]
fn header_pads_to_eight_and_round_trips() {
    let mut manifest = Manifest::empty();
    for n in 0..9 {
        manifest.categories = vec!["x".repeat(n)];
        let header = encode_header(&manifest).unwrap();
        assert_eq!(header.len() % 8, 0);
        assert_eq!(decode_header(&header), Ok((manifest.clone(), header.len())));
    }
}

#[test]
fn manifest_check_catches_bad_references() {
    let mut manifest = Manifest::empty();
    manifest.categories = vec!["a".into(), "b".into()];
    manifest.sources = vec![SourceInfo {
        name: "s".into(),
        path: PathBuf::new(),
        category: "b".into(),
        format: ListFormat::Domains,
        entries: 1,
        bad_lines: 0,
        unsupported: 0,
        url_level: 0,
        hidden: false,
    }];
    let kinds = |k| vec![EntryKinds::only(k)];
    let good = Combination {
        sources: vec![0],
        kinds: kinds(EntryKind::Important),
        categories: 0b10,
        exceptions: 0,
        important: 0b10,
    };
    manifest.combinations = vec![good.clone()];
    assert_eq!(manifest.check(), Ok(()));
    let broken = [
        Combination {
            categories: 0b01,
            ..good.clone()
        },
        Combination {
            important: 0,
            ..good.clone()
        },
        Combination {
            exceptions: 0b10,
            ..good.clone()
        },
        Combination {
            kinds: kinds(EntryKind::Allow),
            ..good.clone()
        },
        Combination {
            kinds: vec![],
            ..good.clone()
        },
        Combination {
            kinds: vec![EntryKinds::default()],
            ..good.clone()
        },
        Combination {
            sources: vec![1],
            ..good.clone()
        },
    ];
    for c in broken {
        manifest.combinations = vec![c.clone()];
        assert!(manifest.check().is_err(), "{c:?}");
    }
    // An exception-only combination blocks nothing.
    manifest.combinations = vec![Combination {
        sources: vec![0],
        kinds: kinds(EntryKind::Allow),
        categories: 0,
        exceptions: 0b10,
        important: 0,
    }];
    assert_eq!(manifest.check(), Ok(()));
    manifest.sources.push(manifest.sources[0].clone());
    manifest.combinations = vec![Combination {
        sources: vec![1, 0],
        kinds: vec![EntryKinds::only(EntryKind::Block); 2],
        categories: 0b10,
        exceptions: 0,
        important: 0,
    }];
    assert!(manifest.check().is_err(), "unsorted sources");
    manifest.combinations.clear();
    manifest.sources[0].category = "zzz".into();
    assert!(manifest.check().is_err());
}

/// Each entry covering `query`, least specific first, with its category,
/// exception and important masks.
fn masks(lists: &CompiledLists, query: &str) -> Vec<(String, u64, u64, u64)> {
    let name = ReversedName::from_domain(query).unwrap();
    let mut out = Vec::new();
    lists.walk(&name, |m| {
        let id = m.combination;
        out.push((
            name.suffix_domain(m.key_len),
            lists.combination_categories(id),
            lists.combination_exceptions(id),
            lists.combination_important(id),
        ));
    });
    out
}

fn masked(domain: &str, blocks: u64, exceptions: u64, important: u64) -> (String, u64, u64, u64) {
    (domain.into(), blocks, exceptions, important)
}

#[test]
fn exceptions_and_important_blocks_land_at_their_own_keys() {
    const ADS: u64 = 0b01;
    const ADULT: u64 = 0b10;
    let adblock = "\
[Adblock Plus 2.0]
! Title: test
||ads.example.com^
@@||good.ads.example.com^
||tracker.example.net^$important
@@||cdn.tracker.example.net^
@@||only-exception.example.org^
||both.example^
@@||both.example^
||ads.example.com^$third-party
";
    let (_dir, _, lists) = build(&[
        ("easylist", "ads", ListFormat::Adblock, adblock),
        (
            "adult",
            "adult",
            ListFormat::Domains,
            "tracker.example.net\ngood.ads.example.com\n",
        ),
    ]);
    assert_eq!(
        masks(&lists, "x.good.ads.example.com"),
        [
            masked("ads.example.com", ADS, 0, 0),
            masked("good.ads.example.com", ADULT, ADS, 0),
        ]
    );
    assert_eq!(
        masks(&lists, "cdn.tracker.example.net"),
        [
            masked("tracker.example.net", ADS | ADULT, 0, ADS),
            masked("cdn.tracker.example.net", 0, ADS, 0),
        ]
    );
    // An exception with nothing to except is still in the index, so a walk
    // reports it.
    assert_eq!(
        masks(&lists, "www.only-exception.example.org"),
        [masked("only-exception.example.org", 0, ADS, 0)]
    );
    assert_eq!(
        masks(&lists, "both.example"),
        [masked("both.example", ADS, ADS, 0)]
    );
    assert_eq!(lists.domain_count(), 6);

    // Which list said what, for the admin UI.
    let mut id = None;
    lists.walk(
        &ReversedName::from_domain("good.ads.example.com").unwrap(),
        |m| id = Some(m.combination),
    );
    let entries: Vec<_> = lists.combination_entries(id.unwrap()).collect();
    assert_eq!(
        entries,
        [
            (0, EntryKinds::only(EntryKind::Allow)),
            (1, EntryKinds::only(EntryKind::Block)),
        ]
    );
    let easylist = &lists.manifest().sources[0];
    assert_eq!((easylist.entries, easylist.unsupported), (6, 1));
}

#[test]
fn every_format_round_trips_through_the_file() {
    let rpz = "\
$TTL 300
$ORIGIN rpz.school.uk.
@ IN SOA ns.school.uk. admin.school.uk. (
    1 3600 600 86400 300 )
  IN NS ns.school.uk.
malware.example.com CNAME .
*.phish.example CNAME *.
fine.malware.example.com CNAME rpz-passthru.
drop.example.rpz.school.uk. CNAME rpz-drop.
";
    let (_dir, _, lists) = build(&[
        ("threats", "malware", ListFormat::Rpz, rpz),
        (
            "dnsmasq",
            "malware",
            ListFormat::Dnsmasq,
            "address=/phish.example/also.example/0.0.0.0\nserver=/x.example/10.0.0.1\n",
        ),
        (
            "hosts",
            "adult",
            ListFormat::Hosts,
            "0.0.0.0 malware.example.com\n",
        ),
    ]);
    assert_eq!(
        masks(&lists, "a.fine.malware.example.com"),
        [
            masked("malware.example.com", 0b11, 0, 0),
            masked("fine.malware.example.com", 0, 0b01, 0),
        ]
    );
    assert_eq!(
        masks(&lists, "login.phish.example"),
        [masked("phish.example", 0b01, 0, 0)]
    );
    assert_eq!(
        masks(&lists, "drop.example"),
        [masked("drop.example", 0b01, 0, 0)]
    );
    assert_eq!(masks(&lists, "x.example"), []);
    let sources = &lists.manifest().sources;
    assert_eq!(sources[0].entries, 4);
    assert_eq!((sources[1].entries, sources[1].unsupported), (2, 1));
}

//! Tests of compiling: what each source's report counts and quotes, and
//! surviving hostile input with bounded memory.

use std::io::{BufWriter, Cursor, Write};

use super::*;
use crate::lists::CompiledLists;

fn spec(dir: &Path, name: &str, format: ListFormat, body: &[u8]) -> SourceSpec {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    SourceSpec {
        name: name.into(),
        path,
        format,
        category: "ads".into(),
        hidden: false,
    }
}

/// Compiles one source and opens the result.
fn compile_one(spec: SourceSpec) -> (SourceReport, CompiledLists) {
    let out = spec.path.with_extension("bin");
    let mut report = compile(&[spec], &out).unwrap();
    let lists = CompiledLists::open(&out).unwrap();
    (report.sources.remove(0), lists)
}

fn covered(lists: &CompiledLists, domain: &str) -> bool {
    let mut found = false;
    let name = crate::name::ReversedName::from_domain(domain).unwrap();
    lists.walk(&name, |_| found = true);
    found
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
    assert_eq!(ra.skipped_lines, 1);
    assert_eq!(ra.bad_samples.len(), SAMPLES);
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
fn adblock_lines_land_in_one_count_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("! Title: test\n||a.example^\n@@||b.example^\n");
    body.push_str("||c.example^$important\n||a.example^$important\n");
    for i in 0..6 {
        body.push_str(&format!("example{i}.com##.ad\n"));
    }
    body.push_str("||d.example^$third-party\n||e.example/ads.js\n/banner/*\n||f..example^\n");
    let (r, lists) = compile_one(spec(dir.path(), "l", ListFormat::Adblock, body.as_bytes()));
    let i = &r.info;
    assert_eq!(r.lines, 15);
    assert_eq!((i.entries, r.exceptions, r.important), (3, 1, 2));
    assert_eq!((i.unsupported, i.url_level, i.bad_lines), (7, 2, 1));
    assert_eq!(r.skipped_lines, 1);
    // The first five unsupported lines, in order, with why.
    let lines: Vec<u64> = r.unsupported_samples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [6, 7, 8, 9, 10]);
    assert_eq!(r.unsupported_samples[0].text, "example0.com##.ad");
    assert!(r.unsupported_samples[0].reason.contains("browser"));
    assert_eq!(r.bad_samples.len(), 1);
    assert_eq!(r.bad_samples[0].line, 15);
    assert!(covered(&lists, "b.example"));
    assert!(!covered(&lists, "d.example"));
    assert!(!covered(&lists, "e.example"));
    let m = &lists.manifest().sources[0];
    assert_eq!((m.unsupported, m.url_level), (7, 2));
}

#[test]
fn hidden_sources_report_counts_but_never_lines() {
    let dir = tempfile::tempdir().unwrap();
    let body = b"secret-site.example\nsecret..bad\n||secret-rule.example^$script\n";
    let mut s = spec(dir.path(), "licensed", ListFormat::Adblock, body);
    s.hidden = true;
    let out = dir.path().join("lists.bin");
    let report = compile(&[s], &out).unwrap();
    let r = &report.sources[0];
    assert_eq!(
        (r.info.entries, r.info.bad_lines, r.info.unsupported),
        (1, 1, 1)
    );
    assert!(r.bad_samples.is_empty() && r.unsupported_samples.is_empty());
    assert!(r.info.hidden);
    let shown = format!("{report}{}", serde_json::to_string(&report).unwrap());
    assert!(!shown.contains("secret"), "{shown}");
    assert!(CompiledLists::open(&out).unwrap().manifest().sources[0].hidden);
}

#[test]
fn a_source_with_no_usable_entries_still_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let body = b"0.0.0.0 a.example\n0.0.0.0 b.example\n# note\n";
    let (r, lists) = compile_one(spec(dir.path(), "wrong", ListFormat::Domains, body));
    assert_eq!((r.info.entries, r.info.bad_lines), (0, 2));
    assert_eq!(lists.domain_count(), 0);
    let text = r.to_string();
    assert!(text.contains("no usable entries"), "{text}");
    assert!(text.contains("\"domains\" format"), "{text}");
    let (r, _) = compile_one(spec(dir.path(), "empty", ListFormat::Rpz, b""));
    assert_eq!(r.lines, 0);
    assert!(r.to_string().contains("empty or only comments"));
}

#[test]
fn capped_reads_bound_the_buffer() {
    let mut input = Vec::new();
    input.extend_from_slice(&[b'a'; MAX_LINE_BYTES]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&[b'b'; MAX_LINE_BYTES + 1]);
    input.push(b'\n');
    input.extend_from_slice(&vec![b'c'; 10 << 20]);
    input.extend_from_slice(b"\nlast");
    let mut reader = BufReader::with_capacity(1 << 16, Cursor::new(input));
    let mut buf = Vec::new();
    let mut next = || {
        let r = read_line_capped(&mut reader, &mut buf).unwrap();
        assert!(
            buf.capacity() <= 2 * MAX_LINE_BYTES + 16,
            "{}",
            buf.capacity()
        );
        r.map(|too_long| (too_long, buf.len(), buf.first().copied()))
    };
    assert_eq!(next(), Some((false, MAX_LINE_BYTES, Some(b'a'))));
    assert_eq!(next(), Some((true, MAX_LINE_BYTES + 1, Some(b'b'))));
    assert_eq!(next(), Some((true, MAX_LINE_BYTES + 2, Some(b'c'))));
    assert_eq!(next(), Some((false, 4, Some(b'l'))));
    assert_eq!(next(), None);
}

#[test]
fn hostile_long_line_is_one_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long");
    let mut w = BufWriter::new(File::create(&path).unwrap());
    w.write_all(b"before.example\n").unwrap();
    w.write_all(&vec![b'x'; 10 << 20]).unwrap();
    w.write_all(b"\nafter.example\n").unwrap();
    w.into_inner().unwrap();
    let s = SourceSpec {
        path,
        ..spec(dir.path(), "unused", ListFormat::Domains, b"")
    };
    let (r, lists) = compile_one(s);
    assert_eq!((r.lines, r.info.entries, r.info.bad_lines), (3, 2, 1));
    let sample = &r.bad_samples[0];
    assert_eq!(sample.line, 2);
    assert!(
        sample.reason.contains("longer than 4096"),
        "{}",
        sample.reason
    );
    assert_eq!(sample.text.len(), SAMPLE_CHARS);
    assert!(covered(&lists, "after.example"));
}

#[test]
fn hostile_binary_junk_and_nul_bytes_are_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    // splitmix64, so the junk is the same every run.
    let mut state = 0x5EED_u64;
    let mut junk: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (z ^ (z >> 31)) as u8
        })
        .collect();
    junk.extend_from_slice(b"\nnul\0byte.example\n\0\0\0\n# comment \0 with nul\nok.example\n");
    for format in [
        ListFormat::Domains,
        ListFormat::Hosts,
        ListFormat::Adblock,
        ListFormat::Rpz,
        ListFormat::Dnsmasq,
    ] {
        let (r, lists) = compile_one(spec(dir.path(), "junk", format, &junk));
        assert!(r.info.bad_lines > 1000, "{format:?}: {}", r.info.bad_lines);
        assert!(
            r.bad_samples
                .iter()
                .all(|s| s.text.chars().count() <= SAMPLE_CHARS)
        );
        // A few one-letter junk lines are valid single-label names; nothing
        // else of a megabyte of junk may become an entry.
        assert!(r.info.entries <= 10, "{format:?}: {}", r.info.entries);
        assert!(!covered(&lists, "byte.example"), "{format:?}");
    }
    let (r, lists) = compile_one(spec(dir.path(), "junk", ListFormat::Domains, &junk));
    assert!(covered(&lists, "ok.example"));
    let utf8 = r.bad_samples.iter().any(|s| s.reason.contains("UTF-8"));
    assert!(utf8, "{:?}", r.bad_samples);
}

#[test]
fn hostile_million_comment_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("comments");
    let mut w = BufWriter::new(File::create(&path).unwrap());
    for i in 0..1_000_000 {
        writeln!(w, "# comment line {i}").unwrap();
    }
    w.write_all(b"real.example\n").unwrap();
    w.into_inner().unwrap();
    let s = SourceSpec {
        path,
        ..spec(dir.path(), "unused", ListFormat::Domains, b"")
    };
    let (r, lists) = compile_one(s);
    assert_eq!(
        (r.lines, r.skipped_lines, r.info.entries),
        (1_000_001, 1_000_000, 1)
    );
    assert!(covered(&lists, "real.example"));
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

/// Lists of overlapping names from several sources, with allow and
/// important entries, as adblock lines.
fn overlapping_sources(dir: &Path, names: &[(u8, u16, u8)]) -> Vec<SourceSpec> {
    (0..3u8)
        .map(|source| {
            let mut body = String::new();
            for &(s, n, kind) in names {
                if s % 3 != source {
                    continue;
                }
                let name = format!("n{n}.d{}.example", n % 7);
                body.push_str(&match kind % 3 {
                    0 => format!("||{name}^\n"),
                    1 => format!("@@||{name}^\n"),
                    _ => format!("||{name}^$important\n"),
                });
            }
            spec(
                dir,
                &format!("s{source}"),
                ListFormat::Adblock,
                body.as_bytes(),
            )
        })
        .collect()
}

fn fst_section(path: &Path) -> Vec<u8> {
    let file = std::fs::read(path).unwrap();
    let (_, offset) = crate::lists::decode_header(&file).unwrap();
    file[offset..].to_vec()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Sorting in runs on disk gives the very file sorting in memory gives.
    #[test]
    fn runs_on_disk_compile_the_same_file(
        names in proptest::collection::vec((0u8..3, 0u16..400, 0u8..3), 1..600),
        budget in 16usize..400,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sources = overlapping_sources(dir.path(), &names);
        let memory = dir.path().join("memory.bin");
        let runs = dir.path().join("runs.bin");
        let a = compile_within(&sources, &memory, usize::MAX).unwrap();
        let b = compile_within(&sources, &runs, budget).unwrap();
        proptest::prop_assert_eq!(fst_section(&memory), fst_section(&runs));
        proptest::prop_assert_eq!(
            (a.unique_domains, a.combinations, a.fst_bytes),
            (b.unique_domains, b.combinations, b.fst_bytes)
        );
        for (x, y) in a.sources.iter().zip(&b.sources) {
            proptest::prop_assert_eq!(
                (x.info.entries, x.exceptions, x.important),
                (y.info.entries, y.exceptions, y.important)
            );
        }
        // The runs are gone once compiled: only the sources and the files.
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        proptest::prop_assert_eq!(left, ["memory.bin", "runs.bin", "s0", "s1", "s2"]);
    }
}

#[test]
fn runs_that_cannot_be_written_fail_the_compile_and_keep_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(u8, u16, u8)> = (0..300).map(|n| (0, n, 0)).collect();
    let sources = overlapping_sources(dir.path(), &names);
    let out = dir.path().join("lists.bin");
    compile(&sources, &out).unwrap();
    let before = std::fs::read(&out).unwrap();
    // A file where the runs' directory would go stops it being made.
    std::fs::write(
        dir.path()
            .join(format!(".lists.bin.sorting-{}", std::process::id())),
        b"",
    )
    .unwrap();
    let error = compile_within(&sources, &out, 64).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("while sorting the lists"), "{text}");
    assert!(text.contains("disk not full"), "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

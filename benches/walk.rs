//! Per-query cost of the suffix walk over a realistic 1M-domain compiled list.
//!
//! Set `LOLLIPOP_BENCH_DOMAINS` to change the list size (e.g. 5000000 to check
//! compile memory at the top of the expected range), and
//! `LOLLIPOP_BENCH_KEEP_LIST=/some/path` to keep the generated list.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use lollipop::lists::{CompiledLists, ListFormat, ReversedName, SourceSpec, compile};

const WORDS: &[&str] = &[
    "ads",
    "track",
    "cdn",
    "img",
    "static",
    "media",
    "shop",
    "cheap",
    "free",
    "best",
    "game",
    "play",
    "casino",
    "bet",
    "poker",
    "slots",
    "proxy",
    "vpn",
    "tube",
    "video",
    "stream",
    "live",
    "chat",
    "date",
    "girls",
    "hot",
    "xxx",
    "porn",
    "sex",
    "cam",
    "click",
    "pixel",
    "metrics",
    "stats",
    "analytics",
    "tag",
    "beacon",
    "promo",
    "deal",
    "win",
    "prize",
    "lucky",
    "star",
    "moon",
    "sun",
    "blue",
    "red",
    "green",
    "black",
    "white",
    "fast",
    "super",
    "mega",
    "ultra",
    "world",
    "net",
    "web",
    "online",
    "digital",
    "cloud",
    "data",
    "app",
    "mobile",
    "smart",
    "tech",
    "news",
    "daily",
    "info",
    "guide",
    "top",
    "hub",
    "zone",
    "land",
    "city",
    "club",
    "fan",
    "music",
    "movie",
    "film",
    "anime",
    "manga",
    "torrent",
    "pirate",
    "download",
    "file",
    "share",
    "host",
    "server",
    "node",
    "edge",
    "secure",
    "login",
    "account",
    "bank",
    "pay",
    "wallet",
    "crypto",
    "coin",
    "token",
    "mine",
    "farm",
    "pet",
    "dog",
    "cat",
    "fish",
    "bird",
    "car",
];

/// Weighted roughly like real blocklists: mostly .com, then a long tail.
const TLDS: &[&str] = &[
    "com", "com", "com", "com", "com", "com", "net", "net", "org", "co.uk", "uk", "de", "ru",
    "info", "xyz", "io", "top", "fr", "nl", "br", "cn", "biz", "online", "site", "club", "pl",
];

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// One to three labels in front of a TLD, e.g. `cdn.cheapslots417.co.uk`.
fn domain(rng: &mut Rng, out: &mut String) {
    out.clear();
    let r = rng.next();
    for _ in 0..r % 3 {
        out.push_str(rng.pick(WORDS));
        out.push('.');
    }
    out.push_str(rng.pick(WORDS));
    if r & 8 != 0 {
        out.push('-');
    }
    out.push_str(rng.pick(WORDS));
    if r & 16 != 0 {
        out.push_str(&(rng.next() % 1000).to_string());
    }
    out.push('.');
    out.push_str(rng.pick(TLDS));
}

fn count_matches(lists: &CompiledLists, name: &ReversedName) -> usize {
    let mut n = 0;
    lists.walk(name, |_| n += 1);
    n
}

fn bench_walk(c: &mut Criterion) {
    let count: usize = std::env::var("LOLLIPOP_BENCH_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blocklist.txt");
    let mut rng = Rng(0x1011_1F0F);
    let mut buf = String::new();
    let mut blocked = String::new();
    let mut w = BufWriter::new(std::fs::File::create(&list).unwrap());
    for i in 0..count {
        domain(&mut rng, &mut buf);
        if i == count / 2 {
            blocked = buf.clone();
        }
        writeln!(w, "{buf}").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    if let Ok(keep) = std::env::var("LOLLIPOP_BENCH_KEEP_LIST") {
        std::fs::copy(&list, keep).unwrap();
    }

    let spec = SourceSpec {
        name: "bench".into(),
        path: list,
        format: ListFormat::Domains,
        category: "pornography".into(),
    };
    let out = dir.path().join("lists.bin");
    let started = Instant::now();
    let report = compile(&[spec], &out).unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "compiled {count} lines -> {} unique domains in {secs:.2} s; fst {} bytes = {:.2} bytes/domain; peak RSS so far {}",
        report.unique_domains,
        report.fst_bytes,
        report.bytes_per_domain,
        peak_rss().unwrap_or_else(|| "unknown".into()),
    );

    let lists = CompiledLists::open(&out).unwrap();
    let hit = ReversedName::from_domain(&blocked).unwrap();
    let sub = ReversedName::from_domain(&format!("img.static.{blocked}")).unwrap();
    let miss = ReversedName::from_domain("www.lollipop-primary.sch.uk").unwrap();
    assert!(
        count_matches(&lists, &hit) >= 1,
        "{blocked} should be blocked"
    );
    assert!(count_matches(&lists, &sub) >= 1);
    assert_eq!(count_matches(&lists, &miss), 0);

    let mut g = c.benchmark_group("walk");
    for (label, name) in [("hit", &hit), ("subdomain_of_hit", &sub), ("miss", &miss)] {
        g.bench_function(label, |b| {
            b.iter(|| count_matches(black_box(&lists), black_box(name)))
        });
    }
    g.finish();
    c.bench_function("reversed_name_from_domain", |b| {
        b.iter(|| ReversedName::from_domain(black_box("img.static.cheap-slots417.co.uk")))
    });
}

/// Linux's high-water mark for this process, which here is the compile.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_owned())
}

criterion_group!(benches, bench_walk);
criterion_main!(benches);
